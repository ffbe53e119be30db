//! `roster serve`'s engine: from signals to executions.
//!
//! One dispatcher thread, on every tick of the [`Clock`](crate::clock::Clock):
//! 1. derives queue items from new record changes and signals (advancing each cursor in
//!    the same transaction as the items it produced, so nothing is enqueued twice or lost),
//!    from schedules that are due, and from dates that came within range;
//! 2. loads newly accepted items and dispatches those that are due, whose lane (worker,
//!    trigger, record) is idle and whose worker is under its hourly cap, to the executors;
//! 3. collects finished executions.
//!
//! Executors (a pool of threads) check the worker's conditions on the current record
//! — a filtered-out event costs no sandbox — run the worker, and record the execution,
//! removing the item from the queue in the same transaction.
//!
//! Layout: this file holds the service's handle and shared state; `dispatch.rs` the
//! dispatcher loop (windows, lanes, alerts, status); `derive.rs` how changes, signals,
//! schedules and dates become queue items; `execute.rs` the executors.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::clock::{HOUR_MS, MINUTE_MS, SharedClock};
use crate::config::{HostConfig, WorkerConfig};
use crate::error::Error;
use crate::filter::Filter;
use crate::sandbox::gate::Mode;
use crate::sandbox::loader::LoadedWorker;
use crate::sandbox::runtime::Runtime;
use crate::store::ConditionResult;
use crate::store::{
    Alert, Change, ChangeKind, ExecutionEntry, GovernanceEvent, OutboxEntry, QueueItem,
    RecordQuery, Store, StoreError, WorkerControl, enqueue_in, schedule_in, set_counter_in,
    set_schedule_in, set_state_in, state_in,
};
use crate::trigger::{TriggerKind, inside_threshold};
use crate::value::FieldValue;
use crate::value::{ChangeInput, EventInput, TriggerInput};

/// How often the dispatcher looks for work when nothing wakes it.
const TICK: Duration = Duration::from_millis(5);
/// How many changes or signals one tick turns into items.
const BATCH: usize = 1024;

mod approvals;
mod control;
mod derive;
mod dispatch;
mod execute;
mod installs;
pub mod inventory;
pub mod rules;
pub mod shadow;
pub mod staging;
pub mod stats;
mod versions;

pub use approvals::DecisionRequest;
pub use control::{KillReport, KillScope};
use dispatch::Dispatcher;
use execute::executor;
pub use installs::{CatalogueEntry, CatalogueSource, InstallSource, Installation, Removal};
pub use versions::{Readiness, ReadinessItem};

/// Whether a worker is live and where it is on the trust curve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    live: bool,
    stage: Option<crate::store::Stage>,
}

/// An installed, loaded worker.
pub struct Installed {
    /// Its configuration.
    pub config: WorkerConfig,
    /// The version that runs now (the configured one, or the one a rollback pinned).
    loaded: std::sync::RwLock<Arc<LoadedWorker>>,
    /// The kill switch's flag, shared by every version of the worker.
    pub halt: Arc<AtomicBool>,
    /// A new version running in dry-run beside it, if its file has `[shadow]`.
    pub shadow: Option<LoadedWorker>,
    /// Set while it is being removed: its triggers take nothing new, what is queued for
    /// it drains.
    removing: AtomicBool,
}

impl Installed {
    /// The version that runs now.
    pub fn loaded(&self) -> Arc<LoadedWorker> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether it is being removed (its triggers take nothing new).
    pub fn removing(&self) -> bool {
        self.removing.load(Ordering::SeqCst)
    }

