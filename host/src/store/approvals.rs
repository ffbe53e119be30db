//! Held actions: side effects that wait for a person's approval.
//!
//! A held action is stored with everything the reviewer needs (the trigger, the data the
//! worker saw, the proposed effect, its confidence and the reasons it was held). A person
//! approves it, edits then approves it, or rejects it, once; the decision, the worker's
//! feedback (in its memory, under `roster/feedback/<approval id>`) and an audit entry are
//! written in one transaction. Applying an approved action is a second transaction that
//! performs the effect under its idempotency key and marks the action applied, so an
//! approved action is applied exactly once even when the host stops between the two: on
//! start the host applies whatever was approved and not yet applied.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::effect::{Effect, carries};
use super::effects::{journal_in, journalled_in};
use super::log::GovernanceEvent;
use super::{
    OutboxEntry, Record, SignalEntry, Store, StoreError, append_governance_in, create_record_in,
    decode, delete_record_in, encode, enqueue_notification_in, record_signal_in, update_record_in,
};
use crate::classifier::Feedback;

/// How much harm a side effect can do, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Reads (never held; listed for completeness).
    Read,
    /// Changes inside the organisation's own systems (records, in-app notes, signals).
    InternalWrite,
    /// Messages that leave the organisation (email, SMS, Slack, Teams).
    ExternalCommunication,
    /// Money or anything that cannot be undone (financial records, deletions).
    FinancialOrIrreversible,
}

pub(crate) const APPROVALS: TableDefinition<&str, &[u8]> = TableDefinition::new("approvals");

/// The memory key prefix under which a worker finds reviewers' feedback.
pub const FEEDBACK_PREFIX: &str = "roster/feedback/";

/// Where a held action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalStatus {
    /// Held until the execution ends and reports its confidence.
    AwaitingOutcome,
    /// Waiting for a person.
    Pending,
    /// Approved (possibly edited), not yet applied.
    Approved,
    /// Applied.
    Applied,
    /// Rejected.
    Rejected,
    /// Cancelled (the worker was paused by the kill switch).
    Cancelled,
    /// Approved, but applying it failed (the record is gone, the data no longer fits).
    Failed,
}

/// What a person (or the confidence rule) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Apply as proposed.
    Approve,
    /// Apply an edited version.
    Edit,
    /// Do not apply.
    Reject,
    /// Released by the host: the reported confidence met the threshold.
    Release,
    /// Cancelled by the kill switch.
    Cancel,
}

/// A decision on a held action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// What was decided.
    pub verdict: Verdict,
    /// Who decided (an account id, or `policy:confidence`).
    pub by: String,
    /// When.
    pub at: i64,
    /// Why (required to reject).
    pub reason: Option<String>,
    /// The edited effect, for `edit`.
    pub edited: Option<Effect>,
}

/// What applying an approved action did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Application {
    /// When.
    pub at: i64,
    /// The effect's result (the record id, the notification id, ...).
    pub output: serde_json::Value,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A held action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// `apr-` and the effect's idempotency key.
    pub id: String,
    /// The installed worker.
    pub worker: String,
    /// Its plugin id and version.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// Its domain.
    pub domain: String,
    /// Its owners (who may not decide on it).
    pub owners: Vec<String>,
    /// Who is told it waits (the worker's `reviewers`, else its business owner).
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Its stage on the trust curve when it proposed this.
    pub stage: Option<String>,
    /// The action's id in the execution log (`execution/index`).
    pub action_id: String,
    /// The trigger's description.
    pub trigger: String,
    /// The event's id.
    pub event_id: String,
    /// `object/id` of the trigger record, if any.
    pub record: Option<String>,
    /// The data the worker used: the trigger record as it saw it, the event's payload.
    pub data: serde_json::Value,
    /// The proposed effect.
    pub proposed: Effect,
    /// Its risk level.
    pub risk: Risk,
    /// Why it was held.
    pub reasons: Vec<String>,
    /// The confidence that releases it without a person (confidence rules only).
    pub release_at_confidence: Option<f32>,
    /// The confidence the worker reported.
    pub confidence: Option<f32>,
    /// The effect's idempotency key.
    pub key: String,
    /// Who the change log names for record writes.
    pub actor: String,
    /// Where it is.
    pub status: ApprovalStatus,
    /// When it was held.
    pub created_at: i64,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// What applying it did.
    pub applied: Option<Application>,
}

