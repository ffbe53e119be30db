//! The dispatcher: derives work, loads the queue, dispatches within lanes and hourly
//! windows, raises capacity alerts and publishes the queue's status.

use super::derive::{change_items, item, scan_ids};
use super::owner_alert;
use super::*;

pub(super) struct Dispatcher {
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
    /// Each worker's recent executions for its circuit breaker: (finished at, failed).
    breaker: HashMap<String, VecDeque<(i64, bool)>>,
    /// When the journals were last pruned.
    last_prune: i64,
}

impl Dispatcher {
    pub(super) fn new(
        shared: Arc<Shared>,
        work: Sender<QueueItem>,
        done: Receiver<Done>,
    ) -> Dispatcher {
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
        // So do recent outcomes for the circuit breaker (since the worker's last resume).
        let mut breaker: HashMap<String, VecDeque<(i64, bool)>> = HashMap::new();
        let longest = shared
            .workers()
            .values()
            .map(|w| w.config.breaker.window_ms)
            .max()
            .unwrap_or(0);
        if let Ok(recent) = shared.store.executions_since(now - longest) {
            for e in recent.iter().rev() {
                let failed = e.failure.is_some();
                if (e.report.is_some() || failed)
                    && shared
                        .resumed_at(&e.worker)
                        .is_none_or(|r| e.finished_at >= r)
                {
                    breaker
                        .entry(e.worker.clone())
                        .or_default()
                        .push_back((e.finished_at, failed));
                }
            }
        }
        Dispatcher {
            breaker,
            last_prune: i64::MIN,
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

    pub(super) fn run(&mut self) {
        while !self.shared.stop.load(Ordering::SeqCst) {
            let now = self.shared.clock.now_ms();
            let shared = self.shared.clone();
            let admitting = shared.admit();
            if let Err(e) = self.derive(now) {
                tracing::error!("deriving triggers: {e}");
            }
            drop(admitting);
            if let Err(e) = self.load() {
                tracing::error!("loading the queue: {e}");
            }
            self.dispatch(now);
            self.publish(now);
            self.prune(now);
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
        match done.requeued {
            Some(item) => {
                self.pending.insert(done.seq, item);
            }
            None => {
                self.pending.remove(&done.seq);
            }
        }
        if let Some(lane) = done.lane {
            self.busy_lanes.remove(&lane);
        }
        self.finished += 1;
        if done.counted {
            let now = self.shared.clock.now_ms();
            self.breaker
                .entry(done.worker.clone())
                .or_default()
                .push_back((now, done.failed));
            self.check_breaker(&done.worker, now);
        }
        self.shared.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Opens a worker's circuit breaker when too many of its recent executions failed:
    /// the worker is paused (its triggers held) and its owners alerted.
    fn check_breaker(&mut self, worker: &str, now: i64) {
        let Some(w) = self.shared.workers().get(worker).cloned() else {
            return;
        };
        let policy = &w.config.breaker;
        let resumed = self.shared.resumed_at(worker).unwrap_or(i64::MIN);
        let Some(window) = self.breaker.get_mut(worker) else {
            return;
        };
        while window
            .front()
            .is_some_and(|(at, _)| *at <= now - policy.window_ms || *at < resumed)
        {
            window.pop_front();
        }
        let total = window.len();
        let failed = window.iter().filter(|(_, f)| *f).count();
        if !crate::failure::BreakerSpec::opens(policy, failed, total)
            || self.shared.is_paused(worker)
        {
            return;
        }
        let reason = format!(
            "circuit breaker: {failed} of the last {total} executions failed within {} (more than {:.0}%)",
            crate::clock::format_duration(policy.window_ms),
            policy.error_rate * 100.0
        );
        let control = WorkerControl {
            paused: true,
            by: "circuit-breaker".into(),
            reason: reason.clone(),
            at: now,
            resumed_at: self.shared.resumed_at(worker),
            grant_revoked: false,
        };
        let alert = owner_alert(
            &self.shared,
            &w.config,
            "circuit-breaker",
            format!("circuit-breaker/{worker}/{now}"),
            format!("{worker} was paused by its circuit breaker"),
            format!(
                "Worker `{worker}` was paused: {reason}. Its triggers are held, not dropped; a person resumes it."
            ),
        );
        match self
            .shared
            .store
            .set_control(worker, control.clone(), Some(alert), None)
        {
            Ok(()) => {
                tracing::warn!("worker `{worker}` paused: {reason}");
                w.halt.store(true, Ordering::SeqCst);
                if let Ok(mut c) = self.shared.controls.lock() {
                    c.insert(worker.to_string(), control);
                }
                window.clear();
            }
            Err(e) => tracing::error!("pausing worker `{worker}`: {e}"),
        }
    }

    /// Forgets accepted event ids and journalled effects older than their retention, and
    /// prunes the audit trail past its own, once an hour of clock time.
    fn prune(&mut self, now: i64) {
        if now.saturating_sub(self.last_prune) < HOUR_MS {
            return;
        }
        self.last_prune = now;
        let before = now - i64::from(self.shared.config.retention_days) * crate::clock::DAY_MS;
        if let Err(e) = self
            .shared
            .store
            .prune_effects(before)
            .and_then(|_| self.shared.store.prune_event_ids(before))
        {
            tracing::error!("pruning journals: {e}");
        }
        let audit_before =
            now - i64::from(self.shared.config.audit_retention_days) * crate::clock::DAY_MS;
        match self.shared.store.prune_audit(audit_before) {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} audit entries past their retention"),
            Err(e) => tracing::error!("pruning the audit trail: {e}"),
        }
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
            let (items, refused) = self.signal_items(&signals, now);
            let audit = store.clone();
            store.write(move |tx| {
                for item in &items {
                    enqueue_in(tx, item.clone())?;
                }
                for event in &refused {
                    crate::store::append_governance_in(tx, &audit, event)?;
                }
                set_counter_in(tx, "signal-cursor", last)?;
                Ok(())
            })?;
        }
        // Schedules.
        for (name, w) in self.shared.workers().iter() {
            if w.removing() {
                continue;
            }
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

    /// The queue items signals produce, and the audit entries of the deliveries refused.
    ///
    /// A topic no escalation path declares reaches every other worker with a trigger on it;
    /// a declared topic reaches only its paths' receivers, from the declared senders, with
    /// the required context. Either way a signal never reaches a worker already in its
    /// chain, nor goes beyond the longest chain allowed.
    fn signal_items(
        &self,
        signals: &[crate::store::SignalEntry],
        now: i64,
    ) -> (Vec<QueueItem>, Vec<GovernanceEvent>) {
        use crate::governance::escalation::{loop_refusal, refusal};
        use crate::store::Cause;
        let mut items = Vec::new();
        let mut refused = Vec::new();
        let installed = self.shared.workers();
        let plugin_of = |name: &str| {
            installed
                .get(name)
                .map(|w| w.config.manifest.plugin.id.clone())
        };
        for s in signals {
            let payload: Option<serde_json::Value> = serde_json::from_str(&s.payload).ok();
            let chain = if s.chain.is_empty() {
                vec![s.worker.clone()]
            } else {
                s.chain.clone()
            };
            let cause = |path: Option<&str>| Cause {
                path: path.map(str::to_string),
                signal_seq: s.seq,
                topic: s.topic.clone(),
                action: s.id.clone(),
                from_plugin: s.worker.clone(),
                chain: chain.clone(),
            };
            let mut refuse = |worker: &str, path: Option<&str>, reason: String| {
                tracing::warn!(
                    "signal {} ({}) not delivered to {worker}: {reason}",
                    s.seq,
                    s.topic
                );
                refused.push(GovernanceEvent {
                    action: "escalation.refused".into(),
                    by: "policy:escalation-paths".into(),
                    worker: Some(worker.to_string()),
                    subject: Some(format!("signal/{}", s.seq)),
                    reason: Some(reason),
                    data: serde_json::json!({
                        "path": path,
                        "topic": s.topic,
                        "action": s.id,
                        "from": s.worker,
                        "chain": chain,
                    }),
                });
            };
            // The worker that emitted it, by installed name (its plugin id may be shared by
            // several installations; any of them is the sender).
            let senders: Vec<&str> = installed
                .iter()
                .filter(|(_, w)| w.config.manifest.plugin.id == s.worker)
                .map(|(n, _)| n.as_str())
                .collect();
            let paths: Vec<&crate::governance::escalation::EscalationPath> = self
                .shared
                .config
                .escalation_paths
                .iter()
                .filter(|p| p.covers(&s.topic))
                .collect();
            let mut receivers: Vec<(String, Option<&str>)> = Vec::new();
            if paths.is_empty() {
                for name in installed.keys() {
                    receivers.push((name.clone(), None));
                }
            } else {
                for p in &paths {
                    let Some(to_plugin) = plugin_of(&p.to) else {
                        continue;
                    };
                    let empty = serde_json::Value::Null;
                    let payload = payload.as_ref().unwrap_or(&empty);
                    match refusal(p, &senders, payload, &chain, &to_plugin) {
                        Some(reason) => refuse(&p.to, Some(&p.name), reason),
                        None => receivers.push((p.to.clone(), Some(p.name.as_str()))),
                    }
                }
            }
            for (name, path) in receivers {
                let Some(w) = installed.get(&name).filter(|w| !w.removing()) else {
                    continue;
                };
                let plugin = &w.config.manifest.plugin.id;
                if path.is_none() {
                    if *plugin == s.worker {
                        continue;
                    }
                    if let Some(reason) = loop_refusal(&chain, plugin) {
                        if w.config.triggers.iter().any(|t| {
                            matches!(&t.kind, TriggerKind::Signal { topic }
                                if wildmatch::WildMatch::new(topic).matches(&s.topic))
                        }) {
                            refuse(&name, None, reason);
                        }
                        continue;
                    }
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
                            payload: payload.clone(),
                            occurred_at: Some(now),
                        };
                        let mut queued = item(&name, i, event, now + t.delay, now);
                        queued.cause = Some(cause(path));
                        items.push(queued);
                        break;
                    }
                }
            }
        }
        (items, refused)
    }

    fn sweep_dates(&self, now: i64) -> Result<(), StoreError> {
        for (name, w) in self.shared.workers().iter() {
            if w.removing() {
                continue;
            }
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
        let paused = self.paused();
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
            if item.due_at > now || paused.contains(item.worker.as_str()) {
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

    /// The workers paused now.
    fn paused(&self) -> HashSet<String> {
        self.shared
            .controls
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, c)| c.paused)
                    .map(|(w, _)| w.clone())
                    .collect()
            })
            .unwrap_or_default()
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
            if let Ok(true) = self.shared.store.raise_alert(alert, vec![notification]) {
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
        let mut held = 0;
        let paused = self.paused();
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
            if paused.contains(&item.worker) {
                held += 1;
            } else if item.due_at > now {
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
                held,
                finished: self.finished,
            };
        }
    }
}
