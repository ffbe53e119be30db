//! The action gate: the one code path every capability call goes through.
//!
//! For each call the gate counts it against the host-call limit and checks the bytes it
//! passes in ([`Gate::enter`]); the capability then checks the grant's scope and either
//! reports a denial ([`Gate::deny`]), performs a read ([`Gate::read`]) or asks the gate to
//! perform a side effect ([`Gate::act`]), which counts it against the action limit, applies
//! the execution's mode (live or dry run), runs it and records the result. Nothing else in
//! the host performs a worker's side effect, so the gate's log is the complete list of what
//! a worker attempted.
//!
//! Every side effect carries an idempotency key derived from the worker's identity and
//! version, the trigger and the effect's position in the execution: a retry or a replay of
//! the same trigger computes the same keys, and the capabilities use them so that nothing
//! happens twice (see [`Gate::act`]).

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sandbox::bindings::roster::types::types::{ActionState, Error as WitError, Receipt};
use crate::sandbox::limits::{LimitExceeded, Limits};
use crate::sandbox::payload::{MAX_LIST_ELEMENTS, Payload, bounded_text};

/// Whether side effects happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Side effects are performed.
    #[default]
    Live,
    /// Side effects are checked and recorded but not performed.
    DryRun,
}

/// What kind of call an action record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A read with no side effect.
    Read,
    /// A change to the worker's own memory (counted as a host call, not as an action).
    State,
    /// A side effect on the outside world (counted against the action limit).
    Effect,
}

/// How a recorded call ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum ActionResult {
    /// It was performed (or, for reads, answered).
    Performed {
        /// What it produced (an id, a status, a count).
        output: serde_json::Value,
    },
    /// It was checked and recorded but not performed (dry run).
    DryRun,
    /// A review rule held it for a person's approval; nothing has happened yet.
    Held {
        /// The held action's id (`apr-...`).
        approval: String,
        /// Why it was held.
        reasons: Vec<String>,
    },
    /// The grant does not cover it; the plugin received `denied`.
    Denied {
        /// Why.
        reason: String,
    },
    /// It was allowed but failed; the plugin received the error.
    Failed {
        /// The error given to the plugin.
        error: String,
    },
}

impl ActionResult {
    /// How it ended, as the metrics and logs name it.
    pub fn name(&self) -> &'static str {
        match self {
            ActionResult::Performed { .. } => "performed",
            ActionResult::DryRun => "dry-run",
            ActionResult::Held { .. } => "held",
            ActionResult::Denied { .. } => "denied",
            ActionResult::Failed { .. } => "failed",
        }
    }
}

/// One entry of the execution's action log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    /// `execution-id/index`; also the id in the plugin's receipt.
    pub id: String,
    /// The capability (`records`, `notify`, `http`, ...).
    pub capability: &'static str,
    /// The operation (`create`, `send`, ...).
    pub operation: &'static str,
    /// Read, state change or side effect.
    pub kind: ActionKind,
    /// What it was aimed at (`lead/L-1`, `email:ann@example.com`, a URL).
    pub target: String,
    /// The inputs the plugin gave (sizes rather than bodies for large values).
    pub input: serde_json::Value,
    /// How it ended.
    #[serde(flatten)]
    pub result: ActionResult,
    /// The side effect's idempotency key (side effects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Whether an earlier attempt of the same trigger had already performed it, so the
    /// recorded result was returned instead of doing it again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// The SHA-256 of the proposed effect with its values (records, notify, signals), so
    /// two runs can be compared without storing message bodies in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_digest: Option<String>,
    /// The proposed effect with its values, in dry runs (staging and shadow runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<serde_json::Value>,
}

/// The identifiers of a side effect being performed.
#[derive(Debug, Clone, Copy)]
pub struct EffectIds<'a> {
    /// The action's id in the execution log (`execution-id/index`).
    pub action_id: &'a str,
    /// The idempotency key: the same for every attempt of the same trigger.
    pub key: &'a str,
}