impl Approval {
    /// The effect to apply: the edited one, or the proposed one.
    pub fn effect(&self) -> &Effect {
        self.decision
            .as_ref()
            .and_then(|d| d.edited.as_ref())
            .unwrap_or(&self.proposed)
    }
}

/// Stores a held action unless one with its id exists; returns the stored one. A
/// pending one is announced to its reviewers.
pub(crate) fn hold_in(tx: &WriteTransaction, approval: &Approval) -> Result<Approval, StoreError> {
    let mut table = tx.open_table(APPROVALS)?;
    if let Some(v) = table.get(approval.id.as_str())? {
        return decode(&approval.id, v.value());
    }
    table.insert(approval.id.as_str(), encode(approval).as_slice())?;
    drop(table);
    if approval.status == ApprovalStatus::Pending {
        announce_in(tx, approval)?;
    }
    Ok(approval.clone())
}

/// Tells the reviewers, in the in-app notification centre, that an action waits for them.
fn announce_in(tx: &WriteTransaction, approval: &Approval) -> Result<(), StoreError> {
    if approval.reviewers.is_empty() {
        return Ok(());
    }
    let entry = OutboxEntry {
        id: format!("approval/{}", approval.id),
        worker: approval.plugin.clone(),
        channel: "in-app".into(),
        recipients: approval.reviewers.clone(),
        subject: Some(format!(
            "Approval needed: {} by {}",
            approval.proposed.action(),
            approval.worker
        )),
        body: format!(
            "{} proposes {} ({}); held because {}. Decide with `roster approvals show {}`.",
            approval.worker,
            approval.proposed.action(),
            approval.record.as_deref().unwrap_or("no record"),
            approval.reasons.join("; "),
            approval.id
        ),
    };
    enqueue_notification_in(tx, &entry)
}

fn load_in(tx: &WriteTransaction, id: &str) -> Result<Approval, StoreError> {
    tx.open_table(APPROVALS)?
        .get(id)?
        .map(|v| decode(id, v.value()))
        .transpose()?
        .ok_or_else(|| StoreError::Invalid(format!("no held action `{id}`")))
}

fn save_in(tx: &WriteTransaction, approval: &Approval) -> Result<(), StoreError> {
    tx.open_table(APPROVALS)?
        .insert(approval.id.as_str(), encode(approval).as_slice())?;
    Ok(())
}

/// Performs an effect inside a transaction; returns its output.
pub(crate) fn perform_in(
    tx: &WriteTransaction,
    store: &Store,
    approval: &Approval,
) -> Result<serde_json::Value, StoreError> {
    let actor = approval.actor.as_str();
    Ok(match approval.effect().clone() {
        Effect::RecordCreate {
            object,
            id,
            owner,
            fields,
        } => {
            let record = Record {
                object,
                id,
                owner,
                fields,
            };
            let created = create_record_in(tx, store, record, actor)?;
            serde_json::json!({ "id": created.id })
        }
        Effect::RecordUpdate { object, id, fields } => {
            match update_record_in(tx, store, &object, &id, &fields, actor)? {
                Some(_) => serde_json::json!({ "updated": fields.len() }),
                None => {
                    return Err(StoreError::Invalid(format!(
                        "{object}/{id} no longer exists"
                    )));
                }
            }
        }
        Effect::RecordDelete { object, id } => {
            if !delete_record_in(tx, store, &object, &id, actor)? {
                return Err(StoreError::Invalid(format!(
                    "{object}/{id} no longer exists"
                )));
            }
            serde_json::json!({ "deleted": true })
        }
        Effect::Notify {
            channel,
            recipients,
            subject,
            body,
        } => {
            let entry = OutboxEntry {
                id: approval.key.clone(),
                worker: approval.plugin.clone(),
                channel,
                recipients,
                subject,
                body,
            };
            enqueue_notification_in(tx, &entry)?;
            serde_json::json!({ "queued": entry.id })
        }
        Effect::Signal { topic, payload, .. } => {
            let chain = match &approval.proposed {
                Effect::Signal { chain, .. } => chain.clone(),
                _ => vec![approval.plugin.clone()],
            };
            let entry = SignalEntry {
                seq: 0,
                id: approval.action_id.clone(),
                worker: approval.plugin.clone(),
                topic,
                payload,
                chain,
            };
            let seq = record_signal_in(tx, &entry)?;
            serde_json::json!({ "signal": entry.id, "seq": seq })
        }
    })
}