    /// Runs `loaded` from now on; executions already running finish on the old version.
    fn replace(&self, loaded: LoadedWorker) {
        let loaded = Arc::new(loaded);
        match self.loaded.write() {
            Ok(mut l) => *l = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
    }
}

struct Shared {
    config: HostConfig,
    store: Store,
    runtime: Runtime,
    clock: SharedClock,
    /// The installed workers; replaced whole when one is installed, upgraded or removed,
    /// so that whoever holds a snapshot keeps the versions it started with.
    workers: std::sync::RwLock<Arc<Workers>>,
    /// Every configured worker (disabled ones too), as installed now.
    worker_configs: Mutex<Vec<WorkerConfig>>,
    /// Held while an installation or removal changes what is installed.
    installing: Mutex<()>,
    /// The manifest of the rules worker rules were last tried or deployed with: what a
    /// rule may reach when no rule is installed yet.
    rules_manifest: Mutex<Option<crate::sandbox::manifest::Manifest>>,
    /// Held (shared) while triggers are turned into queue items, from reading which
    /// workers take them to committing the items; a removal takes it exclusively once,
    /// after marking the worker, so no item for it is committed after it starts draining.
    admission: std::sync::RwLock<()>,
    stop: AtomicBool,
    running: AtomicUsize,
    ticks: AtomicU64,
    status: Mutex<QueueStatus>,
    /// Each worker's pause state (mirrors the store's `worker_control` table).
    controls: Mutex<BTreeMap<String, WorkerControl>>,
    /// The queue items running now, and their workers.
    in_flight: Mutex<BTreeMap<u64, String>>,
    /// Each worker's deployment status and trust stage as last read from the store, so
    /// executions do not read them every time; dropped when a person changes either.
    standing: Mutex<BTreeMap<String, Standing>>,
}

/// The installed, loaded workers by name.
pub type Workers = BTreeMap<String, Arc<Installed>>;

impl Shared {
    /// Shared hold on admission (see [`Shared::admission`]).
    pub(crate) fn admit(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.admission
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The installed workers now.
    fn workers(&self) -> Arc<Workers> {
        match self.workers.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the installed workers.
    fn set_workers(&self, workers: Workers) {
        let workers = Arc::new(workers);
        match self.workers.write() {
            Ok(mut w) => *w = workers,
            Err(poisoned) => *poisoned.into_inner() = workers,
        }
    }

    fn is_paused(&self, worker: &str) -> bool {
        self.controls
            .lock()
            .map(|c| c.get(worker).is_some_and(|c| c.paused))
            .unwrap_or(true)
    }

    fn resumed_at(&self, worker: &str) -> Option<i64> {
        self.controls
            .lock()
            .ok()
            .and_then(|c| c.get(worker).and_then(|c| c.resumed_at))
    }
}

/// An alert about `worker` for its owners: in the in-app centre, and by email and webhook
/// where the host configures them. Deduplicated by `key`.
fn owner_alert(
    shared: &Shared,
    worker: &WorkerConfig,
    kind: &str,
    key: String,
    subject: String,
    message: String,
) -> (Alert, Vec<OutboxEntry>) {
    let now = shared.clock.now_ms();
    let alert = Alert {
        seq: 0,
        at: now,
        kind: kind.to_string(),
        worker: worker.name.clone(),
        key: key.clone(),
        message: message.clone(),
    };
    let notification = |channel: &str, recipients: Vec<String>, body: String| OutboxEntry {
        id: format!("alert/{key}/{channel}"),
        worker: "roster".into(),
        channel: channel.to_string(),
        recipients,
        subject: Some(subject.clone()),
        body,
    };
    let mut out = vec![notification(
        "in-app",
        worker.owners.clone(),
        message.clone(),
    )];
    let routing = &shared.config.alerts;
    if routing.email {
        let directory = shared.runtime.directory();
        let emails: Vec<String> = worker
            .owners
            .iter()
            .filter_map(|o| directory.email_of(o))
            .collect();
        if !emails.is_empty() {
            out.push(notification("email", emails, message.clone()));
        }
    }
    if let Some(url) = &routing.webhook_url {
        let body = serde_json::json!({
            "kind": kind,
            "worker": worker.name,
            "key": key,
            "at": now,
            "subject": subject,
            "message": message,
            "owners": worker.owners,
        });
        out.push(notification("webhook", vec![url.clone()], body.to_string()));
    }
    (alert, out)
}

/// A summary of the queue, for `roster queue status` and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// Items accepted and not yet finished.
    pub queued: u64,
    /// Items running now.
    pub running: u64,
    /// Items due but waiting for their worker's hourly window.
    pub waiting_for_capacity: u64,
    /// Items not yet due (delayed triggers and retries waiting for their backoff).
    pub delayed: u64,
    /// Items held because their worker is paused.
    pub held: u64,
    /// Executions finished since start.
    pub finished: u64,
}

/// A running service. Dropping it stops it (see [`Service::shutdown`]).
pub struct Service {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What an executor reports back.
struct Done {
    seq: u64,
    lane: Option<String>,
    worker: String,
    /// Whether it counts as an execution for the circuit breaker (a sandbox ran, or the
    /// host failed it).
    counted: bool,
    failed: bool,
    /// The item as put back in the queue (a retry, or held by a pause), if it was.
    requeued: Option<QueueItem>,
}

impl Service {
    /// Opens the store, loads every enabled worker and starts the dispatcher and executors.
    /// Nothing is started when any worker fails to load.
    pub fn start(config: HostConfig, clock: SharedClock) -> Result<Service, Error> {
        let service = Service::open(config, clock)?;
        service.run()?;
        // Actions approved before a stop and not yet applied are applied now, once.
        match service.apply_approved() {
            Ok(0) => {}
            Ok(n) => tracing::info!("applied {n} approved actions left from before the stop"),
            Err(e) => tracing::error!("applying approved actions: {e}"),
        }
        Ok(service)
    }

