//! The checkpoint every holdable side effect passes before the gate performs it: when a
//! review rule matches, the effect is stored as a held action and the worker gets a
//! `held-for-approval` receipt (see [`crate::governance::review`]). [`HostState::propose`]
//! is the whole sequence a holdable effect in the store follows, from the checkpoint to the
//! write performed once under its idempotency key.

use redb::WriteTransaction;

use super::store_error;
use crate::governance::review::{Proposal, number};
use crate::sandbox::bindings::roster::types::types::{Error, Receipt};
use crate::sandbox::gate::{Applied, Call, EffectIds};
use crate::sandbox::state::HostState;
use crate::store::Risk;
use crate::store::{Approval, ApprovalStatus, Effect, StoreError};
use crate::value::FieldValue;

/// What the checkpoint decided.
pub(crate) enum Reviewed {
    /// Held (or refused while holding it): the answer for the worker.
    Held(Result<Receipt, Error>),
    /// Not held: perform it.
    Proceed(Box<Call>),
}

impl HostState {
    /// Holds `effect` when a review rule matches it.
    pub(crate) fn review(
        &mut self,
        call: Call,
        effect: Effect,
        risk: Risk,
    ) -> wasmtime::Result<Reviewed> {
        if let Some(path) = &self.escalated.path
            && !path.permits(call.capability(), call.operation())
        {
            let reason = format!(
                "escalation path `{}` permits {} only",
                path.name,
                path.actions.join(", ")
            );
            return Ok(Reviewed::Held(Err(self.gate.deny(call, reason))));
        }
        let Some(review) = self.review.clone() else {
            return Ok(Reviewed::Proceed(Box::new(call)));
        };
        let store = self.worker.services.store.clone();
        let (object, proposed, current) = match &effect {
            Effect::RecordCreate { object, fields, .. } => {
                (Some(object.clone()), Some(fields.clone()), None)
            }
            Effect::RecordUpdate { object, id, fields } => (
                Some(object.clone()),
                Some(fields.clone()),
                store
                    .get_record(object, id)
                    .ok()
                    .flatten()
                    .map(|r| r.fields),
            ),
            Effect::RecordDelete { object, id } => (
                Some(object.clone()),
                None,
                store
                    .get_record(object, id)
                    .ok()
                    .flatten()
                    .map(|r| r.fields),
            ),
            _ => (None, None, None),
        };
        let value = |field: &str| -> Option<f64> {
            let from = |fields: &Option<std::collections::BTreeMap<String, FieldValue>>| {
                fields.as_ref().and_then(|f| f.get(field)).and_then(number)
            };
            from(&proposed)
                .or_else(|| from(&current))
                .or_else(|| review.fields.get(field).and_then(number))
        };
        let proposal = Proposal {
            capability: call.capability(),
            operation: call.operation(),
            risk,
            object: object.as_deref(),
            value: &value,
        };
        let Some(hold) = review.checkpoints.check(&proposal) else {
            return Ok(Reviewed::Proceed(Box::new(call)));
        };
        let worker = self.worker.clone();
        let now = store.clock().now_ms();
        let reasons = hold.reasons.clone();
        let answer = self.gate.hold(call, reasons, |ids| {
            let approval = Approval {
                id: format!("apr-{}", ids.key),
                worker: review.worker.clone(),
                plugin: worker.plugin.clone(),
                version: worker.version.clone(),
                domain: review.domain.clone(),
                owners: review.owners.clone(),
                reviewers: review.reviewers.clone(),
                stage: review.stage.map(|s| s.as_str().to_string()),
                action_id: ids.action_id.to_string(),
                trigger: review.trigger.clone(),
                event_id: review.event_id.clone(),
                record: review.record.clone(),
                data: serde_json::json!({
                    "record": review.fields,
                    "payload": review.payload,
                    "target": current,
                }),
                proposed: effect,
                risk,
                reasons: hold.reasons,
                release_at_confidence: hold.release_at_confidence,
                confidence: None,
                key: ids.key.to_string(),
                actor: format!("worker:{}", worker.plugin),
                status: if hold.release_at_confidence.is_some() {
                    ApprovalStatus::AwaitingOutcome
                } else {
                    ApprovalStatus::Pending
                },
                created_at: now,
                decision: None,
                applied: None,
            };
            store
                .hold(approval)
                .map(|(a, replayed)| (a.id, replayed))
                .map_err(|e| Error::Unavailable(e.to_string()))
        })?;
        Ok(Reviewed::Held(answer))
    }
}

/// What a holdable side effect in the store came to.
pub(crate) enum Proposed {
    /// Held for a person's decision (or refused while holding it): the worker's answer.
    Held(Result<Receipt, Error>),
    /// Passed to the gate: what the write answered (`None` in a dry run) and the receipt.
    Done(Result<(Option<serde_json::Value>, Receipt), Error>),
}

impl Proposed {
    /// The worker's receipt, however the effect ended.
    pub(crate) fn receipt(self) -> Result<Receipt, Error> {
        match self {
            Proposed::Held(answer) => answer,
            Proposed::Done(done) => done.map(|(_, receipt)| receipt),
        }
    }
}

impl HostState {
    /// The sequence every holdable side effect in the store follows (records, notify,
    /// signals): the review checkpoint, which may hold `effect` for a person; then the gate,
    /// which counts it and, unless this is a dry run, runs `write` once under the effect's
    /// idempotency key in the transaction that journals it, so a retry gets the journalled
    /// answer instead of writing again. `missing` turns an answer that says the target was
    /// not there into the worker's error.
    pub(crate) fn propose(
        &mut self,
        call: Call,
        effect: Effect,
        risk: Risk,
        mut write: impl FnMut(&WriteTransaction, EffectIds<'_>) -> Result<serde_json::Value, StoreError>
        + Send
        + 'static,
        missing: impl FnOnce(&serde_json::Value) -> Option<Error>,
    ) -> wasmtime::Result<Proposed> {
        let call = match self.review(call, effect, risk)? {
            Reviewed::Held(answer) => return Ok(Proposed::Held(answer)),
            Reviewed::Proceed(call) => *call,
        };
        let store = self.worker.services.store.clone();
        let done = self.gate.act(call, |ids| {
            let (action_id, key) = (ids.action_id.to_string(), ids.key.to_string());
            let (output, replayed) = store
                .once(ids.key, move |tx| {
                    let ids = EffectIds {
                        action_id: &action_id,
                        key: &key,
                    };
                    write(tx, ids)
                })
                .map_err(store_error)?;
            if let Some(error) = missing(&output) {
                return Err(error.into());
            }
            Ok(Applied {
                value: output.clone(),
                output,
                replayed,
            })
        })?;
        Ok(Proposed::Done(done))
    }
}
