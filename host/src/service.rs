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

struct Dispatcher {
    shared: Arc<Shared>,
    work: Sender<QueueItem>,
    done: Receiver<Done>,
    /// Loaded items not yet finished, by queue position.
    pending: BTreeMap<u64, QueueItem>,
    /// Items handed to executors.
    running: HashSet<u64>,
    /// Lanes with an item running.
    busy_lanes: HashSet<String>,
    /// The highest queue position loaded.
    loaded: u64,
    /// Start times of each worker's executions in the last hour.
    windows: HashMap<String, VecDeque<i64>>,
    /// Hourly windows in which each worker hit its cap.
    cap_hits: HashMap<String, BTreeSet<i64>>,
    /// When dates were last swept.
    last_sweep: i64,
    /// Each schedule's next firing time, as stored.
    next_due: HashMap<String, i64>,
    finished: u64,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>, work: Sender<QueueItem>, done: Receiver<Done>) -> Dispatcher {
        let now = shared.clock.now_ms();
        let mut windows: HashMap<String, VecDeque<i64>> = HashMap::new();
        // Executions in the last hour still count against the window after a restart.
        if let Ok(recent) = shared.store.executions_since(now - HOUR_MS) {
            for e in recent.iter().rev().filter(|e| e.report.is_some()) {
                windows
                    .entry(e.worker.clone())
                    .or_default()
                    .push_back(e.started_at);
            }
        }
        Dispatcher {
            shared,
            work,
            done,
            pending: BTreeMap::new(),
            running: HashSet::new(),
            busy_lanes: HashSet::new(),
            loaded: 0,
            windows,
            cap_hits: HashMap::new(),
            last_sweep: i64::MIN,
            next_due: HashMap::new(),
            finished: 0,
        }
    }

    fn run(&mut self) {
        while !self.shared.stop.load(Ordering::SeqCst) {
            let now = self.shared.clock.now_ms();
            if let Err(e) = self.derive(now) {
                tracing::error!("deriving triggers: {e}");
            }
            if let Err(e) = self.load() {
                tracing::error!("loading the queue: {e}");
            }
            self.dispatch(now);
            self.publish(now);
            self.shared.ticks.fetch_add(1, Ordering::SeqCst);
            if let Ok(done) = self.done.recv_timeout(TICK) {
                self.finish(done);
                while let Ok(done) = self.done.try_recv() {
                    self.finish(done);
                }
            }
        }
        // Let running executions finish and be recorded.
        while !self.running.is_empty() {
            match self.done.recv_timeout(Duration::from_secs(60)) {
                Ok(done) => self.finish(done),
                Err(_) => break,
            }
        }
    }

    fn finish(&mut self, done: Done) {
        self.running.remove(&done.seq);
        self.pending.remove(&done.seq);
        if let Some(lane) = done.lane {
            self.busy_lanes.remove(&lane);
        }
        self.finished += 1;
    }

    /// Turns changes, signals, due schedules and dates in range into queue items.
    fn derive(&mut self, now: i64) -> Result<(), StoreError> {
        let store = &self.shared.store;
        // Record changes.
        let cursor = store.counter("trigger-cursor")?;
        let changes = store.changes_after(cursor, BATCH)?;
        if let Some(last) = changes.last().map(|c| c.seq) {
            let shared = self.shared.clone();
            store.write(move |tx| {
                for change in &changes {
                    for item in change_items(&shared, tx, change)? {
                        enqueue_in(tx, item)?;
                    }
                }
                set_counter_in(tx, "trigger-cursor", last)?;
                Ok(())
            })?;
        }
        // Signals.
        let cursor = store.counter("signal-cursor")?;
        let signals = store.signals_after(cursor, BATCH)?;
        if let Some(last) = signals.last().map(|s| s.seq) {
            let items = self.signal_items(&signals, now);
            store.write(move |tx| {
                for item in &items {
                    enqueue_in(tx, item.clone())?;
                }
                set_counter_in(tx, "signal-cursor", last)?;
                Ok(())
            })?;
        }
        // Schedules.
        for (name, w) in &self.shared.workers {
            for (i, t) in w.config.triggers.iter().enumerate() {
                let TriggerKind::Schedule {
                    schedule,
                    scan,
                    scan_limit,
                } = &t.kind
                else {
                    continue;
                };
                let key = format!("{name}\u{1f}{i}");
                if self.next_due.get(&key).is_some_and(|next| now < *next) {
                    continue;
                }
                let shared = self.shared.clone();
                let (name, label, schedule, scan, scan_limit) = (
                    name.clone(),
                    t.label.clone(),
                    schedule.clone(),
                    scan.clone(),
                    *scan_limit,
                );
                let stored_key = key.clone();
                let next_due = store.write(move |tx| {
                    let key = &stored_key;
                    let Some(next) = schedule_in(tx, key)? else {
                        let first = schedule.next_after(now);
                        if let Some(first) = first {
                            set_schedule_in(tx, key, first)?;
                        }
                        return Ok(first);
                    };
                    if now < next {
                        return Ok(Some(next));
                    }
                    let base = EventInput {
                        id: None,
                        trigger: TriggerInput::Schedule {
                            name: label.clone(),
                        },
                        object: None,
                        record_id: None,
                        payload: None,
                        occurred_at: Some(next),
                    };
                    match &scan {
                        None => {
                            enqueue_in(tx, item(&name, i, base, now, now))?;
                        }
                        Some(object) => {
                            for id in scan_ids(&shared, &name, object, scan_limit) {
                                let event = EventInput {
                                    object: Some(object.clone()),
                                    record_id: Some(id),
                                    ..base.clone()
                                };
                                enqueue_in(tx, item(&name, i, event, now, now))?;
                            }
                        }
                    }
                    // One firing for a missed stretch (a host that was down), not one per miss.
                    let following = schedule.next_after(now);
                    if let Some(following) = following {
                        set_schedule_in(tx, key, following)?;
                    }
                    Ok(following)
                })?;
                match next_due {
                    Some(next) => self.next_due.insert(key, next),
                    None => self.next_due.insert(key, i64::MAX),
                };
            }
        }
        // Dates coming within range, once a minute of clock time.
        if now.saturating_sub(self.last_sweep) >= MINUTE_MS {
            self.last_sweep = now;
            self.sweep_dates(now)?;
        }
        Ok(())
    }

    fn signal_items(&self, signals: &[crate::store::SignalEntry], now: i64) -> Vec<QueueItem> {
        let mut items = Vec::new();
        for s in signals {
            for (name, w) in &self.shared.workers {
                if *name == s.worker {
                    continue;
                }
                for (i, t) in w.config.triggers.iter().enumerate() {
                    if let TriggerKind::Signal { topic } = &t.kind
                        && wildmatch::WildMatch::new(topic).matches(&s.topic)
                    {
                        let event = EventInput {
                            id: Some(format!("signal-{}/{name}", s.seq)),
                            trigger: TriggerInput::Signal {
                                topic: s.topic.clone(),
                            },
                            object: None,
                            record_id: None,
                            payload: serde_json::from_str(&s.payload).ok(),
                            occurred_at: Some(now),
                        };
                        items.push(item(name, i, event, now + t.delay, now));
                    }
                }
            }
        }
        items
    }

    fn sweep_dates(&self, now: i64) -> Result<(), StoreError> {
        for (name, w) in &self.shared.workers {
            for (i, t) in w.config.triggers.iter().enumerate() {
                let TriggerKind::DateWithin {
                    object,
                    field,
                    within,
                } = &t.kind
                else {
                    continue;
                };
                let query = RecordQuery {
                    object: object.clone(),
                    filters: vec![
                        Filter {
                            field: field.clone(),
                            op: crate::filter::Op::GreaterThan,
                            value: FieldValue::Timestamp { timestamp: now },
                        },
                        Filter {
                            field: field.clone(),
                            op: crate::filter::Op::LessThan,
                            value: FieldValue::Timestamp {
                                timestamp: now + within,
                            },
                        },
                    ],
                    owners: self
                        .shared
                        .runtime
                        .directory()
                        .visible_owners(&w.config.grant.grant.principal),
                    limit: crate::store::MAX_QUERY,
                };
                let found = self.shared.store.query(&query)?;
                if found.is_empty() {
                    continue;
                }
                let (name, label, field) = (name.clone(), t.label.clone(), field.clone());
                self.shared.store.write(move |tx| {
                    for r in &found {
                        let date = r
                            .fields
                            .get(&field)
                            .and_then(FieldValue::as_f64)
                            .unwrap_or_default();
                        let key = format!("date\u{1f}{name}\u{1f}{i}\u{1f}{}/{}", r.object, r.id);
                        let value = (date as i64).to_string();
                        if state_in(tx, &key)?.as_deref() == Some(value.as_str()) {
                            continue;
                        }
                        set_state_in(tx, &key, &value)?;
                        let event = EventInput {
                            id: None,
                            trigger: TriggerInput::Threshold {
                                name: label.clone(),
                            },
                            object: Some(r.object.clone()),
                            record_id: Some(r.id.clone()),
                            payload: None,
                            occurred_at: Some(now),
                        };
                        enqueue_in(tx, item(&name, i, event, now, now))?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    fn load(&mut self) -> Result<(), StoreError> {
        loop {
            let items = self.shared.store.queued_after(self.loaded, BATCH)?;
            let Some(last) = items.last().map(|i| i.seq) else {
                return Ok(());
            };
            for item in items {
                self.pending.insert(item.seq, item);
            }
            self.loaded = last;
        }
    }

    fn dispatch(&mut self, now: i64) {
        let capacity = self
            .shared
            .config
            .executors
            .saturating_sub(self.running.len());
        if capacity == 0 {
            return;
        }
        let cap = self.shared.config.plan.executions_per_hour as usize;
        let mut blocked_lanes: HashSet<String> = HashSet::new();
        let mut chosen = Vec::new();
        for (seq, item) in &self.pending {
            if chosen.len() >= capacity {
                break;
            }
            if self.running.contains(seq) {
                continue;
            }
            let lane = item.lane();
            if let Some(lane) = &lane {
                // Keep order within a lane: nothing overtakes an earlier item.
                if self.busy_lanes.contains(lane) || !blocked_lanes.insert(lane.clone()) {
                    continue;
                }
            }
            if item.due_at > now {
                continue;
            }
            let window = self.windows.entry(item.worker.clone()).or_default();
            while window.front().is_some_and(|t| *t <= now - HOUR_MS) {
                window.pop_front();
            }
            if window.len() >= cap {
                continue;
            }
            window.push_back(now);
            chosen.push(*seq);
        }
        for seq in chosen {
            if let Some(item) = self.pending.get(&seq) {
                if let Some(lane) = item.lane() {
                    self.busy_lanes.insert(lane);
                }
                self.running.insert(seq);
                self.shared.running.fetch_add(1, Ordering::SeqCst);
                if self.work.send(item.clone()).is_err() {
                    self.shared.running.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn check_capacity_alerts(&mut self, now: i64) {
        let alert = &self.shared.config.capacity_alert;
        let bucket = now.div_euclid(HOUR_MS);
        let oldest = bucket - i64::from(alert.windows) + 1;
        for (worker, hits) in &mut self.cap_hits {
            hits.retain(|b| *b >= oldest);
            if hits.len() < alert.hits as usize || !hits.contains(&bucket) {
                continue;
            }
            let message = format!(
                "worker `{worker}` hit its limit of {} executions per hour in {} of the last {} hours; its triggers are waiting, none are dropped",
                self.shared.config.plan.executions_per_hour,
                hits.len(),
                alert.windows
            );
            let admins: Vec<String> = self
                .shared
                .runtime
                .directory()
                .with_role(&alert.role)
                .map(|p| p.id.clone())
                .collect();
            let recipients = if admins.is_empty() {
                vec![alert.role.clone()]
            } else {
                admins
            };
            let notification = OutboxEntry {
                id: format!("alert/capacity/{worker}/{bucket}"),
                worker: "roster".into(),
                channel: "in-app".into(),
                recipients,
                subject: Some(format!("{worker} is at its hourly limit")),
                body: message.clone(),
            };
            let alert = Alert {
                seq: 0,
                at: now,
                kind: "capacity".into(),
                worker: worker.clone(),
                key: format!("capacity/{worker}/{bucket}"),
                message: message.clone(),
            };
            if let Ok(true) = self.shared.store.raise_alert(alert, Some(notification)) {
                tracing::warn!("{message}");
            }
        }
    }

    /// Counts what waits and why, records which workers are at their cap in this hourly
    /// window (raising capacity alerts), then publishes the queue's status — in that
    /// order, so whoever sees an item waiting for capacity also sees its consequences.
    fn publish(&mut self, now: i64) {
        let mut waiting = 0;
        let mut delayed = 0;
        let cap = self.shared.config.plan.executions_per_hour as usize;
        let bucket = now.div_euclid(HOUR_MS);
        // Each worker's starts in the last hour, counted once per tick.
        let mut full: HashSet<&str> = HashSet::new();
        for (worker, window) in &mut self.windows {
            while window.front().is_some_and(|t| *t <= now - HOUR_MS) {
                window.pop_front();
            }
            if window.len() >= cap {
                full.insert(worker.as_str());
            }
        }
        for item in self.pending.values() {
            if self.running.contains(&item.seq) {
                continue;
            }
            if item.due_at > now {
                delayed += 1;
            } else if full.contains(item.worker.as_str()) {
                waiting += 1;
                self.cap_hits
                    .entry(item.worker.clone())
                    .or_default()
                    .insert(bucket);
            }
        }
        self.check_capacity_alerts(now);
        if let Ok(mut s) = self.shared.status.lock() {
            *s = QueueStatus {
                queued: self.pending.len() as u64,
                running: self.running.len() as u64,
                waiting_for_capacity: waiting,
                delayed,
                finished: self.finished,
            };
        }
    }
}

fn item(worker: &str, trigger: usize, event: EventInput, due_at: i64, now: i64) -> QueueItem {
    QueueItem {
        seq: 0,
        worker: worker.to_string(),
        trigger,
        event,
        due_at,
        accepted_at: now,
    }
}

/// The records of a scan: those the worker's principal may see, up to the limit.
fn scan_ids(shared: &Shared, worker: &str, object: &str, limit: usize) -> Vec<String> {
    let Some(w) = shared.workers.get(worker) else {
        return Vec::new();
    };
    let query = RecordQuery {
        object: object.to_string(),
        filters: simple_filters(&w.config.conditions),
        owners: shared
            .runtime
            .directory()
            .visible_owners(&w.config.grant.grant.principal),
        limit,
    };
    shared
        .store
        .query(&query)
        .map(|records| records.into_iter().map(|r| r.id).collect())
        .unwrap_or_default()
}

/// The field filters at the top level of a worker's conditions, which a scan can give the
/// query planner (every condition is still checked before the worker runs).
fn simple_filters(c: &crate::condition::Condition) -> Vec<Filter> {
    use crate::condition::Condition;
    match c {
        Condition::Field(f) => vec![f.clone()],
        Condition::All(items) => items
            .iter()
            .filter_map(|c| match c {
                Condition::Field(f) => Some(f.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The items one record change produces.
fn change_items(
    shared: &Shared,
    tx: &redb::WriteTransaction,
    change: &Change,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut items = Vec::new();
    for (name, w) in &shared.workers {
        if change.actor == format!("worker:{}", w.config.manifest.plugin.id) {
            // A worker's own writes do not trigger it again.
            continue;
        }
        let principal = &w.config.grant.grant.principal;
        if !shared
            .runtime
            .directory()
            .can_see(principal, &change.record)
        {
            continue;
        }
        for (i, t) in w.config.triggers.iter().enumerate() {
            if t.kind.object() != Some(change.object.as_str()) {
                continue;
            }
            let changes: Vec<ChangeInput> = change
                .changes
                .iter()
                .map(|c| ChangeInput {
                    field: c.field.clone(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect();
            let trigger = match &t.kind {
                TriggerKind::RecordCreated { .. } if change.kind == ChangeKind::Created => {
                    TriggerInput::RecordCreated
                }
                TriggerKind::RecordUpdated { fields, .. }
                    if change.kind == ChangeKind::Updated
                        && (fields.is_empty()
                            || change.changes.iter().any(|c| fields.contains(&c.field))) =>
                {
                    TriggerInput::RecordUpdated { changes }
                }
                TriggerKind::RecordDeleted { .. } if change.kind == ChangeKind::Deleted => {
                    TriggerInput::RecordDeleted
                }
                TriggerKind::Threshold {
                    object,
                    field,
                    above,
                    below,
                    aggregate: Some(agg),
                } => {
                    for group in affected_groups(change, agg) {
                        let Some(value) = aggregate_value(shared, w, object, field, agg, &group)?
                        else {
                            continue;
                        };
                        let key = format!("aggregate\u{1f}{name}\u{1f}{i}\u{1f}{group}");
                        let inside =
                            inside_threshold(*above, *below, Some(&FieldValue::Number(value)));
                        let was_inside = state_in(tx, &key)?.as_deref() == Some("in");
                        set_state_in(tx, &key, if inside { "in" } else { "out" })?;
                        if inside && !was_inside {
                            let event = EventInput {
                                id: Some(format!("change-{}/{name}/{i}/{group}", change.seq)),
                                trigger: TriggerInput::Threshold {
                                    name: t.label.clone(),
                                },
                                object: None,
                                record_id: None,
                                payload: Some(
                                    serde_json::json!({ "group": group, "value": value }),
                                ),
                                occurred_at: Some(change.at),
                            };
                            items.push(item(name, i, event, change.at + t.delay, change.at));
                        }
                    }
                    continue;
                }
                TriggerKind::Threshold {
                    field,
                    above,
                    below,
                    ..
                } if change.kind != ChangeKind::Deleted => {
                    let key = format!(
                        "threshold\u{1f}{name}\u{1f}{i}\u{1f}{}/{}",
                        change.object, change.id
                    );
                    let inside = inside_threshold(*above, *below, change.record.fields.get(field));
                    let was_inside = state_in(tx, &key)?.as_deref() == Some("in");
                    set_state_in(tx, &key, if inside { "in" } else { "out" })?;
                    if !inside || was_inside {
                        continue;
                    }
                    TriggerInput::Threshold {
                        name: t.label.clone(),
                    }
                }
                _ => continue,
            };
            let event = EventInput {
                id: Some(format!("change-{}/{name}/{i}", change.seq)),
                trigger,
                object: Some(change.object.clone()),
                record_id: Some(change.id.clone()),
                payload: None,
                occurred_at: Some(change.at),
            };
            items.push(item(name, i, event, change.at + t.delay, change.at));
        }
    }
    Ok(items)
}

/// The groups a change may have moved an aggregate in: the record's group before and after.
fn affected_groups(change: &Change, agg: &crate::trigger::Aggregate) -> BTreeSet<String> {
    let as_group = |v: &FieldValue| match v {
        FieldValue::Null => None,
        FieldValue::Text(t) => Some(t.clone()),
        other => serde_json::to_string(other).ok(),
    };
    let Some(by) = &agg.group_by else {
        return BTreeSet::from(["*".to_string()]);
    };
    let mut groups = BTreeSet::new();
    let now = if by == "owner" {
        change.record.owner.clone()
    } else {
        change.record.fields.get(by).and_then(as_group)
    };
    groups.extend(now);
    if let Some(c) = change.changes.iter().find(|c| &c.field == by) {
        groups.extend(as_group(&c.old));
    }
    groups
}

/// The aggregate over one group of the records the worker's principal may see; `None` when
/// the principal may not see the group.
fn aggregate_value(
    shared: &Shared,
    w: &Installed,
    object: &str,
    field: &str,
    agg: &crate::trigger::Aggregate,
    group: &str,
) -> Result<Option<f64>, StoreError> {
    let visible = shared
        .runtime
        .directory()
        .visible_owners(&w.config.grant.grant.principal);
    let mut filters = agg.filters.clone();
    let owners = match agg.group_by.as_deref() {
        Some("owner") => {
            if visible
                .as_ref()
                .is_some_and(|v| !v.iter().any(|o| o == group))
            {
                return Ok(None);
            }
            Some(vec![group.to_string()])
        }
        Some(by) => {
            filters.push(Filter {
                field: by.to_string(),
                op: crate::filter::Op::Equals,
                value: serde_json::from_str(group)
                    .unwrap_or_else(|_| FieldValue::Text(group.to_string())),
            });
            visible
        }
        None => visible,
    };
    let records = shared.store.query(&RecordQuery {
        object: object.to_string(),
        filters,
        owners,
        limit: usize::MAX,
    })?;
    Ok(Some(agg.value(field, &records)))
}

fn executor(shared: &Shared, work: &Mutex<Receiver<QueueItem>>, done: &Sender<Done>) {
    loop {
        let next = match work.lock() {
            Ok(rx) => rx.recv_timeout(Duration::from_millis(50)),
            Err(_) => return,
        };
        let item = match next {
            Ok(item) => item,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let lane = item.lane();
        let seq = item.seq;
        let entry = run_item(shared, &item);
        if let Err(e) = shared.store.complete(seq, entry) {
            // The item stays queued and runs again after a restart.
            tracing::error!("recording execution of queue item {seq}: {e}");
        }
        shared.running.fetch_sub(1, Ordering::SeqCst);
        let _ = done.send(Done { seq, lane });
    }
}

/// Checks conditions and runs one item; always returns an entry for the execution log.
fn run_item(shared: &Shared, item: &QueueItem) -> ExecutionEntry {
    let started_at = shared.clock.now_ms();
    let record_ref = match (&item.event.object, &item.event.record_id) {
        (Some(o), Some(id)) => Some(format!("{o}/{id}")),
        _ => None,
    };
    let mut entry = ExecutionEntry {
        seq: 0,
        worker: item.worker.clone(),
        trigger: String::new(),
        queue_seq: item.seq,
        event_id: item.event.id.clone().unwrap_or_default(),
        record: record_ref,
        accepted_at: item.accepted_at,
        started_at,
        finished_at: started_at,
        status: "skipped".into(),
        conditions: Vec::new(),
        detail: None,
        report: None,
    };
    let Some(w) = shared.workers.get(&item.worker) else {
        entry.status = "failed".into();
        entry.detail = Some(format!("worker `{}` is not installed", item.worker));
        return entry;
    };
    entry.trigger = w
        .config
        .triggers
        .get(item.trigger)
        .map(|t| t.label.clone())
        .unwrap_or_default();

    // Conditions, on the record as it is now.
    if let (Some(object), Some(id)) = (&item.event.object, &item.event.record_id) {
        let record = match shared.store.get_record(object, id) {
            Ok(r) => r,
            Err(e) => {
                entry.status = "failed".into();
                entry.detail = Some(e.to_string());
                return entry;
            }
        };
        match record {
            Some(record) => {
                let ctx = Context {
                    directory: shared.runtime.directory(),
                    now: started_at,
                };
                let mut results: Vec<ConditionResult> = Vec::new();
                let pass = w.config.conditions.evaluate(&record, &ctx, &mut results);
                entry.conditions = results;
                if !pass {
                    entry.detail = Some("conditions not met".into());
                    entry.finished_at = shared.clock.now_ms();
                    return entry;
                }
            }
            None if item.event.trigger != TriggerInput::RecordDeleted => {
                entry.detail = Some(format!("{object}/{id} no longer exists"));
                return entry;
            }
            None => {}
        }
    } else if w.config.conditions != crate::condition::Condition::All(Vec::new()) {
        // Conditions are about a record; an event without one cannot meet them.
        entry.detail = Some("conditions need a record and the event has none".into());
        return entry;
    }

    match w.loaded.execute(&item.event, Mode::Live) {
        Ok(report) => {
            entry.status = report.status.as_str().to_string();
            entry.detail = report.error.clone();
            entry.report = serde_json::to_value(&report).ok();
        }
        Err(e) => {
            entry.status = "failed".into();
            entry.detail = Some(e.to_string());
        }
    }
    entry.finished_at = shared.clock.now_ms();
    entry
}
