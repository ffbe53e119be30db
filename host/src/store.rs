//! The embedded store (redb): records of the system of record, per-worker memory, the
//! notification outbox and emitted signals.
//!
//! One redb file in the data directory. Every write is one ACID transaction committed with
//! `Durability::Immediate`. Keys are `object \x1f id` for records and `worker \x1f key` for
//! memory, so a range scan over a prefix lists one object type or one worker's keys.
//! See `docs/adr/0001-embedded-store-redb.md` for why redb.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const MEMORY: TableDefinition<&str, &[u8]> = TableDefinition::new("memory");
const MEMORY_USAGE: TableDefinition<&str, u64> = TableDefinition::new("memory_usage");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
const SIGNALS: TableDefinition<&str, &[u8]> = TableDefinition::new("signals");

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

/// The value of one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// No value.
    Null,
    /// True or false.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// A decimal number.
    Number(f64),
    /// Text.
    Text(String),
    /// A multi-select value.
    TextList(Vec<String>),
    /// A point in time: `{"timestamp": <ms since the Unix epoch>}` in JSON.
    Timestamp {
        /// Milliseconds since the Unix epoch (UTC).
        timestamp: i64,
    },
}

impl FieldValue {
    /// Whether the value counts as empty (null, empty text, empty list).
    pub fn is_empty(&self) -> bool {
        match self {
            FieldValue::Null => true,
            FieldValue::Text(t) => t.is_empty(),
            FieldValue::TextList(l) => l.is_empty(),
            _ => false,
        }
    }

