//! Execution statistics kept as the log grows: one row per hour, worker and status,
//! updated in the transaction that appends the entry, so a dashboard reads hours rather
//! than the log. A store written before the rows existed gets them from one pass over
//! its log when it is opened.

use std::collections::BTreeMap;

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::log::{EXECUTIONS, ExecutionEntry};
use super::{Store, StoreError, decode, encode};
use crate::clock::HOUR_MS;

/// Rows: the hour (its index since the Unix epoch, big-endian), the worker, a zero byte
/// and the entry's status → a [`Tally`].
pub(crate) const STATS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("execution_stats");

/// What the entries of one hour, worker and status add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Entries.
    pub entries: u64,
    /// How many took each whole number of milliseconds (finished − started).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub durations: BTreeMap<u64, u64>,
    /// Side effects on records performed (created, updated, deleted), replays excluded.
    #[serde(default)]
    pub records_affected: u64,
    /// Side effects held for a person's approval.
    #[serde(default)]
    pub held: u64,
    /// Executions that held at least one side effect.
    #[serde(default)]
    pub with_held: u64,
    /// Executions whose final failure ran an escalation.
    #[serde(default)]
    pub escalated: u64,
    /// Fuel the sandboxes consumed.
    #[serde(default)]
    pub fuel: u64,
    /// Side effects performed, by `capability.operation`, replays excluded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub effects: BTreeMap<String, u64>,
    /// People's decisions (governance entries), by action (`approval.approve`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decisions: BTreeMap<String, u64>,
}

