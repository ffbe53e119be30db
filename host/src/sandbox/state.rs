//! The data a worker's sandbox holds: what is fixed per installed worker
//! ([`WorkerContext`]) and what lives for one execution ([`HostState`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::net::HttpClient;
use crate::sandbox::gate::Gate;
use crate::sandbox::grant::Grant;
use crate::sandbox::limits::{Limits, StoreLimiter};
use crate::sandbox::report::LogLine;
use crate::store::Store;

/// The backends capabilities talk to, shared by every worker of a host.
#[derive(Clone, Debug)]
pub struct Services {
    /// The embedded store (records, memory, outbox, signals).
    pub store: Store,
    /// The outbound HTTP client.
    pub http: Arc<HttpClient>,
    /// The principals and their visibility.
    pub directory: Arc<crate::governance::directory::Directory>,
    /// The inference providers (offline models live in `store`).
    pub inference: crate::inference::Inference,
    /// The enrichment providers.
    pub enrichment: crate::enrichment::Enrichment,
}

/// What is fixed for one installed worker version.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    /// The plugin id.
    pub plugin: String,
    /// The plugin version.
    pub version: String,
    /// The grant in force.
    pub grant: Grant,
    /// The grant's digest.
    pub grant_digest: String,
    /// The component's digest.
    pub component_digest: String,
    /// The limits of every execution.
    pub limits: Limits,
    /// The backends.
    pub services: Services,
    /// Set while the worker is paused by a person or the kill switch: running executions
    /// are interrupted at the next epoch tick and every host call traps.
    pub halt: Arc<std::sync::atomic::AtomicBool>,
    /// The installation's settings (a flat JSON object), passed with every event.
    pub settings: String,
}

/// Log lines and output kept for one execution, within the log limit.
#[derive(Debug, Default)]
pub struct LogBuffer {
    /// The lines kept.
    pub lines: Vec<LogLine>,
    /// Bytes kept so far (lines and output).
    pub bytes: u64,
    /// Whether anything was dropped.
    pub truncated: bool,
}

/// Standard output and error of one execution, shared with the WASI streams.
#[derive(Clone, Debug, Default)]
pub struct OutputCapture {
    inner: Arc<Mutex<(Vec<u8>, bool)>>,
    capacity: usize,
}

impl OutputCapture {
    /// A capture keeping at most `capacity` bytes; the rest is dropped and noted.
    pub fn new(capacity: usize) -> Self {
        OutputCapture {
            inner: Arc::default(),
            capacity,
        }
    }

    /// What was captured, and whether anything was dropped.
    pub fn contents(&self) -> (String, bool) {
        match self.inner.lock() {
            Ok(g) => (String::from_utf8_lossy(&g.0).into_owned(), g.1),
            Err(_) => (String::new(), true),
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputCapture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Ok(mut g) = self.inner.lock() {
            let room = self.capacity.saturating_sub(g.0.len());
            let keep = room.min(buf.len());
            g.0.extend_from_slice(&buf[..keep]);
            if keep < buf.len() {
                g.1 = true;
            }
        }
        // The worker is told everything was written: output beyond the cap is dropped, not
        // an error the worker has to handle.
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The store data of one execution.
pub struct HostState {
    pub(crate) review: Option<Arc<ReviewContext>>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: StoreLimiter,
    pub(crate) gate: Gate,
    pub(crate) worker: Arc<WorkerContext>,
    pub(crate) logs: LogBuffer,
    pub(crate) deadline: Instant,
    /// Predictions made so far in this execution (each gets its position).
    pub(crate) predictions: u32,
    /// The event's id (the same for every attempt at it).
    pub(crate) event_id: String,
    /// The signal chain and the escalation path this execution runs under, if any.
    pub(crate) escalated: crate::governance::escalation::Escalated,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// A sandbox for one execution: no files, no environment, no network, no arguments;
    /// output captured within the log limit.
    pub(crate) fn new(
        worker: Arc<WorkerContext>,
        gate: Gate,
        output: &OutputCapture,
        deadline: Instant,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            review: None,
            wasi,
            table: ResourceTable::new(),
            limiter: StoreLimiter::new(worker.limits),
            gate,
            logs: LogBuffer::default(),
            worker,
            deadline,
            predictions: 0,
            event_id: String::new(),
            escalated: crate::governance::escalation::Escalated::default(),
        }
    }
}

/// What the review rules need to know about one execution; without it nothing is held.
#[derive(Debug, Clone)]
pub struct ReviewContext {
    /// The rules in force (the stage's defaults, the worker's and the host's).
    pub checkpoints: Arc<crate::governance::review::Checkpoints>,
    /// The installed worker's name.
    pub worker: String,
    /// Its domain.
    pub domain: String,
    /// Its owners.
    pub owners: Vec<String>,
    /// Who is told about its held actions.
    pub reviewers: Vec<String>,
    /// Its stage on the trust curve.
    pub stage: Option<crate::store::Stage>,
    /// The trigger's description.
    pub trigger: String,
    /// The event's id.
    pub event_id: String,
    /// `object/id` of the trigger record.
    pub record: Option<String>,
    /// The trigger record's fields (for record-value rules and the reviewer).
    pub fields: std::collections::BTreeMap<String, crate::value::FieldValue>,
    /// The event's payload, if any.
    pub payload: Option<serde_json::Value>,
}
