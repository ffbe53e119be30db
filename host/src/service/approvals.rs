//! Held actions and the trust curve, as the service offers them: deciding on held actions
//! (and applying what was approved, once), and each worker's stage.

use super::*;
use crate::governance::access::Resource;
use crate::store::Stage;
use crate::store::{Approval, ApprovalFilter, ApprovalStatus, Decision, Effect, Verdict};

/// A person's decision on a held action.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
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
        self.standing(config).stage
    }

    /// A worker's deployment status and stage, read from the store once and kept until a
    /// person changes them ([`Shared::forget_standing`]). A read that fails is not kept and
    /// fails safe: not live, every action held.
    pub(crate) fn standing(&self, config: &WorkerConfig) -> Standing {
        if let Some(s) = self
            .standing
            .lock()
            .ok()
            .and_then(|m| m.get(&config.name).copied())
        {
            return s;
        }
        let live = self
            .store
            .deployment(&config.name)
            .map(|d| d.map_or(config.deployment, |d| d.status) == crate::store::DeployStatus::Live);
        let stage = crate::governance::trust::current_stage(
            &self.store,
            &config.name,
            config.starting_stage(),
        );
        match (live, stage) {
            (Ok(live), Ok(stage)) => {
                let s = Standing { live, stage };
                if let Ok(mut m) = self.standing.lock() {
                    m.insert(config.name.clone(), s);
                }
                s
            }
            (live, stage) => {
                if let Err(e) = &live {
                    tracing::error!("reading the deployment of {}: {e}", config.name);
                }
                if let Err(e) = &stage {
                    tracing::error!("reading the stage of {}: {e}", config.name);
                }
                Standing {
                    live: *live.as_ref().unwrap_or(&false),
                    stage: stage.unwrap_or(Some(Stage::Assistive)),
                }
            }
        }
    }

    /// Drops a worker's kept standing after a person changed it.
    pub(crate) fn forget_standing(&self, worker: &str) {
        if let Ok(mut m) = self.standing.lock() {
            m.remove(worker);
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
        let approval = self
            .shared
            .store
            .approval(id)?
            .ok_or_else(|| Error::NotFound(format!("no held action `{id}`")))?;
        // What an edit applies is the proposal's target with the edit's values.
        let edited = request
            .edited
            .map(|e| {
                approval
                    .proposed
                    .with_edit(&e)
                    .map_err(|e| Error::InvalidRequest(format!("the edited action: {e}")))
                    .and_then(|e| self.checked_edit(e))
            })
            .transpose()?;
        if request.verdict != Verdict::Reject {
            let applied = edited.as_ref().unwrap_or(&approval.proposed);
            self.check_still_granted(&approval.worker, applied)?;
        }
        let decision = Decision {
            verdict: request.verdict,
            by: by.to_string(),
            at: self.shared.clock.now_ms(),
            reason: request.reason,
            edited,
        };
        let decided = self.shared.store.decide(id, decision, None)?;
        let done = if decided.status == ApprovalStatus::Approved {
            self.shared.store.apply_approved(id)?
        } else {
            decided
        };
        self.propose_promotion(&done.worker);
        Ok(done)
    }

    /// Checks an edited action's values as the capability would have: record fields against
    /// the schema (coerced to their types), message and payload sizes.
    fn checked_edit(&self, effect: Effect) -> Result<Effect, Error> {
        const MAX_TEXT: usize = 64 * 1024;
        let schema = self.shared.store.schema();
        let invalid = |e: String| Error::InvalidRequest(format!("the edited action: {e}"));
        Ok(match effect {
            Effect::RecordCreate {
                object,
                id,
                owner,
                fields,
            } => Effect::RecordCreate {
                fields: schema
                    .coerce_all(&object, fields)
                    .map_err(|e| invalid(e.to_string()))?,
                object,
                id,
                owner,
            },
            Effect::RecordUpdate { object, id, fields } => Effect::RecordUpdate {
                fields: schema
                    .coerce_all(&object, fields)
                    .map_err(|e| invalid(e.to_string()))?,
                object,
                id,
            },
            Effect::Notify { body, .. } if body.len() > MAX_TEXT => {
                return Err(invalid(format!("the body exceeds {MAX_TEXT} bytes")));
            }
            Effect::Signal { payload, .. } if payload.len() > MAX_TEXT => {
                return Err(invalid(format!("the payload exceeds {MAX_TEXT} bytes")));
            }
            other => other,
        })
    }

    /// Checks an effect about to be applied against the worker's grant as it stands now
    /// and its principal's visibility: a grant narrowed or revoked since the worker
    /// proposed the action, or a record that has moved out of the principal's sight, stops
    /// it (the held action stays pending).
    fn check_still_granted(&self, worker: &str, effect: &Effect) -> Result<(), Error> {
        let installed = self.installed(worker)?;
        let refused = |why: String| {
            Err(Error::InvalidRequest(format!(
                "the action cannot be applied: {why}"
            )))
        };
        if self.controls().get(worker).is_some_and(|c| c.grant_revoked) {
            return refused(format!("the grant of `{worker}` is revoked"));
        }
        let grant = &installed.config.grant;
        let scopes = &grant.capabilities;
        match effect {
            Effect::RecordCreate { object, fields, .. }
            | Effect::RecordUpdate { object, fields, .. } => {
                let Some(scope) = scopes.records.as_ref().and_then(|r| r.object(object)) else {
                    return refused(format!("object `{object}` is not granted"));
                };
                if matches!(effect, Effect::RecordCreate { .. }) && !scope.create {
                    return refused(format!("creating `{object}` records is not granted"));
                }
                if let Some(field) = fields.keys().find(|f| !scope.may_write(f)) {
                    return refused(format!("field `{field}` of `{object}` is not writable"));
                }
            }
            Effect::RecordDelete { object, .. } => {
                let scope = scopes.records.as_ref().and_then(|r| r.object(object));
                if !scope.is_some_and(|s| s.delete) {
                    return refused(format!("deleting `{object}` records is not granted"));
                }
            }
            Effect::Notify {
                channel,
                recipients,
                ..
            } => {
                let Some(scope) = &scopes.notify else {
                    return refused("capability `notify` is not granted".into());
                };
                if !scope.channels.iter().any(|c| c.as_str() == channel) {
                    return refused(format!("channel `{channel}` is not granted"));
                }
                if recipients.len() > scope.max_recipients as usize {
                    return refused(format!(
                        "{} recipients, more than the granted {}",
                        recipients.len(),
                        scope.max_recipients
                    ));
                }
                if let Some(r) = recipients.iter().find(|r| !scope.may_address(r)) {
                    return refused(format!("recipient `{r}` is outside the granted patterns"));
                }
            }
            Effect::Signal { topic, .. } => {
                if !scopes.signals.as_ref().is_some_and(|s| s.may_emit(topic)) {
                    return refused(format!("topic `{topic}` is outside the granted topics"));
                }
            }
        }
        if let Effect::RecordUpdate { object, id, .. } | Effect::RecordDelete { object, id } =
            effect
            && let Some(record) = self.shared.store.get_record(object, id)?
            && !self
                .shared
                .runtime
                .directory()
                .can_see(&grant.grant.principal, &record)
        {
            return refused(format!(
                "{object}/{id} is outside the visibility of `{}`",
                grant.grant.principal
            ));
        }
        Ok(())
    }

    /// Alerts a worker's owners once when its metrics meet every threshold of the next
    /// stage (the promotion itself is a person's decision).
    fn propose_promotion(&self, worker: &str) {
        let Ok(w) = self.installed(worker) else {
            return;
        };
        let report = match self.trust(worker) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("trust metrics of {worker}: {e}");
                return;
            }
        };
        let Some(p) = report.promotion.filter(|p| p.ready) else {
            return;
        };
        let (alert, notifications) = owner_alert(
            &self.shared,
            &w.config,
            "promotion",
            format!("promotion/{worker}/{}", p.to.as_str()),
            format!("{worker} is ready for {}", p.to.as_str()),
            format!(
                "Worker `{worker}` meets every threshold to move from {} to {} (approval rate {:.0}%, {} decisions, {} executions). A business owner or admin promotes it with `roster workers stage {worker} --to {}`.",
                p.from.as_str(),
                p.to.as_str(),
                report.metrics.approval_rate * 100.0,
                report.metrics.decisions(),
                report.metrics.executions,
                p.to.as_str()
            ),
        );
        if let Err(e) = self.shared.store.raise_alert(alert, notifications) {
            tracing::error!("alerting about {worker}'s promotion: {e}");
        }
    }

    /// A worker's place on the trust curve: stage, metrics from the audit trail, and the
    /// next promotion.
    pub fn trust(&self, worker: &str) -> Result<crate::governance::trust::TrustReport, Error> {
        let w = self.installed(worker)?;
        Ok(crate::governance::trust::report(
            &self.shared.store,
            &w.config.name,
            w.config.starting_stage(),
            &self.shared.config.trust,
            self.shared.clock.now_ms(),
        )?)
    }

    /// Moves a worker on the trust curve: up one stage when the promotion is ready, or down
    /// any number of stages. The move and its reason are an audit entry.
    pub fn set_stage(
        &self,
        worker: &str,
        to: Stage,
        by: &str,
        reason: &str,
    ) -> Result<crate::governance::trust::TrustReport, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest("give a reason for the move".into()));
        }
        let report = self.trust(worker)?;
        let Some(stage) = report.stage else {
            return Err(Error::InvalidRequest(format!(
                "worker `{worker}` has no [review] section, so it is not on the trust curve"
            )));
        };
        if to == stage {
            return Err(Error::InvalidRequest(format!(
                "worker `{worker}` is already {}",
                stage.as_str()
            )));
        }
        let action = if to > stage {
            let Some(p) = report.promotion.as_ref().filter(|p| p.to == to) else {
                return Err(Error::InvalidRequest(format!(
                    "a promotion moves one stage at a time: from {} the next is {}",
                    stage.as_str(),
                    stage.next().map_or("none", Stage::as_str)
                )));
            };
            if !p.ready {
                let unmet: Vec<String> = p
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| {
                        format!(
                            "{} {:.2} (needs {} {:.2})",
                            c.metric,
                            c.value,
                            if c.minimum { ">=" } else { "<=" },
                            c.threshold
                        )
                    })
                    .collect();
                return Err(Error::InvalidRequest(format!(
                    "not ready for {}: {}",
                    to.as_str(),
                    unmet.join(", ")
                )));
            }
            "trust.promote"
        } else {
            "trust.demote"
        };
        let state = crate::store::TrustState {
            stage: to,
            since: self.shared.clock.now_ms(),
            by: by.to_string(),
            reason: reason.to_string(),
        };
        let event = GovernanceEvent {
            action: action.into(),
            by: by.to_string(),
            worker: Some(worker.to_string()),
            subject: None,
            reason: Some(reason.to_string()),
            data: json!({ "from": stage, "to": to, "metrics": report.metrics }),
        };
        self.shared.store.set_trust(worker, state, event)?;
        self.shared.forget_standing(worker);
        tracing::info!(
            "worker `{worker}` moved from {} to {} by {by}",
            stage.as_str(),
            to.as_str()
        );
        self.trust(worker)
    }

    /// Records that a person reversed an action the worker performed (it counts against
    /// the worker on the trust curve), once per action; the action must be one the
    /// worker performed.
    pub fn report_reversal(
        &self,
        worker: &str,
        action: &str,
        by: &str,
        reason: &str,
    ) -> Result<u64, Error> {
        self.installed(worker)?;
        if reason.trim().is_empty() || action.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "name the reversed action and give a reason".into(),
            ));
        }
        let event = GovernanceEvent {
            action: "action.reverse".into(),
            by: by.to_string(),
            worker: Some(worker.to_string()),
            subject: Some(action.to_string()),
            reason: Some(reason.to_string()),
            data: json!({}),
        };
        Ok(self.shared.store.record_reversal(worker, action, event)?)
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
