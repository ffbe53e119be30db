//! The action gate: the one code path every capability call goes through.
//!
//! For each call the gate counts it against the host-call limit and checks the bytes it
//! passes in ([`Gate::enter`]); the capability then checks the grant's scope and either
//! reports a denial ([`Gate::deny`]), performs a read ([`Gate::read`]) or asks the gate to
//! perform a side effect ([`Gate::act`]), which counts it against the action limit, applies
//! the execution's mode (live or dry run), runs it and records the result. Nothing else in
//! the host performs a worker's side effect, so the gate's log is the complete list of what
//! a worker attempted.

use std::time::Instant;

use serde::Serialize;

use crate::bindings::roster::types::types::{ActionState, Error as WitError, Receipt};
use crate::limits::{LimitExceeded, Limits};

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
    /// How long it took, in microseconds.
    pub duration_us: u64,
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
        }
    }
}

/// The gate of one execution.
#[derive(Debug)]
pub struct Gate {
    execution_id: String,
    limits: Limits,
    mode: Mode,
    host_calls: u32,
    actions: u32,
    log: Vec<ActionRecord>,
}

impl Gate {
    /// A gate for one execution.
    pub fn new(execution_id: String, limits: Limits, mode: Mode) -> Gate {
        Gate {
            execution_id,
            limits,
            mode,
            host_calls: 0,
            actions: 0,
            log: Vec::new(),
        }
    }

    /// Counts a host call that passes `bytes` of arguments; an `Err` is a trap that ends the
    /// execution (host-call limit or payload limit).
    pub fn enter(&mut self, bytes: u64) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.limits.host_calls {
            return Err(wasmtime::Error::new(LimitExceeded::HostCalls {
                limit: self.limits.host_calls,
            }));
        }
        if bytes > self.limits.call_bytes {
            return Err(wasmtime::Error::new(LimitExceeded::CallBytes {
                size: bytes,
                limit: self.limits.call_bytes,
            }));
        }
        Ok(())
    }

    /// Records a denial; returns the error to give the plugin.
    pub fn deny(&mut self, call: Call, reason: impl Into<String>) -> WitError {
        let reason = reason.into();
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
    /// `f` receives the action id (stable for the execution) and returns its value and a
    /// description of its output. In dry-run mode `f` is not called and the value is `None`.
    /// The outer `Err` is a trap: the action limit is exhausted.
    pub fn act<T>(
        &mut self,
        call: Call,
        f: impl FnOnce(&str) -> Result<(T, serde_json::Value), WitError>,
    ) -> wasmtime::Result<Result<(Option<T>, Receipt), WitError>> {
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
        if self.mode == Mode::DryRun {
            self.push(call, ActionResult::DryRun);
            return Ok(Ok((
                None,
                Receipt {
                    action_id,
                    state: ActionState::DryRun,
                },
            )));
        }
        match f(&action_id) {
            Ok((value, output)) => {
                self.push(call, ActionResult::Performed { output });
                Ok(Ok((
                    Some(value),
                    Receipt {
                        action_id,
                        state: ActionState::Performed,
                    },
                )))
            }
            Err(error) => Ok(Err(self.reject(call, error))),
        }
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
        self.log.push(ActionRecord {
            id,
            capability: call.capability,
            operation: call.operation,
            kind: call.kind,
            target: call.target,
            input: call.input,
            result,
            duration_us: call.started.elapsed().as_micros() as u64,
        });
    }
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
        let mut gate = Gate::new("x".into(), limits, Mode::Live);
        let first = gate.act(call(), |_| Ok(((), json!("ok")))).unwrap();
        assert!(first.is_ok());
        let err = gate.act(call(), |_| Ok(((), json!("ok")))).unwrap_err();
        assert_eq!(
            err.downcast_ref::<LimitExceeded>(),
            Some(&LimitExceeded::Actions { limit: 1 })
        );
        assert_eq!(gate.log().len(), 2);
    }

    #[test]
    fn dry_run_records_without_performing() {
        let mut gate = Gate::new("x".into(), Limits::default(), Mode::DryRun);
        let (value, receipt) = gate
            .act(call(), |_| -> Result<((), serde_json::Value), WitError> {
                panic!("a dry run must not perform the action")
            })
            .unwrap()
            .unwrap();
        assert!(value.is_none());
        assert_eq!(receipt.state, ActionState::DryRun);
        assert_eq!(gate.log()[0].result, ActionResult::DryRun);
    }

    #[test]
    fn host_calls_and_payloads_are_capped() {
        let limits = Limits {
            host_calls: 2,
            call_bytes: 10,
            ..Limits::default()
        };
        let mut gate = Gate::new("x".into(), limits, Mode::Live);
        assert!(gate.enter(10).is_ok());
        assert!(gate.enter(11).is_err());
        assert!(gate.enter(0).is_err());
    }
}
