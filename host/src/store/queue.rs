//! The durable trigger queue and the execution log.
//!
//! An accepted trigger is a [`QueueItem`] in the `queue` table before anyone is told it was
//! accepted; it leaves the queue only in the same transaction that appends its
//! [`ExecutionEntry`] to the execution log. A crash between the two leaves the item queued,
//! so it runs again (at least once). Schedules' next firing times and the once-per-crossing
//! state of threshold and date triggers live here too, written in the same transactions as
//! the items they produce.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::log::{Cause, EXECUTIONS, ExecutionEntry, GovernanceEvent};
use super::{
    COUNTERS, OutboxEntry, Store, StoreError, TRIGGER_STATE, decode, encode, next_counter,
    set_state_in, state_in,
};
use crate::value::EventInput;

pub(crate) const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
pub(crate) const SCHEDULES: TableDefinition<&str, i64> = TableDefinition::new("schedules");
pub(crate) const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");
pub(crate) const CONTROL: TableDefinition<&str, &[u8]> = TableDefinition::new("worker_control");
pub(crate) const EVENT_IDS: TableDefinition<&str, &[u8]> = TableDefinition::new("event_ids");

/// An accepted caller-given event id and the queue positions it produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AcceptedEvent {
    at: i64,
    seqs: Vec<u64>,
}

/// One accepted trigger waiting to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Position in the queue (assigned on enqueue).
    pub seq: u64,
    /// The installed worker's name.
    pub worker: String,
    /// The index of the trigger in the worker's configuration.
    pub trigger: usize,
    /// The event the worker will see.
    pub event: EventInput,
    /// Not before this time (milliseconds since the Unix epoch).
    pub due_at: i64,
    /// When it was accepted.
    pub accepted_at: i64,
    /// How many times it was tried and failed (0 until its first failure).
    #[serde(default)]
    pub attempt: u32,
    /// Set when the item is a fallback run for another worker's failure: what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_for: Option<String>,
    /// Set when a signal started it: the signal, its emitter and chain, and the escalation
    /// path that delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl QueueItem {
    /// Items of one lane run one at a time, in queue order: one worker, one trigger, one
    /// record. Items about no record have no lane.
    pub fn lane(&self) -> Option<String> {
        let object = self.event.object.as_deref()?;
        let id = self.event.record_id.as_deref()?;
        Some(format!("{}/{}/{object}/{id}", self.worker, self.trigger))
    }
}

/// Whether a worker is paused, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerControl {
    /// Whether its triggers are held.
    pub paused: bool,
    /// `manual`, `escalation` or `circuit-breaker`.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When it was paused or last resumed.
    pub at: i64,
    /// When it was last resumed (the circuit breaker counts only executions after it).
    #[serde(default)]
    pub resumed_at: Option<i64>,
    /// Whether the kill switch revoked its grant: it resumes only when a person restores it.
    #[serde(default)]
    pub grant_revoked: bool,
}

/// Everything recorded when an execution finishes, in one transaction: the log entry, the
/// queue item removed or put back for a retry, and what the escalation policy does.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// The queue item that ran.
    pub queue_seq: u64,
    /// The execution log entry.
    pub entry: Option<ExecutionEntry>,
    /// The item put back (a retry, or held while its worker is paused) instead of removed.
    pub requeue: Option<QueueItem>,
    /// Records created (an escalation task).
    pub records: Vec<crate::value::Record>,
    /// Items added (a fallback worker's run).
    pub enqueue: Vec<QueueItem>,
    /// Notifications queued.
    pub notifications: Vec<OutboxEntry>,
    /// An alert raised (once per key).
    pub alert: Option<Alert>,
    /// A worker paused.
    pub pause: Option<(String, WorkerControl)>,
}

/// An alert raised by the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Position in the alert log.
    pub seq: u64,
    /// When it was raised.
    pub at: i64,
    /// What kind (`capacity`).
    pub kind: String,
    /// The worker concerned.
    pub worker: String,
    /// A deduplication key: one alert per key.
    pub key: String,
    /// The message.
    pub message: String,
}

/// Adds an item to the queue inside a transaction; returns its sequence number.
pub(crate) fn enqueue_in(tx: &WriteTransaction, mut item: QueueItem) -> Result<u64, StoreError> {
    let seq = next_counter(tx, "queue")? + 1;
    item.seq = seq;
    if item.event.id.is_none() {
        item.event.id = Some(format!("q{seq}"));
    }
    tx.open_table(QUEUE)?
        .insert(seq, encode(&item).as_slice())?;
    Ok(seq)
}

/// Sets a counter (a cursor) inside a transaction.
pub(crate) fn set_counter_in(
    tx: &WriteTransaction,
    name: &str,
    value: u64,
) -> Result<(), StoreError> {
    tx.open_table(COUNTERS)?.insert(name, value)?;
    Ok(())
}