    /// A numeric view for comparisons (integers, numbers and timestamps).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Integer(n) => Some(*n as f64),
            FieldValue::Number(n) => Some(*n),
            FieldValue::Timestamp { timestamp } => Some(*timestamp as f64),
            _ => None,
        }
    }

    /// The number of bytes this value carries (for boundary accounting).
    pub fn size(&self) -> u64 {
        match self {
            FieldValue::Text(t) => t.len() as u64,
            FieldValue::TextList(l) => l.iter().map(|s| s.len() as u64 + 4).sum(),
            _ => 8,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The object type.
    pub object: String,
    /// The identifier.
    pub id: String,
    /// The owning principal.
    #[serde(default)]
    pub owner: Option<String>,
    /// The fields.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
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
    /// The action id.
    pub id: String,
    /// The emitting worker.
    pub worker: String,
    /// The topic.
    pub topic: String,
    /// The JSON payload.
    pub payload: String,
}

/// A handle on the embedded store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
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

impl Store {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let store = Store { db: Arc::new(db) };
        store.create_tables()?;
        Ok(store)
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(RECORDS)?;
        tx.open_table(MEMORY)?;
        tx.open_table(MEMORY_USAGE)?;
        tx.open_table(OUTBOX)?;
        tx.open_table(SIGNALS)?;
        tx.commit()?;
        Ok(())
    }

    /// Reads one record.
    pub fn get_record(&self, object: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let k = key(object, id)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        match table.get(k.as_str())? {
            Some(v) => Ok(Some(decode(&k, v.value())?)),
            None => Ok(None),
        }
    }

    /// Inserts or replaces records (one transaction for all of them).
    pub fn put_records(&self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(RECORDS)?;
            for r in records {
                let k = key(&r.object, &r.id)?;
                table.insert(k.as_str(), encode(r).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets some fields of an existing record; returns the updated record, or `None` when it
    /// does not exist.
    pub fn update_record(
        &self,
        object: &str,
        id: &str,
        fields: &BTreeMap<String, FieldValue>,
    ) -> Result<Option<Record>, StoreError> {
        let k = key(object, id)?;
        let tx = self.db.begin_write()?;
        let updated = {
            let mut table = tx.open_table(RECORDS)?;
            let current: Option<Record> = match table.get(k.as_str())? {
                Some(v) => Some(decode(&k, v.value())?),
                None => None,
            };
            match current {
                Some(mut record) => {
                    for (name, value) in fields {
                        record.fields.insert(name.clone(), value.clone());
                    }
                    table.insert(k.as_str(), encode(&record).as_slice())?;
                    Some(record)
                }
                None => None,
            }
        };
        tx.commit()?;
        Ok(updated)
    }

    /// Deletes a record; returns whether it existed.
    pub fn delete_record(&self, object: &str, id: &str) -> Result<bool, StoreError> {
        let k = key(object, id)?;
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(RECORDS)?.remove(k.as_str())?.is_some();
        tx.commit()?;
        Ok(existed)
    }

    /// Scans the records of one object type, keeping those `keep` accepts, up to `limit`.
    pub fn scan_records(
        &self,
        object: &str,
        limit: usize,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>, StoreError> {
        let start = key(object, "")?;
        let end = prefix_end(&start);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            let record: Record = decode(k.value(), v.value())?;
            if keep(&record) {
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
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
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MEMORY)?;
            let mut usage = tx.open_table(MEMORY_USAGE)?;
            let old = table
                .get(full.as_str())?
                .map(|v| (k.len() + v.value().len()) as u64)
                .unwrap_or(0);
            let current = usage.get(worker)?.map(|v| v.value()).unwrap_or(0);
            let would_use = current.saturating_sub(old) + (k.len() + value.len()) as u64;
            if would_use > quota {
                return Err(StoreError::QuotaExceeded { quota, would_use });
            }
            table.insert(full.as_str(), value)?;
            usage.insert(worker, would_use)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes one key of a worker's memory.
    pub fn memory_delete(&self, worker: &str, k: &str) -> Result<(), StoreError> {
        let full = key(worker, k)?;
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MEMORY)?;
            let mut usage = tx.open_table(MEMORY_USAGE)?;
            let removed = table
                .remove(full.as_str())?
                .map(|v| (k.len() + v.value().len()) as u64);
            if let Some(size) = removed {
                let current = usage.get(worker)?.map(|v| v.value()).unwrap_or(0);
                usage.insert(worker, current.saturating_sub(size))?;
            }
        }
        tx.commit()?;
        Ok(())
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
        self.put(OUTBOX, &entry.id, &encode(entry))
    }

    /// Every notification in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.all(OUTBOX)
    }

    /// Records an emitted signal.
    pub fn record_signal(&self, entry: &SignalEntry) -> Result<(), StoreError> {
        self.put(SIGNALS, &entry.id, &encode(entry))
    }

    /// Every emitted signal, oldest first.
    pub fn signals(&self) -> Result<Vec<SignalEntry>, StoreError> {
        self.all(SIGNALS)
    }

    fn put(
        &self,
        table: TableDefinition<&str, &[u8]>,
        k: &str,
        v: &[u8],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(k, v)?;
        tx.commit()?;
        Ok(())
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

    fn lead(id: &str, status: &str) -> Record {
        Record {
            object: "lead".into(),
            id: id.into(),
            owner: Some("ann".into()),
            fields: [("status".to_string(), FieldValue::Text(status.into()))].into(),
        }
    }

    #[test]
    fn records_round_trip_and_scan_by_object() {
        let (_d, s) = store();
        s.put_records(&[lead("1", "new"), lead("2", "old")])
            .unwrap();
        s.put_records(&[Record {
            object: "leads".into(),
            ..lead("3", "x")
        }])
        .unwrap();
        assert_eq!(s.get_record("lead", "1").unwrap(), Some(lead("1", "new")));
        let all = s.scan_records("lead", 10, |_| true).unwrap();
        assert_eq!(all.len(), 2, "the scan must not spill into `leads`");
        let updated = s
            .update_record(
                "lead",
                "2",
                &[("status".into(), FieldValue::Text("hot".into()))].into(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(updated.fields["status"], FieldValue::Text("hot".into()));
        assert!(s.delete_record("lead", "2").unwrap());
        assert!(!s.delete_record("lead", "2").unwrap());
        assert!(
            s.update_record("lead", "2", &BTreeMap::new())
                .unwrap()
                .is_none()
        );
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

    #[test]
    fn json_field_values_keep_their_types() {
        let v: BTreeMap<String, FieldValue> = serde_json::from_str(
            r#"{"a": 1, "b": 1.5, "c": "x", "d": ["p"], "e": {"timestamp": 5}, "f": null, "g": true}"#,
        )
        .unwrap();
        assert_eq!(v["a"], FieldValue::Integer(1));
        assert_eq!(v["b"], FieldValue::Number(1.5));
        assert_eq!(v["e"], FieldValue::Timestamp { timestamp: 5 });
        assert_eq!(v["f"], FieldValue::Null);
        assert_eq!(v["g"], FieldValue::Boolean(true));
    }
}
