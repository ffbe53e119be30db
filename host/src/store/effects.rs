//! The effect journal: which side effects were performed, by idempotency key.
//!
//! A side effect on the store (a record written, a notification queued, a signal emitted)
//! is journalled in the same transaction that performs it; a retry or a replay of the same
//! trigger finds its key and gets the recorded result back instead of doing it again. An
//! effect outside the store (an HTTP request) is journalled once it succeeded; between the
//! request and the journal entry a crash can repeat it, which is why the request carries
//! the key to the peer as `Idempotency-Key`.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

pub(crate) const EFFECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("effects");

/// A journalled effect.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journalled {
    /// When it was performed.
    at: i64,
    /// Its recorded result.
    output: serde_json::Value,
}

impl Store {
    /// Performs `job` once per `key`: the first call runs it and journals its result in the
    /// same transaction; later calls return that result. Returns the result and whether it
    /// was a replay.
    pub fn once(
        &self,
        key: &str,
        mut job: impl FnMut(&WriteTransaction) -> Result<serde_json::Value, StoreError> + Send + 'static,
    ) -> Result<(serde_json::Value, bool), StoreError> {
        let (key, now) = (key.to_string(), self.clock.now_ms());
        self.write(move |tx| {
            if let Some(found) = journalled_in(tx, &key)? {
                return Ok((found, true));
            }
            let output = job(tx)?;
            journal_in(tx, &key, now, &output)?;
            Ok((output, false))
        })
    }

    /// The recorded result of the effect with `key`, if it was performed.
    pub fn effect(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EFFECTS)?;
        match table.get(key)? {
            Some(v) => Ok(Some(decode::<Journalled>(key, v.value())?.output)),
            None => Ok(None),
        }
    }

    /// Journals an effect performed outside the store.
    pub fn remember_effect(&self, key: &str, output: serde_json::Value) -> Result<(), StoreError> {
        let (key, now) = (key.to_string(), self.clock.now_ms());
        self.write(move |tx| journal_in(tx, &key, now, &output))
    }

    /// Forgets effects performed before `before` (long after any retry of them could
    /// run); returns how many.
    pub fn prune_effects(&self, before: i64) -> Result<usize, StoreError> {
        self.prune_before(EFFECTS, before)
    }
}

/// The recorded result under `key`, inside a transaction.
pub(crate) fn journalled_in(
    tx: &WriteTransaction,
    key: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    match tx.open_table(EFFECTS)?.get(key)? {
        Some(v) => Ok(Some(decode::<Journalled>(key, v.value())?.output)),
        None => Ok(None),
    }
}

/// Journals an effect inside a transaction.
pub(crate) fn journal_in(
    tx: &WriteTransaction,
    key: &str,
    at: i64,
    output: &serde_json::Value,
) -> Result<(), StoreError> {
    let entry = Journalled {
        at,
        output: output.clone(),
    };
    tx.open_table(EFFECTS)?
        .insert(key, encode(&entry).as_slice())?;
    Ok(())
}