/// A side effect that was performed (now, or by an earlier attempt).
#[derive(Debug)]
pub struct Applied<T> {
    /// What the capability returns to the plugin.
    pub value: T,
    /// A description of the result for the action log.
    pub output: serde_json::Value,
    /// Whether an earlier attempt had performed it and its recorded result was reused.
    pub replayed: bool,
}

impl<T> Applied<T> {
    /// An effect performed now.
    pub fn new(value: T, output: serde_json::Value) -> Self {
        Applied {
            value,
            output,
            replayed: false,
        }
    }
}

/// Why a side effect was not performed.
#[derive(Debug)]
pub enum Refused {
    /// A rule of the grant forbids it (found only while performing, e.g. after DNS).
    Denied(String),
    /// It was allowed but failed.
    Failed(WitError),
}

impl From<WitError> for Refused {
    fn from(e: WitError) -> Self {
        Refused::Failed(e)
    }
}

/// A capability call on its way through the gate.
#[derive(Debug)]
pub struct Call {
    capability: &'static str,
    operation: &'static str,
    kind: ActionKind,
    target: String,
    input: serde_json::Value,
    started: Instant,
    key: Option<String>,
    replayed: bool,
    proposal: Option<serde_json::Value>,
}

impl Call {
    /// Starts describing a call.
    pub fn new(
        capability: &'static str,
        operation: &'static str,
        kind: ActionKind,
        target: impl Into<String>,
        input: serde_json::Value,
    ) -> Call {
        Call {
            capability,
            operation,
            kind,
            target: target.into(),
            input,
            started: Instant::now(),
            key: None,
            replayed: false,
            proposal: None,
        }
    }

    /// Attaches the effect the call proposes, with its values.
    pub fn proposing(mut self, effect: &impl Serialize) -> Call {
        self.proposal = serde_json::to_value(effect).ok();
        self
    }
}

impl Call {
    /// The capability.
    pub fn capability(&self) -> &'static str {
        self.capability
    }

    /// The operation.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

/// The trap that ends an execution whose worker was paused while it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worker was paused while this execution ran; it was interrupted")]
pub struct Halted;

/// The gate of one execution.
#[derive(Debug)]
pub struct Gate {
    halt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    execution_id: String,
    idempotency_scope: String,
    limits: Limits,
    mode: Mode,
    host_calls: u32,
    actions: u32,
    log: Vec<ActionRecord>,
    /// The bytes of targets and inputs the log holds (counted against its budget).
    log_bytes: usize,
}

impl Gate {
    /// A gate for one execution. `idempotency_scope` names what the execution is an attempt
    /// of — the worker, its version and the trigger — and is the same for every attempt.
    pub fn new(
        execution_id: String,
        idempotency_scope: String,
        limits: Limits,
        mode: Mode,
    ) -> Gate {
        Gate {
            halt: None,
            execution_id,
            idempotency_scope,
            limits,
            mode,
            host_calls: 0,
            actions: 0,
            log: Vec::new(),
            log_bytes: 0,
        }
    }

