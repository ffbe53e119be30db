//! Held actions and the trust curve, as the service offers them: deciding on held actions
//! (and applying what was approved, once), and each worker's stage.

use super::*;
use crate::access::Resource;
use crate::review::Stage;
use crate::store::{Approval, ApprovalFilter, ApprovalStatus, Decision, Effect, Verdict};

/// A person's decision on a held action.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DecisionRequest {
    /// `approve`, `edit` or `reject`.
    pub verdict: Verdict,
    /// Why (required to reject).
    #[serde(default)]
    pub reason: Option<String>,
    /// The edited action (for `edit`): the same kind, with changed values.
    #[serde(default)]
    pub edited: Option<Effect>,
}

impl Shared {
    /// A worker's stage on the trust curve: where a person last moved it, else where its
    /// `[review]` section starts it; `None` when it has no review settings.
    pub(crate) fn stage(&self, config: &WorkerConfig) -> Option<Stage> {
        match self.store.trust(&config.name) {
            Ok(Some(t)) => Some(t.stage),
            Ok(None) => config.review.as_ref().map(|r| r.stage),
            Err(e) => {
                // Failing safe: without the recorded stage, hold everything.
                tracing::error!("reading the stage of {}: {e}", config.name);
                Some(Stage::Assistive)
            }
        }
    }
}

impl Service {
    /// The held actions that match.
    pub fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, Error> {
        Ok(self.shared.store.approvals(filter)?)
    }

    /// A held action as the authorization policies see it (404 when there is none).
    pub fn approval_resource(&self, id: &str) -> Result<Resource, Error> {
        let approval = self
            .shared
            .store
            .approval(id)?
            .ok_or_else(|| Error::NotFound(format!("no held action `{id}`")))?;
        Ok(Resource::Approval {
            id: approval.id,
            worker: approval.worker,
            domain: approval.domain,
            owners: approval.owners,
        })
    }

    /// Records a person's decision on a held action and applies what was approved, exactly
    /// once. A rejection needs a reason; an edit needs the edited action.
    pub fn decide(&self, id: &str, by: &str, request: DecisionRequest) -> Result<Approval, Error> {
        match request.verdict {
            Verdict::Approve if request.edited.is_some() => {
                return Err(Error::InvalidRequest(
                    "an approval applies the proposal as it is; use `edit` to change it".into(),
                ));
            }
            Verdict::Edit if request.edited.is_none() => {
                return Err(Error::InvalidRequest(
                    "`edit` needs the edited action".into(),
                ));
            }
            Verdict::Reject
                if request
                    .reason
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty()) =>
            {
                return Err(Error::InvalidRequest(
                    "give a reason for the rejection".into(),
                ));
            }
            Verdict::Release | Verdict::Cancel => {
                return Err(Error::InvalidRequest(
                    "a person approves, edits or rejects".into(),
                ));
            }
            _ => {}
        }
        let decision = Decision {
            verdict: request.verdict,
            by: by.to_string(),
            at: self.shared.clock.now_ms(),
            reason: request.reason,
            edited: request.edited,
        };
        let decided = self.shared.store.decide(id, decision, None)?;
        if decided.status != ApprovalStatus::Approved {
            return Ok(decided);
        }
        Ok(self.shared.store.apply_approved(id)?)
    }

    /// Applies every approved action not yet applied (after a stop between a decision and
    /// its application); returns how many were applied.
    pub fn apply_approved(&self) -> Result<usize, Error> {
        let filter = ApprovalFilter {
            status: Some(ApprovalStatus::Approved),
            ..ApprovalFilter::default()
        };
        let mut applied = 0;
        for approval in self.shared.store.approvals(&filter)? {
            let done = self.shared.store.apply_approved(&approval.id)?;
            if done.status == ApprovalStatus::Applied {
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Cancels the held actions of `workers` that wait for a decision (the kill switch).
    pub(crate) fn cancel_held(
        &self,
        workers: &BTreeSet<String>,
        by: &str,
        reason: &str,
    ) -> Result<Vec<String>, Error> {
        let mut cancelled = Vec::new();
        for approval in self.shared.store.approvals(&ApprovalFilter::default())? {
            let open = matches!(
                approval.status,
                ApprovalStatus::Pending | ApprovalStatus::AwaitingOutcome
            );
            if !open || !workers.contains(&approval.worker) {
                continue;
            }
            let decision = Decision {
                verdict: Verdict::Cancel,
                by: by.to_string(),
                at: self.shared.clock.now_ms(),
                reason: Some(format!("the worker was paused: {reason}")),
                edited: None,
            };
            self.shared.store.decide(&approval.id, decision, None)?;
            cancelled.push(approval.id);
        }
        Ok(cancelled)
    }
}