    /// Opens the store and loads every enabled worker without running anything: the
    /// service the command line answers requests with on the data directory when no
    /// service runs. Nothing is triggered, dispatched or delivered.
    pub fn open(config: HostConfig, clock: SharedClock) -> Result<Service, Error> {
        // Paths name installed workers: checked here, so that workers can be installed
        // (with the configuration loaded) before the paths that connect them are valid.
        config.check_escalation_paths()?;
        let runtime = Runtime::open(config.runtime_config(clock.clone()))?;
        let mut workers = BTreeMap::new();
        for w in config.workers.iter().filter(|w| w.enabled) {
            let bytes = w.component_bytes()?;
            let halt = Arc::new(AtomicBool::new(false));
            let loaded = versions::load_worker(&runtime, &config, w, &bytes, halt.clone())?;
            let shadow = versions::load_shadow(&runtime, w, halt.clone())?;
            workers.insert(
                w.name.clone(),
                Arc::new(Installed {
                    config: w.clone(),
                    loaded: std::sync::RwLock::new(Arc::new(loaded)),
                    halt,
                    shadow,
                    removing: AtomicBool::new(false),
                }),
            );
        }
        let shared = Arc::new(Shared {
            store: runtime.store().clone(),
            worker_configs: Mutex::new(config.workers.clone()),
            installing: Mutex::new(()),
            rules_manifest: Mutex::new(None),
            admission: std::sync::RwLock::new(()),
            config,
            runtime,
            clock,
            workers: std::sync::RwLock::new(Arc::new(workers)),
            stop: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            ticks: AtomicU64::new(0),
            status: Mutex::new(QueueStatus::default()),
            controls: Mutex::new(BTreeMap::new()),
            in_flight: Mutex::new(BTreeMap::new()),
            standing: Mutex::new(BTreeMap::new()),
        });
        let controls = shared.store.controls()?;
        let installed = shared.workers();
        for (name, control) in &controls {
            if let Some(w) = installed.get(name) {
                w.halt.store(control.paused, Ordering::SeqCst);
            }
        }
        if let Ok(mut c) = shared.controls.lock() {
            *c = controls;
        }
        Ok(Service {
            shared,
            threads: Mutex::new(Vec::new()),
        })
    }

