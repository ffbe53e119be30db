//! Each worker's stage on the trust curve, changed only by a person's recorded promotion
//! (or demotion).

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::queue::{GovernanceEvent, TRIGGER_STATE, set_state_in};
use super::{Store, StoreError, append_governance_in, decode};
use crate::review::Stage;

fn key(worker: &str) -> String {
    format!("trust\u{1f}{worker}")
}

/// A worker's stage and who put it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustState {
    /// The stage.
    pub stage: Stage,
    /// Since when.
    pub since: i64,
    /// Who moved it there.
    pub by: String,
    /// Why.
    pub reason: String,
}

impl Store {
    /// A worker's recorded stage, if a person ever moved it.
    pub fn trust(&self, worker: &str) -> Result<Option<TrustState>, StoreError> {
        let k = key(worker);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TRIGGER_STATE)?;
        let Some(v) = table.get(k.as_str())? else {
            return Ok(None);
        };
        decode(&k, v.value()).map(Some)
    }

    /// Moves a worker to a stage, recording the decision in the audit trail in the same
    /// transaction.
    pub fn set_trust(
        &self,
        worker: &str,
        state: TrustState,
        event: GovernanceEvent,
    ) -> Result<(), StoreError> {
        let (k, store) = (key(worker), self.clone());
        self.write(move |tx| {
            let text = serde_json::to_string(&state).unwrap_or_default();
            set_state_in(tx, &k, &text)?;
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })
    }
}
