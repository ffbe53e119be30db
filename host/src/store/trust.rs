//! Each worker's stage on the trust curve, changed only by a person's recorded promotion
//! (or demotion).

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::log::GovernanceEvent;
use super::{TRIGGER_STATE, set_state_in};
use redb::ReadableTable;

use super::{Store, StoreError, append_governance_in, decode};

/// The trust curve's stages, in order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Proposes only: every side effect waits for a person.
    Assistive,
    /// Acts inside the organisation; outside communication and money wait for a person.
    Supervised,
    /// Acts on its own when confident; money, irreversible changes and low-confidence
    /// decisions wait for a person.
    ConditionalAutonomy,
    /// Acts on its own; only explicit rules hold anything.
    HighTrust,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [
        Stage::Assistive,
        Stage::Supervised,
        Stage::ConditionalAutonomy,
        Stage::HighTrust,
    ];

    /// The next stage up, if any.
    pub fn next(self) -> Option<Stage> {
        Stage::ALL
            .iter()
            .position(|s| *s == self)
            .and_then(|i| Stage::ALL.get(i + 1).copied())
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Assistive => "assistive",
            Stage::Supervised => "supervised",
            Stage::ConditionalAutonomy => "conditional-autonomy",
            Stage::HighTrust => "high-trust",
        }
    }
}

fn key(worker: &str) -> String {
    format!("trust\u{1f}{worker}")
}

/// A worker's stage and who put it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// How far around the time an action's execution id carries the execution log is searched
/// for it (an execution's entry is written when it ends, so entries are not strictly in
/// the order their executions started).
const ACTION_SEARCH_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The state key that marks an action as reported reversed.
fn reversal_key(action: &str) -> String {
    format!("reversal\u{1f}{action}")
}

impl Store {
    /// Records, once, that a person reversed an action `worker` performed: the action must
    /// be in the execution log as performed by that worker (or held and since applied). A
    /// made-up action, another worker's, one that was denied or never applied, or one
    /// reported before is refused and changes nothing.
    pub fn record_reversal(
        &self,
        worker: &str,
        action: &str,
        event: GovernanceEvent,
    ) -> Result<u64, StoreError> {
        self.performed_action(worker, action)?;
        let (k, store) = (reversal_key(action), self.clone());
        let action = action.to_string();
        self.write(move |tx| {
            if super::state_in(tx, &k)?.is_some() {
                return Err(StoreError::Invalid(format!(
                    "action `{action}` was reported reversed already"
                )));
            }
            set_state_in(tx, &k, &event.by)?;
            append_governance_in(tx, &store, &event)
        })
    }

    /// The record of an action `worker` performed, from the execution log.
    fn performed_action(
        &self,
        worker: &str,
        action: &str,
    ) -> Result<serde_json::Value, StoreError> {
        let unknown = || {
            StoreError::Invalid(format!(
                "`{action}` is not an action `{worker}` performed (action ids are \
                 `execution-id/index`, as the execution log shows them)"
            ))
        };
        let (execution, _) = action.split_once('/').ok_or_else(unknown)?;
        let started = uuid::Uuid::parse_str(execution)
            .ok()
            .and_then(|u| u.get_timestamp())
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                i64::try_from(secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000)
                    .saturating_add(i64::from(nanos / 1_000_000))
            })
            .ok_or_else(unknown)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(super::log::EXECUTIONS)?;
        let started_at = |seq: u64| -> Result<Option<i64>, StoreError> {
            match table.get(seq)? {
                Some(v) => Ok(Some(
                    decode::<super::log::ExecutionEntry>(&seq.to_string(), v.value())?.started_at,
                )),
                None => Ok(None),
            }
        };
        let (Some(first), Some(last)) = (table.first()?, table.last()?) else {
            return Err(unknown());
        };
        // The first entry that started within the window (entries are nearly in time
        // order; the window absorbs the difference).
        let (mut lo, mut hi) = (first.0.value(), last.0.value().saturating_add(1));
        let from = started.saturating_sub(ACTION_SEARCH_WINDOW_MS);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match started_at(mid)? {
                Some(t) if t < from => lo = mid + 1,
                _ => hi = mid,
            }
        }
        let until = started.saturating_add(ACTION_SEARCH_WINDOW_MS);
        for entry in table.range(lo..)? {
            let (k, v) = entry?;
            let e: super::log::ExecutionEntry = decode(&k.value().to_string(), v.value())?;
            if e.started_at > until {
                break;
            }
            let Some(report) = e.report.as_ref().filter(|_| e.worker == worker) else {
                continue;
            };
            if report["execution_id"].as_str() != Some(execution) {
                continue;
            }
            let Some(record) = report["actions"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["id"].as_str() == Some(action)))
            else {
                continue;
            };
            let applied = match record["result"].as_str() {
                Some("performed") => record["kind"].as_str() == Some("effect"),
                Some("held") => record["approval"].as_str().is_some_and(|id| {
                    self.approval(id)
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.status == super::ApprovalStatus::Applied)
                }),
                _ => false,
            };
            if applied {
                return Ok(record.clone());
            }
            return Err(StoreError::Invalid(format!(
                "action `{action}` of `{worker}` was not performed ({}), so it cannot have \
                 been reversed",
                record["result"].as_str().unwrap_or("unknown")
            )));
        }
        Err(unknown())
    }
}