    /// Starts the executors, the deliverer, the audit pusher and the dispatcher.
    fn run(&self) -> Result<(), Error> {
        let shared = self.shared.clone();
        let (work_tx, work_rx) = channel::<QueueItem>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = channel::<Done>();
        let mut threads = Vec::new();
        for i in 0..shared.config.executors {
            let (shared, work_rx, done_tx) = (shared.clone(), work_rx.clone(), done_tx.clone());
            threads.push(spawn(&format!("roster-executor-{i}"), move || {
                executor(&shared, &work_rx, &done_tx);
            })?);
        }
        let connectors = shared.config.connectors(
            shared.runtime.services().http.clone(),
            shared.runtime.services().directory.clone(),
        );
        let delivery_shared = shared.clone();
        threads.push(spawn("roster-delivery", move || {
            deliverer(&delivery_shared, &connectors);
        })?);
        if !shared.config.audit_webhooks.is_empty() {
            let audit_shared = shared.clone();
            threads.push(spawn("roster-audit-push", move || {
                audit_pusher(&audit_shared);
            })?);
        }
        let dispatcher_shared = shared.clone();
        threads.push(spawn("roster-dispatcher", move || {
            let mut d = Dispatcher::new(dispatcher_shared, work_tx, done_rx);
            d.run();
        })?);
        if let Ok(mut t) = self.threads.lock() {
            t.extend(threads);
        }
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// The installed workers now (a snapshot: installs and removals replace it).
    pub fn workers(&self) -> Arc<Workers> {
        self.shared.workers()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// The queue's state as of the last tick.
    pub fn queue_status(&self) -> QueueStatus {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// A worker as the authorization policies see it: its domain and every owner
    /// (business, technical, and those alerted about it).
    pub fn worker_resource(
        &self,
        worker: &str,
    ) -> Result<crate::governance::access::Resource, Error> {
        let w = self.installed(worker)?;
        Ok(crate::governance::access::Resource::Worker {
            name: worker.to_string(),
            domain: w.config.manifest.plugin.domain.as_str().to_string(),
            owners: w.config.accountable(),
        })
    }

    /// Every worker's pause state.
    pub fn controls(&self) -> BTreeMap<String, WorkerControl> {
        self.shared
            .controls
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// The worker inventory, filtered, with each worker's last weeks of executions.
    pub fn inventory(
        &self,
        filter: &inventory::InventoryFilter,
    ) -> Result<Vec<inventory::InventoryEntry>, Error> {
        let now = self.shared.clock.now_ms();
        let since = inventory::history_start(now);
        let recent = self.shared.store.executions_since(since)?;
        let controls = self.controls();
        let mut out = Vec::new();
        for (name, w) in self.shared.workers().iter() {
            let mine: Vec<&ExecutionEntry> = recent.iter().filter(|e| &e.worker == name).collect();
            let deployment = self.shared.store.deployment(name)?;
            let stage = self.shared.stage(&w.config);
            let entry = inventory::describe(
                &w.config,
                controls.get(name),
                deployment.as_ref(),
                stage,
                &mine,
                now,
            );
            if filter.matches(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn installed(&self, worker: &str) -> Result<Arc<Installed>, Error> {
        self.shared
            .workers()
            .get(worker)
            .cloned()
            .ok_or_else(|| Error::UnknownWorker(worker.to_string()))
    }

    /// Accepts a named event for every worker with a matching `event` trigger. Returns the
    /// queue positions; the items are durable when this returns. An event whose `id` was
    /// accepted before is not queued again: the first submission's positions are returned
    /// (see [`Service::accept_event`]).
    pub fn submit_event(&self, name: &str, event: EventSubmission) -> Result<Vec<u64>, Error> {
        self.accept_event(name, event).map(|(seqs, _)| seqs)
    }

    /// Like [`Service::submit_event`], also telling whether the event's id had been
    /// accepted before (a sender's retry): then nothing new is queued.
    pub fn accept_event(
        &self,
        name: &str,
        event: EventSubmission,
    ) -> Result<(Vec<u64>, bool), Error> {
        if let Some(object) = &event.object {
            self.shared
                .store
                .schema()
                .object(object)
                .map_err(|e| Error::InvalidEvent(e.to_string()))?;
        }
        if event.record_id.is_some() != event.object.is_some() {
            return Err(Error::InvalidEvent(
                "give both `object` and `record-id`, or neither".into(),
            ));
        }
        // A declared event's payload fields have their declared types.
        self.shared
            .store
            .schema()
            .check_payload(name, event.payload.as_ref())
            .map_err(|e| Error::InvalidEvent(e.to_string()))?;
        let now = self.shared.clock.now_ms();
        // Until the items are committed, no removal starts draining.
        let _admitting = self.shared.admit();
        let mut items = Vec::new();
        for (wname, w) in self.shared.workers().iter() {
            if w.removing() {
                continue;
            }
            for (i, t) in w.config.triggers.iter().enumerate() {
                if let TriggerKind::Event { name: n } = &t.kind
                    && n == name
                {
                    items.push(QueueItem {
                        seq: 0,
                        worker: wname.clone(),
                        trigger: i,
                        event: EventInput {
                            id: event.id.as_ref().map(|id| format!("{id}/{wname}")),
                            trigger: TriggerInput::Named {
                                name: name.to_string(),
                            },
                            object: event.object.clone(),
                            record_id: event.record_id.clone(),
                            payload: event.payload.clone(),
                            occurred_at: Some(now),
                        },
                        due_at: now + t.delay,
                        accepted_at: now,
                        attempt: 0,
                        fallback_for: None,
                        cause: None,
                    });
                }
            }
        }
        if items.is_empty() {
            return Ok((Vec::new(), false));
        }
        let key = event.id.as_ref().map(|id| format!("{name}\u{1f}{id}"));
        Ok(self.shared.store.accept_event(key.as_deref(), items)?)
    }

    /// Waits until the dispatcher has caught up with every change and signal, nothing is
    /// running, and every queued item is waiting for a later time or hourly window — up to
    /// `timeout`; returns whether it got there. Tests call it after moving the clock.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let start = self.shared.ticks.load(Ordering::SeqCst);
        loop {
            if self.shared.ticks.load(Ordering::SeqCst) >= start + 2 && self.is_idle() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn is_idle(&self) -> bool {
        let store = &self.shared.store;
        let caught_up = store.counter("trigger-cursor").ok() == store.counter("changes").ok()
            && store.counter("signal-cursor").ok() == store.counter("signals").ok();
        let status = self.queue_status();
        caught_up
            && self.shared.running.load(Ordering::SeqCst) == 0
            && store.queue_len().ok()
                == Some(status.waiting_for_capacity + status.delayed + status.held)
    }

    /// Stops taking work, lets running executions finish and be recorded, and stops every
    /// thread. Queued items stay queued for the next start.
    pub fn shutdown(self) {
        self.stop();
    }

    /// Like [`Service::shutdown`], through a shared reference.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let threads: Vec<JoinHandle<()>> = match self.threads.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let stopped = !threads.is_empty();
        for t in threads {
            let _ = t.join();
        }
        if stopped {
            // Sign the audit chain's head, so a clean stop leaves a checkpoint at the end.
            if let Err(e) = self.shared.store.audit_checkpoint() {
                tracing::error!("signing the audit checkpoint: {e}");
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A named event as submitted to the webhook endpoint.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventSubmission {
    /// A caller-chosen id (for example the source system's event id).
    #[serde(default)]
    pub id: Option<String>,
    /// The object type of the record the event is about.
    #[serde(default)]
    pub object: Option<String>,
    /// The record's id.
    #[serde(default)]
    pub record_id: Option<String>,
    /// Extra data for the worker.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
}

/// Delivers due notifications through the configured connectors until the service stops.
fn deliverer(shared: &Shared, connectors: &crate::delivery::Connectors) {
    while !shared.stop.load(Ordering::SeqCst) {
        let now = shared.clock.now_ms();
        if crate::delivery::deliver_due(&shared.store, connectors, now, 64) == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Pushes the audit trail to its webhooks until the service stops.
fn audit_pusher(shared: &Shared) {
    let http = shared.runtime.services().http.clone();
    let mut retry_at = HashMap::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let now = shared.clock.now_ms();
        let hooks = &shared.config.audit_webhooks;
        if crate::delivery::push_audit(&shared.store, &http, hooks, &mut retry_at, now) == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|source| Error::Io {
            path: name.into(),
            source,
        })
}