/// Which held actions to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFilter {
    /// Only this status.
    #[serde(default)]
    pub status: Option<ApprovalStatus>,
    /// Only this worker.
    #[serde(default)]
    pub worker: Option<String>,
    /// Only this domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Only those held at or after this time (ms since the Unix epoch).
    #[serde(default)]
    pub since: Option<i64>,
}

impl Store {
    /// Holds an action once per idempotency key: a retry of the same trigger finds the
    /// action it held before instead of holding it twice. (The journal entry is kept under
    /// `held:<key>`; the key itself journals the effect when it is applied.)
    pub fn hold(&self, approval: Approval) -> Result<(Approval, bool), StoreError> {
        let key = format!("held:{}", approval.key);
        let (output, replayed) = self.once(&key, move |tx| {
            let stored = hold_in(tx, &approval)?;
            Ok(serde_json::json!({ "held": stored.id }))
        })?;
        let id = output["held"].as_str().unwrap_or_default().to_string();
        let stored = self
            .approval(&id)?
            .ok_or_else(|| StoreError::Invalid(format!("held action `{id}` vanished")))?;
        Ok((stored, replayed))
    }

    /// One held action.
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let tx = self.db.begin_read()?;
        tx.open_table(APPROVALS)?
            .get(id)?
            .map(|v| decode(id, v.value()))
            .transpose()
    }

    /// The held actions that match, oldest first.
    pub fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(APPROVALS)?;
        let mut out: Vec<Approval> = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let a: Approval = decode(k.value(), v.value())?;
            if filter.status.is_none_or(|s| s == a.status)
                && filter.worker.as_ref().is_none_or(|w| *w == a.worker)
                && filter.domain.as_ref().is_none_or(|d| *d == a.domain)
                && filter.since.is_none_or(|t| a.created_at >= t)
            {
                out.push(a);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Records a decision on a held action, once: the decision, the worker's feedback and
    /// an audit entry in one transaction. Only a pending action can be decided by a person
    /// (`release` also takes one awaiting its execution's outcome); a second decision is
    /// refused and changes nothing.
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        confidence: Option<f32>,
    ) -> Result<Approval, StoreError> {
        let (id, store) = (id.to_string(), self.clone());
        self.write(move |tx| {
            let mut approval = load_in(tx, &id)?;
            let open = match decision.verdict {
                Verdict::Release | Verdict::Cancel => matches!(
                    approval.status,
                    ApprovalStatus::AwaitingOutcome | ApprovalStatus::Pending
                ),
                _ => approval.status == ApprovalStatus::Pending,
            };
            if !open {
                let how = approval
                    .decision
                    .as_ref()
                    .map(|d| format!(" by {} ({:?})", d.by, d.verdict))
                    .unwrap_or_default();
                return Err(StoreError::Invalid(format!(
                    "held action `{id}` is {:?}{how}; it can be decided once",
                    approval.status
                )));
            }
            let mut decision = decision.clone();
            if let Some(edited) = &decision.edited {
                decision.edited = Some(
                    approval
                        .proposed
                        .with_edit(edited)
                        .map_err(StoreError::Invalid)?,
                );
            }
            approval.status = match decision.verdict {
                Verdict::Approve | Verdict::Edit | Verdict::Release => ApprovalStatus::Approved,
                Verdict::Reject => ApprovalStatus::Rejected,
                Verdict::Cancel => ApprovalStatus::Cancelled,
            };
            if confidence.is_some() {
                approval.confidence = confidence;
            }
            approval.decision = Some(decision.clone());
            save_in(tx, &approval)?;
            let feedback = serde_json::json!({
                "approval": approval.id,
                "action": approval.proposed.action(),
                "verdict": decision.verdict,
                "reason": decision.reason,
                "proposed": approval.proposed,
                "edited": decision.edited,
                "confidence": approval.confidence,
                "at": decision.at,
            });
            super::memory_put_in(
                tx,
                &approval.plugin,
                &format!("{FEEDBACK_PREFIX}{}", approval.id),
                &encode(&feedback),
            )?;
            let event = GovernanceEvent {
                action: format!(
                    "approval.{}",
                    serde_json::to_value(decision.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
                by: decision.by.clone(),
                worker: Some(approval.worker.clone()),
                subject: Some(approval.id.clone()),
                reason: decision.reason.clone(),
                data: serde_json::json!({
                    "action": approval.proposed.action(),
                    "action-id": approval.action_id,
                    "proposed": approval.proposed,
                    "edited": decision.edited,
                }),
            };
            append_governance_in(tx, &store, &event)?;
            super::models::learn_from_decision_in(
                tx,
                &approval.plugin,
                &approval.event_id,
                &approval.id,
                |label, labels| feedback_for(&approval, &decision, label, labels),
            )?;
            Ok(approval)
        })
    }

    /// Hands an action held until its execution's outcome to a person (the confidence was
    /// too low, or the execution failed), noting the confidence reported.
    pub fn await_person(&self, id: &str, confidence: Option<f32>) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut approval = load_in(tx, &id)?;
            if approval.status == ApprovalStatus::AwaitingOutcome {
                approval.status = ApprovalStatus::Pending;
                approval.confidence = confidence;
                save_in(tx, &approval)?;
                announce_in(tx, &approval)?;
            }
            Ok(())
        })
    }

    /// Applies an approved action exactly once: the effect (under its idempotency key)
    /// and the `applied` mark in one transaction. Anything but an approved action is
    /// returned unchanged.
    pub fn apply_approved(&self, id: &str) -> Result<Approval, StoreError> {
        let id = id.to_string();
        let now = self.clock.now_ms();
        let result = self.write({
            let (id, store) = (id.clone(), self.clone());
            move |tx| {
                let mut approval = load_in(tx, &id)?;
                if approval.status != ApprovalStatus::Approved {
                    return Ok(approval);
                }
                let output = match journalled_in(tx, &approval.key)? {
                    Some(found) => found,
                    None => {
                        let output = perform_in(tx, &store, &approval)?;
                        journal_in(tx, &approval.key, now, &output)?;
                        output
                    }
                };
                approval.status = ApprovalStatus::Applied;
                approval.applied = Some(Application {
                    at: now,
                    output,
                    error: None,
                });
                save_in(tx, &approval)?;
                Ok(approval)
            }
        });
        match result {
            // The effect no longer fits (the record is gone, the schema changed): the
            // action is marked failed with the reason, and nothing was applied.
            Err(
                e @ (StoreError::Invalid(_) | StoreError::Schema(_) | StoreError::Exists { .. }),
            ) => {
                let reason = e.to_string();
                self.write(move |tx| {
                    let mut approval = load_in(tx, &id)?;
                    if approval.status == ApprovalStatus::Approved {
                        approval.status = ApprovalStatus::Failed;
                        approval.applied = Some(Application {
                            at: now,
                            output: serde_json::Value::Null,
                            error: Some(reason.clone()),
                        });
                        save_in(tx, &approval)?;
                    }
                    Ok(approval)
                })
            }
            other => other,
        }
    }
}

/// What a decision says about a prediction of `label` among `labels`, when the held
/// action carried it; `None` when the decision says nothing about it.
fn feedback_for(
    approval: &Approval,
    decision: &Decision,
    label: &str,
    labels: &[String],
) -> Option<Feedback> {
    if !carries(&approval.proposed, label) {
        return None;
    }
    match decision.verdict {
        Verdict::Approve => Some(Feedback::Approved),
        Verdict::Reject => Some(Feedback::Rejected),
        Verdict::Edit => {
            let edited = decision.edited.as_ref()?;
            if carries(edited, label) {
                return Some(Feedback::Approved);
            }
            Some(
                labels
                    .iter()
                    .find(|l| *l != label && carries(edited, l))
                    .map_or(Feedback::Rejected, |l| Feedback::Corrected {
                        label: l.clone(),
                    }),
            )
        }
        // Released by the confidence rule or cancelled: no person judged it.
        Verdict::Release | Verdict::Cancel => None,
    }
}
