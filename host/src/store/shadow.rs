//! Shadow runs: what a new version proposed beside the live one, on the same trigger.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode, next_counter};

pub(crate) const SHADOW_RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("shadow_runs");

/// One action a run proposed, in the form two versions are compared in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedAction {
    /// `capability.operation`.
    pub action: String,
    /// What it was aimed at.
    pub target: String,
    /// How it ended (`performed`, `held`, `dry-run`, `denied`, `failed`).
    pub result: String,
    /// The digest of what it proposed (values included).
    pub digest: String,
    /// What it proposed, when the run was a dry run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<serde_json::Value>,
}

/// The live and the shadow version on one trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRun {
    /// Position (assigned when recorded).
    pub seq: u64,
    /// The installed worker.
    pub worker: String,
    /// The event.
    pub event_id: String,
    /// `object/id` of the record, if any.
    pub record: Option<String>,
    /// When.
    pub at: i64,
    /// The live version.
    pub live_version: String,
    /// The shadow version.
    pub shadow_version: String,
    /// How the live run ended.
    pub live_status: String,
    /// How the shadow run ended.
    pub shadow_status: String,
    /// The live run's side effects, in order.
    pub live: Vec<ProposedAction>,
    /// The shadow run's side effects, in order.
    pub shadow: Vec<ProposedAction>,
    /// Where they differ (empty when they agree).
    pub differences: Vec<String>,
}

impl Store {
    /// Records a shadow run; returns its position.
    pub fn record_shadow(&self, run: ShadowRun) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let seq = next_counter(tx, "shadow")? + 1;
            let mut run = run.clone();
            run.seq = seq;
            tx.open_table(SHADOW_RUNS)?
                .insert(seq, encode(&run).as_slice())?;
            Ok(seq)
        })
    }

    /// A worker's shadow runs, oldest first.
    pub fn shadow_runs(&self, worker: &str) -> Result<Vec<ShadowRun>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SHADOW_RUNS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let run: ShadowRun = decode(&k.value().to_string(), v.value())?;
            if run.worker == worker {
                out.push(run);
            }
        }
        Ok(out)
    }
}
