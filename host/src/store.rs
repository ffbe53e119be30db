//! The embedded store (redb): the system of record (records, secondary indexes and the
//! change log), per-worker memory, the notification outbox and emitted signals.
//!
//! One redb file in the data directory. Reads run on snapshots from any thread; every
//! write goes through the group-commit `writer` thread and is durable when it returns.
//! Record writes are checked against the [`Schema`], maintain the secondary indexes
//! (`index`) and append to the change log in the same transaction, so the trigger engine
//! sees every change exactly once. See `docs/adr/0001-embedded-store-redb.md` for why redb.
//!
//! Layout: this file holds the handle, the shared types and the small tables; `records.rs`
//! the system of record and its queries; `index.rs` the index key encoding; `writer.rs` the
//! group-commit thread.

mod accounts;
mod approvals;
mod audit;
mod effect;
mod effects;
mod files;
mod index;
mod log;
pub mod models;
mod query;
mod queue;
mod records;
mod rules;
mod sessions;
mod shadow;
mod stats;
mod trust;
mod versions;
mod writer;

pub use accounts::{
    Account, AccountKind, RESERVED_IDS, TOKEN_PREFIX, TokenInfo, canonical_id, token_digest,
};
pub use approvals::{
    Application, Approval, ApprovalFilter, ApprovalStatus, Decision, FEEDBACK_PREFIX, Risk, Verdict,
};
pub(crate) use audit::append_governance_in;
pub use audit::{
    AuditProblem, AuditQuery, AuditSummary, CHECKPOINT_EVERY, CSV_COLUMNS, Checkpoint, GENESIS,
    checkpoint_text, csv_row, export_item,
};
pub use effect::Effect;
pub use files::{ImportSummary, RecordFormat, read_records};
pub use log::{
    Cause, ConditionResult, EscalationRecord, ExecutionEntry, GOVERNANCE, GovernanceEvent,
    current_request, for_request,
};
pub use queue::{Alert, Finish, QueueItem, WorkerControl};
pub(crate) use queue::{enqueue_in, schedule_in, set_counter_in, set_schedule_in};
pub(crate) use records::{create_record_in, delete_record_in, update_record_in};

pub use models::{ModelSummary, PredictionRecord};
pub use query::{MAX_QUERY, RecordPage, RecordQuery};
pub use records::{Change, ChangeKind, FieldChange};
pub use rules::{RuleSet, RuleTest, RuleVersion};
pub use sessions::{LOGIN_CODE_PREFIX, SESSION_PREFIX, Session};
pub use shadow::{ProposedAction, ShadowRun};
pub use stats::{StatsRow, Tally};
pub use trust::{Stage, TrustState};
pub use versions::{DeployStatus, Deployment, InstallRecord, VersionEntry};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::clock::{SharedClock, SystemClock};
use crate::schema::{Schema, SchemaError};
use crate::value::{FieldValue, Record};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const INDEX: TableDefinition<&[u8], ()> = TableDefinition::new("index");
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const MEMORY: TableDefinition<&str, &[u8]> = TableDefinition::new("memory");
const MEMORY_USAGE: TableDefinition<&str, u64> = TableDefinition::new("memory_usage");
pub(crate) const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
const SIGNALS: TableDefinition<u64, &[u8]> = TableDefinition::new("signals");
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
const PENDING_DELIVERIES: TableDefinition<&str, ()> = TableDefinition::new("pending_deliveries");

const SEP: char = '\u{1f}';

