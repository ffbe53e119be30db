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

use super::{COUNTERS, OUTBOX, OutboxEntry, Store, StoreError, decode, encode, next_counter};
use crate::condition::ConditionResult;
use crate::event::EventInput;

pub(crate) const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
pub(crate) const EXECUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("executions");
pub(crate) const SCHEDULES: TableDefinition<&str, i64> = TableDefinition::new("schedules");
pub(crate) const TRIGGER_STATE: TableDefinition<&str, &[u8]> =
    TableDefinition::new("trigger_state");
pub(crate) const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");

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

/// One finished execution, in the execution log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionEntry {
    /// Position in the log (assigned when recorded).
    pub seq: u64,
    /// The worker's name.
    pub worker: String,
    /// The trigger's description.
    pub trigger: String,
    /// The queue item it came from.
    pub queue_seq: u64,
    /// The event's id.
    pub event_id: String,
    /// `object/id` of the record, if any.
    pub record: Option<String>,
    /// When the trigger was accepted.
    pub accepted_at: i64,
    /// When the execution started.
    pub started_at: i64,
    /// When it finished.
    pub finished_at: i64,
    /// The final status (`success`, `skipped`, `failed`, `timeout`, ...).
    pub status: String,
    /// Each condition and whether it passed.
    pub conditions: Vec<ConditionResult>,
    /// Why it was skipped or failed, when it was.
    pub detail: Option<String>,
    /// The execution report (actions, logs, outcome), when a sandbox ran.
    pub report: Option<serde_json::Value>,
}

/// An alert raised by the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Trigger state (threshold side, date fired) under `key`.
pub(crate) fn state_in(tx: &WriteTransaction, key: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .open_table(TRIGGER_STATE)?
        .get(key)?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
}

/// Sets trigger state.
pub(crate) fn set_state_in(
    tx: &WriteTransaction,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    tx.open_table(TRIGGER_STATE)?
        .insert(key, value.as_bytes())?;
    Ok(())
}

impl Store {
    pub(crate) fn create_queue_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(QUEUE)?;
        tx.open_table(EXECUTIONS)?;
        tx.open_table(SCHEDULES)?;
        tx.open_table(TRIGGER_STATE)?;
        tx.open_table(ALERTS)?;
        Ok(())
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

    /// How many items are queued.
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(QUEUE)?.len()?)
    }

    /// Removes a finished item and records its execution, in one transaction.
    pub fn complete(&self, queue_seq: u64, entry: ExecutionEntry) -> Result<u64, StoreError> {
        self.write(move |tx| {
            tx.open_table(QUEUE)?.remove(queue_seq)?;
            let seq = next_counter(tx, "executions")? + 1;
            let mut entry = entry.clone();
            entry.seq = seq;
            tx.open_table(EXECUTIONS)?
                .insert(seq, encode(&entry).as_slice())?;
            Ok(seq)
        })
    }

    /// Executions after `after`, oldest first, at most `limit`.
    pub fn executions_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ExecutionEntry>, StoreError> {
        self.log_after(EXECUTIONS, after, limit)
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
            out.push(e);
        }
        Ok(out)
    }

    /// Records an alert, and its notification in the same transaction, unless an alert
    /// with the same key exists; returns whether it was new.
    pub fn raise_alert(
        &self,
        alert: Alert,
        notification: Option<OutboxEntry>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
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
            if let Some(n) = &notification {
                tx.open_table(OUTBOX)?
                    .insert(n.id.as_str(), encode(n).as_slice())?;
            }
            Ok(true)
        })
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
