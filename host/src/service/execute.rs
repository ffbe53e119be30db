//! The executors: conditions on the current record, then the worker in a fresh sandbox,
//! then the execution recorded with the queue item removed.

use super::*;

pub(super) fn executor(shared: &Shared, work: &Mutex<Receiver<QueueItem>>, done: &Sender<Done>) {
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

    // Conditions, on the record as it is now; the same read becomes the worker's event.
    let record = match item.event.read_record(&shared.store) {
        Ok(r) => r,
        Err(e) => {
            entry.status = "failed".into();
            entry.detail = Some(e.to_string());
            return entry;
        }
    };
    if let (Some(object), Some(id)) = (&item.event.object, &item.event.record_id) {
        match &record {
            Some(record) => {
                let ctx = Context {
                    directory: shared.runtime.directory(),
                    now: started_at,
                };
                let mut results: Vec<ConditionResult> = Vec::new();
                let pass = w.config.conditions.evaluate(record, &ctx, &mut results);
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

    match w
        .loaded
        .execute_with_record(&item.event, Mode::Live, record)
    {
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