/// A failure of the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error.
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// A stored value could not be decoded.
    #[error("corrupt value under `{key}`: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A memory write would exceed the worker's quota.
    #[error("memory quota of {quota} bytes exceeded (would use {would_use})")]
    QuotaExceeded {
        /// The quota.
        quota: u64,
        /// The usage the write would cause.
        would_use: u64,
    },
    /// An identifier or key contains the reserved separator character.
    #[error("identifier `{0}` contains a reserved control character")]
    BadKey(String),
    /// A record write does not fit the schema.
    #[error("{0}")]
    Schema(#[from] SchemaError),
    /// A record to create already exists.
    #[error("{object}/{id} already exists")]
    Exists {
        /// The object.
        object: String,
        /// The identifier.
        id: String,
    },
    /// A request the store refuses, with the reason (an unknown account, a bad id, ...).
    #[error("{0}")]
    Invalid(String),
    /// The group-commit writer failed or stopped.
    #[error("write failed: {0}")]
    Writer(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub(crate) const TRIGGER_STATE: TableDefinition<&str, &[u8]> =
    TableDefinition::new("trigger_state");

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

/// A notification accepted for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The action id.
    pub id: String,
    /// The worker that sent it.
    pub worker: String,
    /// The channel name.
    pub channel: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Body.
    pub body: String,
}

/// A signal emitted by a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEntry {
    /// Position in the signal log (assigned when recorded).
    #[serde(default)]
    pub seq: u64,
    /// The action id.
    pub id: String,
    /// The emitting worker.
    pub worker: String,
    /// The topic.
    pub topic: String,
    /// The JSON payload.
    pub payload: String,
    /// The plugins its cause passed through, the emitter last (for loop prevention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

/// A handle on the embedded store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: writer::Writer,
    schema: Arc<Schema>,
    clock: SharedClock,
    audit_key: audit::AuditKey,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Accepts a notification into the outbox inside a transaction, and queues its delivery
/// unless it is in-app only. A notification already in the outbox is left as it is.
pub(crate) fn enqueue_notification_in(
    tx: &WriteTransaction,
    entry: &OutboxEntry,
) -> Result<(), StoreError> {
    let mut outbox = tx.open_table(OUTBOX)?;
    if outbox.get(entry.id.as_str())?.is_some() {
        return Ok(());
    }
    outbox.insert(entry.id.as_str(), encode(entry).as_slice())?;
    if entry.channel != "in-app" {
        tx.open_table(DELIVERIES)?
            .insert(entry.id.as_str(), encode(&Delivery::default()).as_slice())?;
        tx.open_table(PENDING_DELIVERIES)?
            .insert(entry.id.as_str(), ())?;
    }
    Ok(())
}

/// Writes one key of a worker's memory inside a transaction, outside its quota (the host
/// writes reviewers' feedback this way).
pub(crate) fn memory_put_in(
    tx: &WriteTransaction,
    worker: &str,
    k: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    let full = key(worker, k)?;
    let mut table = tx.open_table(MEMORY)?;
    let mut usage = tx.open_table(MEMORY_USAGE)?;
    let old = table
        .get(full.as_str())?
        .map(|v| k.len() as u64 + v.value().len() as u64)
        .unwrap_or(0);
    let current = usage
        .get(worker)
        .map(|v| v.map(|v| v.value()).unwrap_or(0))?;
    let now = current.saturating_sub(old) + k.len() as u64 + value.len() as u64;
    table.insert(full.as_str(), value)?;
    usage.insert(worker, now)?;
    Ok(())
}

/// The delivery state of one notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Attempts made.
    pub attempts: u32,
    /// Not before this time.
    pub next_at: i64,
    /// When it was last attempted.
    pub last_at: Option<i64>,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// What the connector reported on success.
    pub result: Option<String>,
    /// The last failure.
    pub error: Option<String>,
    /// Whether delivery was given up after the last attempt.
    #[serde(default)]
    pub gave_up: bool,
}

/// Records an emitted signal inside a transaction; returns its position in the log.
pub(crate) fn record_signal_in(
    tx: &WriteTransaction,
    entry: &SignalEntry,
) -> Result<u64, StoreError> {
    let seq = next_counter(tx, "signals")? + 1;
    let mut entry = entry.clone();
    entry.seq = seq;
    tx.open_table(SIGNALS)?
        .insert(seq, encode(&entry).as_slice())?;
    Ok(seq)
}