/// A schedule's next firing time, if set.
pub(crate) fn schedule_in(tx: &WriteTransaction, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx.open_table(SCHEDULES)?.get(key)?.map(|v| v.value()))
}

/// Sets a schedule's next firing time.
pub(crate) fn set_schedule_in(
    tx: &WriteTransaction,
    key: &str,
    next: i64,
) -> Result<(), StoreError> {
    tx.open_table(SCHEDULES)?.insert(key, next)?;
    Ok(())
}

/// Records an alert and its notifications unless an alert with the same key exists;
/// returns whether it was new.
pub(crate) fn raise_alert_in(
    tx: &WriteTransaction,
    alert: &Alert,
    notifications: &[OutboxEntry],
) -> Result<bool, StoreError> {
    let state_key = format!("alert\u{1f}{}", alert.key);
    if state_in(tx, &state_key)?.is_some() {
        return Ok(false);
    }
    set_state_in(tx, &state_key, "1")?;
    let seq = next_counter(tx, "alerts")? + 1;
    let mut alert = alert.clone();
    alert.seq = seq;
    tx.open_table(ALERTS)?
        .insert(seq, encode(&alert).as_slice())?;
    for n in notifications {
        crate::store::enqueue_notification_in(tx, n)?;
    }
    Ok(true)
}

fn set_control_in(
    tx: &WriteTransaction,
    worker: &str,
    control: &WorkerControl,
) -> Result<(), StoreError> {
    tx.open_table(CONTROL)?
        .insert(worker, encode(control).as_slice())?;
    Ok(())
}