    /// Makes every host call trap with [`Halted`] once `halt` is set.
    pub fn with_halt(mut self, halt: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Gate {
        self.halt = Some(halt);
        self
    }

    /// Counts a host call that passes `payload` as arguments; an `Err` is a trap that ends
    /// the execution (the worker was paused, host-call limit, payload limit or a list
    /// longer than [`MAX_LIST_ELEMENTS`]).
    pub fn enter(&mut self, payload: Payload) -> wasmtime::Result<()> {
        if self
            .halt
            .as_ref()
            .is_some_and(|h| h.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(wasmtime::Error::new(Halted));
        }
        self.host_calls += 1;
        if self.host_calls > self.limits.host_calls {
            return Err(wasmtime::Error::new(LimitExceeded::HostCalls {
                limit: self.limits.host_calls,
            }));
        }
        if payload.longest() > MAX_LIST_ELEMENTS {
            return Err(wasmtime::Error::new(LimitExceeded::ListLength {
                len: payload.longest() as u64,
                limit: MAX_LIST_ELEMENTS as u64,
            }));
        }
        if payload.size() > self.limits.call_bytes {
            return Err(wasmtime::Error::new(LimitExceeded::CallBytes {
                size: payload.size(),
                limit: self.limits.call_bytes,
            }));
        }
        Ok(())
    }

    /// Records a denial; returns the error to give the plugin.
    pub fn deny(&mut self, call: Call, reason: impl Into<String>) -> WitError {
        let reason = bounded_text(reason.into(), MAX_RECORD_TEXT);
        tracing::info!(
            capability = call.capability,
            operation = call.operation,
            target = %call.target,
            %reason,
            "denied"
        );
        self.push(
            call,
            ActionResult::Denied {
                reason: reason.clone(),
            },
        );
        WitError::Denied(reason)
    }

    /// Records a denial but gives the plugin `error` instead of `denied` (a read outside the
    /// principal's visibility is recorded as denied yet reads as not found, so the worker
    /// cannot tell hidden records from missing ones).
    pub fn deny_with(
        &mut self,
        call: Call,
        reason: impl Into<String>,
        error: WitError,
    ) -> WitError {
        self.deny(call, reason);
        error
    }

    /// Records a call that failed validation before it could be performed.
    pub fn reject(&mut self, call: Call, error: WitError) -> WitError {
        self.push(
            call,
            ActionResult::Failed {
                error: describe(&error),
            },
        );
        error
    }

    /// Performs a read (or a change to the worker's own memory): runs `f` and records it.
    pub fn read<T>(
        &mut self,
        call: Call,
        f: impl FnOnce() -> Result<(T, serde_json::Value), WitError>,
    ) -> Result<T, WitError> {
        match f() {
            Ok((value, output)) => {
                self.push(call, ActionResult::Performed { output });
                Ok(value)
            }
            Err(error) => Err(self.reject(call, error)),
        }
    }

    /// Performs a side effect within the action limit and the execution's mode.
    ///
    /// `f` receives the action id and the effect's idempotency key, and returns what it
    /// did; a capability that can tell an effect was already performed under the same key
    /// returns the recorded result with `replayed` set instead of doing it again. In
    /// dry-run mode `f` is not called and the value is `None`. The outer `Err` is a trap:
    /// the action limit is exhausted (checked before anything is performed).
    pub fn act<T>(
        &mut self,
        call: Call,
        f: impl FnOnce(EffectIds<'_>) -> Result<Applied<T>, Refused>,
    ) -> wasmtime::Result<Result<(Option<T>, Receipt), WitError>> {
        let (mut call, action_id, key) = match self.begin_effect(call)? {
            Ok(started) => started,
            Err(dry_run) => return Ok(Ok((None, dry_run))),
        };
        let ids = EffectIds {
            action_id: &action_id,
            key: &key,
        };
        match f(ids) {
            Ok(applied) => {
                call.replayed = applied.replayed;
                self.push(
                    call,
                    ActionResult::Performed {
                        output: applied.output,
                    },
                );
                Ok(Ok((
                    Some(applied.value),
                    Receipt {
                        action_id,
                        state: ActionState::Performed,
                    },
                )))
            }
            Err(Refused::Denied(reason)) => {
                // A denial is not an action; it does not count against the limit.
                self.actions -= 1;
                Ok(Err(self.deny(call, reason)))
            }
            Err(Refused::Failed(error)) => Ok(Err(self.reject(call, error))),
        }
    }

    /// Holds a side effect for a person's approval instead of performing it: counted
    /// against the action limit like any side effect, recorded as held, and answered with a
    /// `held-for-approval` receipt whose id is the held action's. `store` stores the held
    /// action under the effect's idempotency key and returns its id (the same id when a
    /// retry holds it again). In dry-run mode nothing is stored and the action is recorded
    /// as a dry run.
    pub fn hold(
        &mut self,
        call: Call,
        reasons: Vec<String>,
        store: impl FnOnce(EffectIds<'_>) -> Result<(String, bool), WitError>,
    ) -> wasmtime::Result<Result<Receipt, WitError>> {
        let (mut call, action_id, key) = match self.begin_effect(call)? {
            Ok(started) => started,
            Err(dry_run) => return Ok(Ok(dry_run)),
        };
        let ids = EffectIds {
            action_id: &action_id,
            key: &key,
        };
        match store(ids) {
            Ok((approval, replayed)) => {
                call.replayed = replayed;
                self.push(
                    call,
                    ActionResult::Held {
                        approval: approval.clone(),
                        reasons,
                    },
                );
                Ok(Ok(Receipt {
                    action_id: approval,
                    state: ActionState::HeldForApproval,
                }))
            }
            Err(error) => Ok(Err(self.reject(call, error))),
        }
    }

    /// Counts a side effect against the action limit (a trap past it) and gives it its
    /// action id and idempotency key; in dry-run mode records it and returns the receipt
    /// instead.
    fn begin_effect(
        &mut self,
        mut call: Call,
    ) -> wasmtime::Result<Result<(Call, String, String), Receipt>> {
        self.actions += 1;
        if self.actions > self.limits.actions {
            let limit = self.limits.actions;
            self.push(
                call,
                ActionResult::Failed {
                    error: format!("action limit of {limit} reached"),
                },
            );
            return Err(wasmtime::Error::new(LimitExceeded::Actions { limit }));
        }
        let action_id = self.next_id();
        let key = self.idempotency_key(self.actions);
        call.key = Some(key.clone());
        if self.mode == Mode::DryRun {
            self.push(call, ActionResult::DryRun);
            return Ok(Err(Receipt {
                action_id,
                state: ActionState::DryRun,
            }));
        }
        Ok(Ok((call, action_id, key)))
    }

    /// The idempotency key of the `n`th side effect (from 1) of this execution.
    fn idempotency_key(&self, n: u32) -> String {
        let digest = Sha256::digest(format!("{}\u{1f}{n}", self.idempotency_scope));
        hex::encode(&digest[..16])
    }

    /// The id the next recorded call will get.
    pub fn next_id(&self) -> String {
        format!("{}/{}", self.execution_id, self.log.len())
    }

    /// The execution's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The action log so far.
    pub fn log(&self) -> &[ActionRecord] {
        &self.log
    }

    /// Takes the action log, leaving it empty.
    pub fn take_log(&mut self) -> Vec<ActionRecord> {
        std::mem::take(&mut self.log)
    }

    /// How many host calls were made.
    pub fn host_calls(&self) -> u32 {
        self.host_calls
    }

    fn push(&mut self, call: Call, result: ActionResult) {
        let id = self.next_id();
        let proposal_digest = call
            .proposal
            .as_ref()
            .map(|p| hex::encode(Sha256::digest(p.to_string().as_bytes())));
        let proposal = call.proposal.filter(|_| self.mode == Mode::DryRun);
        // What a record keeps of the worker's strings is bounded, and once the log has
        // used its budget a record keeps only what was called and how it ended.
        let full = self.log_bytes < ACTION_LOG_BUDGET;
        let text_cap = if full {
            MAX_RECORD_TEXT
        } else {
            MAX_RECORD_TEXT_OVER_BUDGET
        };
        let target = bounded_text(call.target, text_cap);
        let input = if full {
            bounded_input(call.input)
        } else {
            serde_json::Value::Null
        };
        let result = match result {
            ActionResult::Denied { reason } => ActionResult::Denied {
                reason: bounded_text(reason, text_cap),
            },
            ActionResult::Failed { error } => ActionResult::Failed {
                error: bounded_text(error, text_cap),
            },
            other => other,
        };
        let reason = match &result {
            ActionResult::Denied { reason } => reason.len(),
            ActionResult::Failed { error } => error.len(),
            _ => 0,
        };
        self.log_bytes = self.log_bytes.saturating_add(
            RECORD_OVERHEAD + target.len() + reason + json_size(&input, MAX_RECORD_INPUT),
        );
        self.log.push(ActionRecord {
            id,
            capability: call.capability,
            operation: call.operation,
            kind: call.kind,
            target,
            input,
            result,
            idempotency_key: call.key,
            replayed: call.replayed,
            duration_us: call.started.elapsed().as_micros() as u64,
            proposal_digest,
            proposal,
        });
    }
}

/// The most bytes of a worker's text (a target, a reason, an error) one action record
/// keeps.
const MAX_RECORD_TEXT: usize = 1024;
/// The same, once the action log has used its budget.
const MAX_RECORD_TEXT_OVER_BUDGET: usize = 128;
/// The most bytes of inputs one action record keeps; larger inputs are summarised.
const MAX_RECORD_INPUT: usize = 4096;
/// The bytes of targets and inputs an execution's action log keeps in full; past it,
/// records keep what was called and how it ended.
const ACTION_LOG_BUDGET: usize = 1 << 20;
/// What a record costs besides its target and inputs.
const RECORD_OVERHEAD: usize = 128;

/// `input` if its JSON is small, else a summary saying how large it was.
fn bounded_input(input: serde_json::Value) -> serde_json::Value {
    let size = json_size(&input, MAX_RECORD_INPUT + 1);
    if size <= MAX_RECORD_INPUT {
        return input;
    }
    let preview = bounded_text(input.to_string(), MAX_RECORD_TEXT);
    serde_json::json!({ "truncated": true, "preview": preview })
}

/// Roughly how many bytes `value` takes as JSON, counting no further than `stop`.
fn json_size(value: &serde_json::Value, stop: usize) -> usize {
    use serde_json::Value as J;
    let mut size = 0usize;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        size = size.saturating_add(match v {
            J::Null | J::Bool(_) | J::Number(_) => 8,
            J::String(s) => s.len() + 2,
            J::Array(items) => {
                pending.extend(items);
                2 + items.len()
            }
            J::Object(map) => {
                pending.extend(map.values());
                2 + map.keys().map(|k| k.len() + 4).sum::<usize>()
            }
        });
        if size >= stop {
            break;
        }
    }
    size
}

/// `kind: reason` for an error given to a plugin.
pub fn describe(error: &WitError) -> String {
    match error {
        WitError::Denied(r) => format!("denied: {r}"),
        WitError::NotFound(r) => format!("not-found: {r}"),
        WitError::InvalidInput(r) => format!("invalid-input: {r}"),
        WitError::Unavailable(r) => format!("unavailable: {r}"),
        WitError::BudgetExceeded(r) => format!("budget-exceeded: {r}"),
        WitError::Other(r) => format!("other: {r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call() -> Call {
        Call::new("records", "create", ActionKind::Effect, "lead", json!({}))
    }

    #[test]
    fn actions_beyond_the_limit_trap_and_are_recorded() {
        let limits = Limits {
            actions: 1,
            ..Limits::default()
        };
        let mut gate = Gate::new("x".into(), "scope".into(), limits, Mode::Live);
        let first = gate
            .act(call(), |_| Ok(Applied::new((), json!("ok"))))
            .unwrap();
        assert!(first.is_ok());
        let err = gate
            .act(call(), |_| Ok(Applied::new((), json!("ok"))))
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<LimitExceeded>(),
            Some(&LimitExceeded::Actions { limit: 1 })
        );
        assert_eq!(gate.log().len(), 2);
    }

    #[test]
    fn dry_run_records_without_performing() {
        let mut gate = Gate::new("x".into(), "scope".into(), Limits::default(), Mode::DryRun);
        let (value, receipt) = gate
            .act(call(), |_| -> Result<Applied<()>, Refused> {
                panic!("a dry run must not perform the action")
            })
            .unwrap()
            .unwrap();
        assert!(value.is_none());
        assert_eq!(receipt.state, ActionState::DryRun);
        assert_eq!(gate.log()[0].result, ActionResult::DryRun);
    }

    #[test]
    fn idempotency_keys_are_stable_per_scope_and_position() {
        let keys = |scope: &str| {
            let mut gate = Gate::new("x".into(), scope.into(), Limits::default(), Mode::Live);
            let mut keys = Vec::new();
            for _ in 0..3 {
                gate.act(call(), |ids| {
                    keys.push(ids.key.to_string());
                    Ok(Applied::new((), json!("ok")))
                })
                .unwrap()
                .unwrap();
            }
            keys
        };
        let first = keys("w@1/trigger-1");
        assert_eq!(first, keys("w@1/trigger-1"), "a retry gets the same keys");
        assert_ne!(first, keys("w@1/trigger-2"), "another trigger gets others");
        assert_ne!(first[0], first[1], "each effect has its own key");
    }

    #[test]
    fn denials_found_while_performing_are_recorded_as_denials() {
        let mut gate = Gate::new("x".into(), "s".into(), Limits::default(), Mode::Live);
        let err = gate
            .act(call(), |_| -> Result<Applied<()>, Refused> {
                Err(Refused::Denied("not granted".into()))
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, WitError::Denied(_)));
        assert!(matches!(gate.log()[0].result, ActionResult::Denied { .. }));
        assert_eq!(gate.actions, 0, "a denial is not an action");
    }

    #[test]
    fn no_host_call_passes_once_the_worker_is_halted() {
        let halt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut gate = Gate::new("x".into(), "s".into(), Limits::default(), Mode::Live)
            .with_halt(halt.clone());
        assert!(gate.enter(Payload::default().bytes(1)).is_ok());
        halt.store(true, std::sync::atomic::Ordering::SeqCst);
        let err = gate.enter(Payload::default().bytes(1)).unwrap_err();
        assert_eq!(err.downcast_ref::<Halted>(), Some(&Halted));
    }

    #[test]
    fn host_calls_and_payloads_are_capped() {
        let limits = Limits {
            host_calls: 2,
            call_bytes: 10,
            ..Limits::default()
        };
        let mut gate = Gate::new("x".into(), "scope".into(), limits, Mode::Live);
        assert!(gate.enter(Payload::default().bytes(10)).is_ok());
        assert!(gate.enter(Payload::default().bytes(11)).is_err());
        assert!(gate.enter(Payload::default()).is_err());
    }

    #[test]
    fn what_a_record_keeps_of_a_worker_is_bounded() {
        let mut gate = Gate::new("x".into(), "s".into(), Limits::default(), Mode::Live);
        for _ in 0..2000 {
            let huge = Call::new(
                "records",
                "create",
                ActionKind::Effect,
                "t".repeat(100_000),
                json!({ "fields": vec!["f".repeat(1000); 100] }),
            );
            gate.deny(huge, "r".repeat(100_000));
        }
        let sizes: Vec<usize> = gate
            .log()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap().len())
            .collect();
        let kept: usize = sizes.iter().sum();
        // 400 MB of worker strings; what is kept is the budget plus a few hundred bytes a
        // record once it is spent.
        assert!(kept < 3 << 20, "the log keeps {kept} bytes");
        assert!(sizes[1999] < 600, "{}", sizes[1999]);
        let first = &gate.log()[0];
        assert!(first.target.ends_with("[truncated from 100000 bytes]"));
        assert_eq!(first.input["truncated"], json!(true));
        assert!(matches!(&first.result, ActionResult::Denied { reason } if reason.len() < 1100));
    }
}
