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

use crate::clock::{HOUR_MS, MINUTE_MS, SharedClock};
use crate::condition::{ConditionResult, Context};
use crate::config::{HostConfig, WorkerConfig};
use crate::error::Error;
use crate::event::{ChangeInput, EventInput, TriggerInput};
use crate::filter::Filter;
use crate::gate::Mode;
use crate::loader::LoadedWorker;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{
    Alert, Change, ChangeKind, ExecutionEntry, FieldValue, OutboxEntry, QueueItem, RecordQuery,
    Store, StoreError, enqueue_in, schedule_in, set_counter_in, set_schedule_in, set_state_in,
    state_in,
};
use crate::trigger::{TriggerKind, inside_threshold};

/// How often the dispatcher looks for work when nothing wakes it.
const TICK: Duration = Duration::from_millis(5);
/// How many changes or signals one tick turns into items.
const BATCH: usize = 1024;

mod derive;
mod dispatch;
mod execute;

use dispatch::Dispatcher;
use execute::executor;

/// An installed, loaded worker.
pub struct Installed {
    /// Its configuration.
    pub config: WorkerConfig,
    /// The loaded component.
    pub loaded: LoadedWorker,
}

struct Shared {
    config: HostConfig,
    store: Store,
    runtime: Runtime,
    clock: SharedClock,
    workers: BTreeMap<String, Arc<Installed>>,
    stop: AtomicBool,
    running: AtomicUsize,
    ticks: AtomicU64,
    status: Mutex<QueueStatus>,
}

/// A summary of the queue, for `roster queue status` and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    /// Items accepted and not yet finished.
    pub queued: u64,
    /// Items running now.
    pub running: u64,
    /// Items due but waiting for their worker's hourly window.
    pub waiting_for_capacity: u64,
    /// Items not yet due (delayed triggers).
    pub delayed: u64,
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
}

impl Service {
    /// Opens the store, loads every enabled worker and starts the dispatcher and executors.
    /// Nothing is started when any worker fails to load.
    pub fn start(config: HostConfig, clock: SharedClock) -> Result<Service, Error> {
        let mut runtime_config = RuntimeConfig::new(&config.data_dir);
        runtime_config.max_limits = config.max_limits;
        runtime_config.schema = config.schema.clone();
        runtime_config.directory = config.directory.clone();
        runtime_config.clock = clock.clone();
        let runtime = Runtime::open(runtime_config)?;
        let mut workers = BTreeMap::new();
        for w in config.workers.iter().filter(|w| w.enabled) {
            let bytes = std::fs::read(&w.component).map_err(|source| Error::Io {
                path: w.component.clone(),
                source,
            })?;
            let mut grant = w.grant.clone();
            grant.limits = grant.limits.overlay(&w.limits);
            let loaded = runtime
                .load(&bytes, &w.manifest, &grant)
                .map_err(|e| Error::Config {
                    location: w.path.display().to_string(),
                    reason: format!("worker `{}`: {e}", w.name),
                })?;
            workers.insert(
                w.name.clone(),
                Arc::new(Installed {
                    config: w.clone(),
                    loaded,
                }),
            );
        }
        let shared = Arc::new(Shared {
            store: runtime.store().clone(),
            config,
            runtime,
            clock,
            workers,
            stop: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            ticks: AtomicU64::new(0),
            status: Mutex::new(QueueStatus::default()),
        });

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
        let dispatcher_shared = shared.clone();
        threads.push(spawn("roster-dispatcher", move || {
            let mut d = Dispatcher::new(dispatcher_shared, work_tx, done_rx);
            d.run();
        })?);
        Ok(Service {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// The installed workers.
    pub fn workers(&self) -> &BTreeMap<String, Arc<Installed>> {
        &self.shared.workers
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

    /// Accepts a named event for every worker with a matching `event` trigger. Returns the
    /// queue positions; the items are durable when this returns.
    pub fn submit_event(&self, name: &str, event: EventSubmission) -> Result<Vec<u64>, Error> {
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
        let now = self.shared.clock.now_ms();
        let mut items = Vec::new();
        for (wname, w) in &self.shared.workers {
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
                    });
                }
            }
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.shared.store.enqueue(items)?)
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
            && store.queue_len().ok() == Some(status.waiting_for_capacity + status.delayed)
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
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A named event as submitted to the webhook endpoint.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
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

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|source| Error::Io {
            path: name.into(),
            source,
        })
}