impl Store {
    pub(crate) fn create_queue_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(QUEUE)?;
        tx.open_table(EXECUTIONS)?;
        tx.open_table(SCHEDULES)?;
        tx.open_table(TRIGGER_STATE)?;
        tx.open_table(ALERTS)?;
        tx.open_table(CONTROL)?;
        tx.open_table(EVENT_IDS)?;
        Ok(())
    }

    /// Durably accepts the items of one submitted event. A caller-given `id` is accepted
    /// once: submitting it again (a sender retrying after a lost response) enqueues nothing
    /// and returns the first submission's positions. Returns the positions and whether the
    /// id had been seen.
    pub fn accept_event(
        &self,
        id: Option<&str>,
        items: Vec<QueueItem>,
    ) -> Result<(Vec<u64>, bool), StoreError> {
        let (id, now) = (id.map(str::to_string), self.clock.now_ms());
        self.write(move |tx| {
            if let Some(id) = &id
                && let Some(v) = tx.open_table(EVENT_IDS)?.get(id.as_str())?
            {
                let seen: AcceptedEvent = decode(id, v.value())?;
                return Ok((seen.seqs, true));
            }
            let seqs = items
                .iter()
                .map(|item| enqueue_in(tx, item.clone()))
                .collect::<Result<Vec<u64>, StoreError>>()?;
            if let Some(id) = &id {
                let accepted = AcceptedEvent {
                    at: now,
                    seqs: seqs.clone(),
                };
                tx.open_table(EVENT_IDS)?
                    .insert(id.as_str(), encode(&accepted).as_slice())?;
            }
            Ok((seqs, false))
        })
    }

    /// Forgets accepted event ids older than `before`; returns how many.
    pub fn prune_event_ids(&self, before: i64) -> Result<usize, StoreError> {
        self.prune_before(EVENT_IDS, before)
    }

    /// Durably accepts items; returns their sequence numbers. One transaction for all.
    pub fn enqueue(&self, items: Vec<QueueItem>) -> Result<Vec<u64>, StoreError> {
        self.write(move |tx| {
            items
                .iter()
                .map(|item| enqueue_in(tx, item.clone()))
                .collect()
        })
    }

    /// Queued items after `after`, in order, at most `limit`.
    pub fn queued_after(&self, after: u64, limit: usize) -> Result<Vec<QueueItem>, StoreError> {
        self.log_after(QUEUE, after, limit)
    }

    /// How many items are queued for `worker`.
    pub fn queued_for(&self, worker: &str) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let mut count = 0;
        for entry in tx.open_table(QUEUE)?.iter()? {
            let (k, v) = entry?;
            let item: QueueItem = decode(&k.value().to_string(), v.value())?;
            if item.worker == worker {
                count += 1;
            }
        }
        Ok(count)
    }

    /// How many items the queue holds.
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(QUEUE)?.len()?)
    }

    /// Removes a finished item and records its execution, in one transaction.
    pub fn complete(&self, queue_seq: u64, entry: ExecutionEntry) -> Result<u64, StoreError> {
        let finish = Finish {
            queue_seq,
            entry: Some(entry),
            ..Finish::default()
        };
        Ok(self.finish(finish)?.unwrap_or_default())
    }

    /// Records a finished execution and everything that follows from it in one
    /// transaction; returns the log position of the entry. A crash before it commits leaves
    /// the item queued as it was, so it runs again; after, none of it happens twice.
    pub fn finish(&self, finish: Finish) -> Result<Option<u64>, StoreError> {
        let store = self.clone();
        self.write(move |tx| {
            match &finish.requeue {
                Some(item) => {
                    tx.open_table(QUEUE)?
                        .insert(finish.queue_seq, encode(item).as_slice())?;
                }
                None => {
                    tx.open_table(QUEUE)?.remove(finish.queue_seq)?;
                }
            }
            let mut seq = None;
            if let Some(entry) = &finish.entry {
                seq = Some(super::audit::append_entry_in(tx, &store, entry)?);
            }
            for record in &finish.records {
                crate::store::create_record_in(tx, &store, record.clone(), "roster")?;
            }
            for item in &finish.enqueue {
                enqueue_in(tx, item.clone())?;
            }
            for n in &finish.notifications {
                crate::store::enqueue_notification_in(tx, n)?;
            }
            if let Some(alert) = &finish.alert {
                raise_alert_in(tx, alert, &[])?;
            }
            if let Some((worker, control)) = &finish.pause {
                set_control_in(tx, worker, control)?;
            }
            Ok(seq)
        })
    }

    /// Pauses or resumes a worker, raising `alert` (with its notifications) once per key and
    /// recording `event` in the audit trail.
    pub fn set_control(
        &self,
        worker: &str,
        control: WorkerControl,
        alert: Option<(Alert, Vec<OutboxEntry>)>,
        event: Option<GovernanceEvent>,
    ) -> Result<(), StoreError> {
        self.set_controls(
            vec![(worker.to_string(), control)],
            alert.into_iter().collect(),
            Vec::new(),
            event,
        )
    }

    /// Pauses or resumes several workers at once, with their alerts, review records and
    /// the person's decision for the audit trail, in one transaction.
    pub fn set_controls(
        &self,
        controls: Vec<(String, WorkerControl)>,
        alerts: Vec<(Alert, Vec<OutboxEntry>)>,
        records: Vec<crate::value::Record>,
        event: Option<GovernanceEvent>,
    ) -> Result<(), StoreError> {
        let store = self.clone();
        self.write(move |tx| {
            if let Some(event) = &event {
                crate::store::append_governance_in(tx, &store, event)?;
            }
            for (worker, control) in &controls {
                set_control_in(tx, worker, control)?;
            }
            for (alert, notifications) in &alerts {
                raise_alert_in(tx, alert, notifications)?;
            }
            for record in &records {
                match crate::store::create_record_in(tx, &store, record.clone(), "roster") {
                    // Opened already (the same pause, repeated): one review is enough.
                    Ok(_) | Err(StoreError::Exists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    /// Every worker's pause state.
    pub fn controls(
        &self,
    ) -> Result<std::collections::BTreeMap<String, WorkerControl>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTROL)?;
        let mut out = std::collections::BTreeMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value().to_string(), decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Executions after `after`, oldest first, at most `limit`.
    pub fn executions_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ExecutionEntry>, StoreError> {
        let mut entries: Vec<ExecutionEntry> = self.log_after(EXECUTIONS, after, limit)?;
        entries.retain(|e| !e.is_governance());
        Ok(entries)
    }

    /// A worker's newest `most` executions, newest first (reading the log backwards until
    /// they are found).
    pub fn recent_executions(
        &self,
        worker: &str,
        most: usize,
    ) -> Result<Vec<ExecutionEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EXECUTIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()?.rev() {
            if out.len() >= most {
                break;
            }
            let (k, v) = entry?;
            let e: ExecutionEntry = decode(&k.value().to_string(), v.value())?;
            if e.worker == worker && !e.is_governance() {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The newest executions that started at or after `since`, newest first.
    pub fn executions_since(&self, since: i64) -> Result<Vec<ExecutionEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EXECUTIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()?.rev() {
            let (k, v) = entry?;
            let e: ExecutionEntry = decode(&k.value().to_string(), v.value())?;
            if e.started_at < since {
                break;
            }
            if !e.is_governance() {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Records an alert, and its notifications in the same transaction, unless an alert
    /// with the same key exists; returns whether it was new.
    pub fn raise_alert(
        &self,
        alert: Alert,
        notifications: Vec<OutboxEntry>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| raise_alert_in(tx, &alert, &notifications))
    }

    /// Every alert, oldest first.
    pub fn alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALERTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push(decode(&k.value().to_string(), v.value())?);
        }
        Ok(out)
    }
}