impl Tally {
    /// What one log entry counts for.
    pub fn of(entry: &ExecutionEntry) -> Tally {
        let mut tally = Tally {
            entries: 1,
            ..Tally::default()
        };
        if entry.is_governance() {
            if let Some(action) = entry
                .report
                .as_ref()
                .and_then(|r| r["governance"]["action"].as_str())
            {
                tally.decisions.insert(action.to_string(), 1);
            }
            return tally;
        }
        let duration = entry.finished_at.saturating_sub(entry.started_at).max(0);
        tally.durations.insert(duration.unsigned_abs(), 1);
        tally.escalated = u64::from(entry.escalation.is_some());
        let Some(report) = &entry.report else {
            return tally;
        };
        tally.fuel = report["fuel_consumed"].as_u64().unwrap_or(0);
        for action in report["actions"].as_array().into_iter().flatten() {
            if action["kind"] != "effect" {
                continue;
            }
            match action["result"].as_str() {
                Some("held") => tally.held += 1,
                Some("performed") if action["replayed"] != true => {
                    let capability = action["capability"].as_str().unwrap_or_default();
                    let operation = action["operation"].as_str().unwrap_or_default();
                    if capability == "records" {
                        tally.records_affected += 1;
                    }
                    *tally
                        .effects
                        .entry(format!("{capability}.{operation}"))
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        tally.with_held = u64::from(tally.held > 0);
        tally
    }

    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Tally) {
        self.entries += other.entries;
        for (d, n) in &other.durations {
            *self.durations.entry(*d).or_default() += n;
        }
        self.records_affected += other.records_affected;
        self.held += other.held;
        self.with_held += other.with_held;
        self.escalated += other.escalated;
        self.fuel = self.fuel.saturating_add(other.fuel);
        for (k, n) in &other.effects {
            *self.effects.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.decisions {
            *self.decisions.entry(k.clone()).or_default() += n;
        }
    }
}

/// One row of the statistics: an hour, a worker and a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    /// The hour's start (ms since the Unix epoch).
    pub hour: i64,
    /// The worker (empty for decisions about no worker).
    pub worker: String,
    /// The entries' status (`governance` for people's decisions).
    pub status: String,
    /// What they add up to.
    pub tally: Tally,
}

fn hour_index(at: i64) -> u64 {
    // Entries before 1970 count in the first hour.
    at.div_euclid(HOUR_MS).max(0).unsigned_abs()
}

fn key(hour: u64, worker: &str, status: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + worker.len() + 1 + status.len());
    key.extend_from_slice(&hour.to_be_bytes());
    key.extend_from_slice(worker.as_bytes());
    key.push(0);
    key.extend_from_slice(status.as_bytes());
    key
}

fn parse_key(key: &[u8]) -> Option<(i64, String, String)> {
    let (hour, rest) = key.split_first_chunk::<8>()?;
    let split = rest.iter().position(|b| *b == 0)?;
    let worker = std::str::from_utf8(&rest[..split]).ok()?;
    let status = std::str::from_utf8(&rest[split + 1..]).ok()?;
    let hour = i64::try_from(u64::from_be_bytes(*hour)).ok()?;
    Some((
        hour.checked_mul(HOUR_MS)?,
        worker.to_string(),
        status.to_string(),
    ))
}

/// Counts `entry` in its hour's row, inside the transaction that appends it.
pub(crate) fn count_in(tx: &WriteTransaction, entry: &ExecutionEntry) -> Result<(), StoreError> {
    let key = key(hour_index(entry.started_at), &entry.worker, &entry.status);
    let mut table = tx.open_table(STATS)?;
    let mut tally: Tally = match table.get(key.as_slice())? {
        Some(v) => decode("execution_stats", v.value())?,
        None => Tally::default(),
    };
    tally.add(&Tally::of(entry));
    table.insert(key.as_slice(), encode(&tally).as_slice())?;
    Ok(())
}

/// Builds the rows from the whole log when a store written before they existed is opened.
pub(crate) fn backfill_in(tx: &WriteTransaction) -> Result<(), StoreError> {
    if !tx.open_table(STATS)?.is_empty()? {
        return Ok(());
    }
    let mut rows: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
    for item in tx.open_table(EXECUTIONS)?.iter()? {
        let (seq, bytes) = item?;
        let entry: ExecutionEntry = decode(&seq.value().to_string(), bytes.value())?;
        rows.entry(key(
            hour_index(entry.started_at),
            &entry.worker,
            &entry.status,
        ))
        .or_default()
        .add(&Tally::of(&entry));
    }
    let mut table = tx.open_table(STATS)?;
    for (k, tally) in rows {
        table.insert(k.as_slice(), encode(&tally).as_slice())?;
    }
    Ok(())
}

impl Store {
    /// The statistics rows of the hours from the one holding `from` up to the one holding
    /// `to` (inclusive), in hour order.
    pub fn execution_stats(&self, from: i64, to: i64) -> Result<Vec<StatsRow>, StoreError> {
        let (first, last) = (hour_index(from), hour_index(to));
        let mut rows = Vec::new();
        if first > last {
            return Ok(rows);
        }
        let tx = self.db.begin_read()?;
        let table = tx.open_table(STATS)?;
        let start = first.to_be_bytes();
        let range = match last.checked_add(1) {
            Some(end) => table.range(start.as_slice()..end.to_be_bytes().as_slice())?,
            None => table.range(start.as_slice()..)?,
        };
        for item in range {
            let (k, v) = item?;
            let Some((hour, worker, status)) = parse_key(k.value()) else {
                continue;
            };
            rows.push(StatsRow {
                hour,
                worker,
                status,
                tally: decode("execution_stats", v.value())?,
            });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::schema::Schema;

    fn entry(worker: &str, status: &str, started_at: i64, took: i64) -> ExecutionEntry {
        let governance = super::super::log::GovernanceEvent {
            action: "approval.approve".into(),
            by: "rita".into(),
            worker: Some(worker.into()),
            subject: None,
            reason: None,
            data: serde_json::json!({}),
        };
        let mut e = governance.entry(started_at);
        e.status = status.into();
        e.finished_at = started_at + took;
        if status != crate::store::GOVERNANCE {
            e.report = Some(serde_json::json!({
                "fuel_consumed": 1000,
                "actions": [
                    {"kind": "effect", "result": "performed", "capability": "records", "operation": "update"},
                    {"kind": "effect", "result": "performed", "capability": "records", "operation": "update", "replayed": true},
                    {"kind": "effect", "result": "held", "capability": "notify", "operation": "send"},
                    {"kind": "read", "result": "performed", "capability": "records", "operation": "get"}
                ]
            }));
        }
        e
    }

    #[test]
    fn rows_count_each_entry_once_in_its_hour_and_a_reopened_store_rebuilds_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let clock = Arc::new(ManualClock::new(0));
        let store = Store::open_with(&path, Schema::standard(), clock.clone()).unwrap();
        let hour = 500 * HOUR_MS;
        for (worker, status, at, took) in [
            ("a", "success", hour + 10, 4),
            ("a", "success", hour + 20, 4),
            ("a", "failed", hour + 30, 9),
            ("b", "success", hour + HOUR_MS + 1, 1),
            ("a", crate::store::GOVERNANCE, hour + 40, 0),
        ] {
            let e = entry(worker, status, at, took);
            let s = store.clone();
            store
                .write(move |tx| super::super::audit::append_entry_in(tx, &s, &e))
                .unwrap();
        }
        let rows = store.execution_stats(hour, hour + 2 * HOUR_MS).unwrap();
        let find = |w: &str, s: &str| {
            rows.iter()
                .find(|r| r.worker == w && r.status == s)
                .cloned()
        };
        let ok = find("a", "success").unwrap();
        assert_eq!(ok.hour, hour);
        assert_eq!(ok.tally.entries, 2);
        assert_eq!(ok.tally.durations, BTreeMap::from([(4, 2)]));
        assert_eq!(ok.tally.records_affected, 2, "replays are not counted");
        assert_eq!(ok.tally.held, 2);
        assert_eq!(ok.tally.with_held, 2);
        assert_eq!(ok.tally.fuel, 2000);
        assert_eq!(
            ok.tally.effects,
            BTreeMap::from([("records.update".into(), 2)])
        );
        assert_eq!(find("a", "failed").unwrap().tally.entries, 1);
        assert_eq!(find("b", "success").unwrap().hour, hour + HOUR_MS);
        let decisions = find("a", crate::store::GOVERNANCE).unwrap().tally;
        assert_eq!(
            decisions.decisions,
            BTreeMap::from([("approval.approve".into(), 1)])
        );
        assert!(decisions.durations.is_empty());
        // Only the hours asked for.
        assert_eq!(
            store
                .execution_stats(hour + HOUR_MS, hour + HOUR_MS)
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .execution_stats(hour + 2 * HOUR_MS, hour)
                .unwrap()
                .is_empty()
        );

        // A store whose rows are missing (written before they existed) gets them back.
        let before = rows.clone();
        store
            .write(|tx| {
                let mut t = tx.open_table(STATS)?;
                let keys: Vec<Vec<u8>> = t
                    .iter()?
                    .filter_map(Result::ok)
                    .map(|(k, _)| k.value().to_vec())
                    .collect();
                for k in keys {
                    t.remove(k.as_slice())?;
                }
                Ok(())
            })
            .unwrap();
        assert!(
            store
                .execution_stats(hour, hour + 2 * HOUR_MS)
                .unwrap()
                .is_empty()
        );
        drop(store);
        let store = Store::open_with(&path, Schema::standard(), clock).unwrap();
        assert_eq!(
            store.execution_stats(hour, hour + 2 * HOUR_MS).unwrap(),
            before
        );
    }
}