fn key(a: &str, b: &str) -> Result<String, StoreError> {
    for part in [a, b] {
        if part.contains(SEP) {
            return Err(StoreError::BadKey(part.to_string()));
        }
    }
    Ok(format!("{a}{SEP}{b}"))
}

fn prefix_end(prefix: &str) -> String {
    // Every key under the prefix sorts below prefix + U+10FFFF.
    format!("{prefix}\u{10ffff}")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain data types to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Reads and increments a named counter inside a write transaction; returns the old value.
fn next_counter(tx: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    let current = counters.get(name)?.map(|v| v.value()).unwrap_or(0);
    counters.insert(name, current + 1)?;
    Ok(current)
}

impl Store {
    /// Opens (or creates) the store file at `path` with the standard schema and the system
    /// clock.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, Schema::standard(), Arc::new(SystemClock))
    }

    /// Opens (or creates) the store file at `path`.
    /// The audit chain's checkpoints are signed with the key in `roster.audit-key` beside
    /// the store file (created on first open).
    pub fn open_with(path: &Path, schema: Schema, clock: SharedClock) -> Result<Store, StoreError> {
        let audit_key = audit::AuditKey::load_or_create(&path.with_extension("audit-key"))?;
        let db = Arc::new(Database::create(path)?);
        let writer = writer::Writer::start(db.clone())?;
        let store = Store {
            db,
            writer,
            schema: Arc::new(schema),
            clock,
            audit_key,
        };
        store.write(|tx| {
            tx.open_table(RECORDS)?;
            tx.open_table(INDEX)?;
            tx.open_table(CHANGES)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(MEMORY)?;
            tx.open_table(MEMORY_USAGE)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(SIGNALS)?;
            tx.open_table(effects::EFFECTS)?;
            tx.open_table(audit::CHECKPOINTS)?;
            tx.open_table(accounts::ACCOUNTS)?;
            tx.open_table(approvals::APPROVALS)?;
            tx.open_table(shadow::SHADOW_RUNS)?;
            tx.open_table(accounts::TOKENS)?;
            tx.open_table(DELIVERIES)?;
            tx.open_table(PENDING_DELIVERIES)?;
            tx.open_table(models::MODELS)?;
            tx.open_table(models::PREDICTIONS)?;
            Store::create_queue_tables(tx)?;
            tx.open_table(stats::STATS)?;
            tx.open_table(sessions::SESSIONS)?;
            tx.open_table(sessions::LOGIN_CODES)?;
            stats::backfill_in(tx)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// The schema records are checked against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The clock that stamps records and changes.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Runs `job` in a write transaction (group committed); returns once it is durable.
    pub fn write<R: Send + 'static>(
        &self,
        job: impl FnMut(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let _span = tracing::info_span!("roster.store.commit").entered();
        self.writer.write(job)
    }

    /// What a metrics scrape reads from the store at `now`: each worker's queue depth and
    /// the age of its oldest item, the actions held, the delivery backlog and the length of
    /// the audit chain.
    pub fn metric_gauges(&self, now: i64) -> Result<crate::metrics::Gauges, StoreError> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_read()?;
        let mut queue: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for entry in tx.open_table(queue::QUEUE)?.iter()? {
            let (k, v) = entry?;
            let item: QueueItem = decode(&k.value().to_string(), v.value())?;
            let (depth, oldest) = queue.entry(item.worker).or_insert((0, item.accepted_at));
            *depth += 1;
            *oldest = (*oldest).min(item.accepted_at);
        }
        let mut actions_held = 0;
        for entry in tx.open_table(approvals::APPROVALS)?.iter()? {
            let (k, v) = entry?;
            let approval: Approval = decode(k.value(), v.value())?;
            if matches!(
                approval.status,
                ApprovalStatus::Pending | ApprovalStatus::AwaitingOutcome
            ) {
                actions_held += 1;
            }
        }
        Ok(crate::metrics::Gauges {
            queue: queue
                .into_iter()
                .map(|(worker, (depth, oldest))| {
                    (worker, depth, now.saturating_sub(oldest).max(0) / 1000)
                })
                .collect(),
            actions_held,
            workers: Vec::new(),
            delivery_backlog: tx.open_table(PENDING_DELIVERIES)?.len()?,
            audit_entries: tx.open_table(log::EXECUTIONS)?.len()?,
        })
    }

    /// The current value of a named counter (`changes`, `signals`, `queue`, cursors).
    pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx
            .open_table(COUNTERS)?
            .get(name)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Removes the entries of a journal table (values with an `at` time) stamped before
    /// `before`; returns how many.
    fn prune_before(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        before: i64,
    ) -> Result<usize, StoreError> {
        #[derive(Deserialize)]
        struct Stamped {
            at: i64,
        }
        let old: Vec<String> = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(table)?;
            let mut old = Vec::new();
            for entry in t.iter()? {
                let (k, v) = entry?;
                if decode::<Stamped>(k.value(), v.value())?.at < before {
                    old.push(k.value().to_string());
                }
            }
            old
        };
        let count = old.len();
        if count > 0 {
            self.write(move |tx| {
                let mut t = tx.open_table(table)?;
                for k in &old {
                    t.remove(k.as_str())?;
                }
                Ok(())
            })?;
        }
        Ok(count)
    }

    /// Adds `by` to a named counter; returns its new value.
    pub fn add_to_counter(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let now = counters.get(name.as_str())?.map_or(0, |v| v.value()) + by;
            counters.insert(name.as_str(), now)?;
            Ok(now)
        })
    }

    /// Sets a named counter (a cursor).
    pub fn set_counter(&self, name: &str, value: u64) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |tx| set_counter_in(tx, &name, value))
    }

    /// Entries of a log table (keyed by position) after position `after`, oldest first, at
    /// most `limit`.
    fn log_after<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(table)?;
        let mut out = Vec::new();
        for entry in table.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))? {
            let (k, v) = entry?;
            out.push(decode(&k.value().to_string(), v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// A read transaction on the current snapshot.
    pub fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Reads one key of a worker's memory.
    pub fn memory_get(&self, worker: &str, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let full = key(worker, k)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MEMORY)?;
        Ok(table.get(full.as_str())?.map(|v| v.value().to_vec()))
    }

    /// Writes one key of a worker's memory, keeping its total size within `quota` bytes.
    pub fn memory_set(
        &self,
        worker: &str,
        k: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), StoreError> {
        let full = key(worker, k)?;
        let (worker, size, value) = (worker.to_string(), k.len() as u64, value.to_vec());
        self.write(move |tx| {
            let mut table = tx.open_table(MEMORY)?;
            let mut usage = tx.open_table(MEMORY_USAGE)?;
            let old = table
                .get(full.as_str())?
                .map(|v| size + v.value().len() as u64)
                .unwrap_or(0);
            let current = usage.get(worker.as_str())?.map(|v| v.value()).unwrap_or(0);
            let would_use = current.saturating_sub(old) + size + value.len() as u64;
            if would_use > quota {
                return Err(StoreError::QuotaExceeded { quota, would_use });
            }
            table.insert(full.as_str(), value.as_slice())?;
            usage.insert(worker.as_str(), would_use)?;
            Ok(())
        })
    }

    /// Removes one key of a worker's memory.
    pub fn memory_delete(&self, worker: &str, k: &str) -> Result<(), StoreError> {
        let full = key(worker, k)?;
        let (worker, size) = (worker.to_string(), k.len() as u64);
        self.write(move |tx| {
            let mut table = tx.open_table(MEMORY)?;
            let mut usage = tx.open_table(MEMORY_USAGE)?;
            let removed = table
                .remove(full.as_str())?
                .map(|v| size + v.value().len() as u64);
            if let Some(freed) = removed {
                let current = usage.get(worker.as_str())?.map(|v| v.value()).unwrap_or(0);
                usage.insert(worker.as_str(), current.saturating_sub(freed))?;
            }
            Ok(())
        })
    }

    /// Lists a worker's keys that start with `prefix`, in order, at most `limit`.
    pub fn memory_keys(
        &self,
        worker: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let start = key(worker, prefix)?;
        let end = prefix_end(&start);
        let skip = worker.len() + SEP.len_utf8();
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MEMORY)?;
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, _) = entry?;
            out.push(k.value()[skip..].to_string());
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Accepts a notification into the outbox.
    pub fn enqueue_notification(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.write(move |tx| enqueue_notification_in(tx, &entry))
    }

    /// Every notification in the outbox, in id order.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.all(OUTBOX)
    }

    /// A notification's delivery state (`None` for in-app only notifications).
    pub fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DELIVERIES)?;
        match table.get(id)? {
            Some(v) => Ok(Some(decode(id, v.value())?)),
            None => Ok(None),
        }
    }

    /// Deliveries due by `now` on channels `handles` accepts, at most `limit`.
    pub fn due_deliveries(
        &self,
        now: i64,
        limit: usize,
        handles: impl Fn(&str) -> bool,
    ) -> Result<Vec<(OutboxEntry, Delivery)>, StoreError> {
        let tx = self.db.begin_read()?;
        let pending = tx.open_table(PENDING_DELIVERIES)?;
        let deliveries = tx.open_table(DELIVERIES)?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in pending.iter()? {
            let (k, _) = entry?;
            let id = k.value();
            let (Some(d), Some(o)) = (deliveries.get(id)?, outbox.get(id)?) else {
                continue;
            };
            let delivery: Delivery = decode(id, d.value())?;
            let notification: OutboxEntry = decode(id, o.value())?;
            if delivery.next_at <= now && handles(&notification.channel) {
                out.push((notification, delivery));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Records a delivery attempt; a delivered or given-up notification leaves the queue.
    pub fn record_delivery(&self, id: &str, delivery: Delivery) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |tx| {
            tx.open_table(DELIVERIES)?
                .insert(id.as_str(), encode(&delivery).as_slice())?;
            if delivery.delivered_at.is_some() || delivery.gave_up {
                tx.open_table(PENDING_DELIVERIES)?.remove(id.as_str())?;
            }
            Ok(())
        })
    }

    /// Records an emitted signal; returns its position in the signal log.
    pub fn record_signal(&self, entry: &SignalEntry) -> Result<u64, StoreError> {
        let entry = entry.clone();
        self.write(move |tx| record_signal_in(tx, &entry))
    }

    /// Emitted signals after position `after`, oldest first, at most `limit`.
    pub fn signals_after(&self, after: u64, limit: usize) -> Result<Vec<SignalEntry>, StoreError> {
        self.log_after(SIGNALS, after, limit)
    }

    /// Every emitted signal, oldest first.
    pub fn signals(&self) -> Result<Vec<SignalEntry>, StoreError> {
        self.signals_after(0, usize::MAX)
    }

    fn all<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn memory_quota_counts_keys_and_values_and_frees_on_overwrite() {
        let (_d, s) = store();
        s.memory_set("w", "k", &[0; 8], 10).unwrap();
        s.memory_set("w", "k", &[0; 9], 10).unwrap();
        assert!(matches!(
            s.memory_set("w", "j", &[0; 1], 10),
            Err(StoreError::QuotaExceeded { .. })
        ));
        s.memory_delete("w", "k").unwrap();
        s.memory_set("w", "j", &[0; 1], 10).unwrap();
        assert_eq!(s.memory_keys("w", "", 10).unwrap(), vec!["j".to_string()]);
        assert_eq!(s.memory_get("other", "j").unwrap(), None);
    }
}
