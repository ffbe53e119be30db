//! Running one event in a fresh sandbox.
//!
//! Every execution gets a new `Store` instantiated from the worker's `InstancePre`, with its
//! own fuel, epoch deadline, resource limiter and action gate, and is dropped afterwards: no
//! state leaks from one execution into the next except through granted capabilities. Every
//! way an execution can end is turned into a [`Status`]; none of them affects the host or
//! other workers.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Store, Trap, WasmBacktrace};

use crate::error::Error;
use crate::governance::escalation::Escalated;
use crate::sandbox::event::event_size;
use crate::sandbox::gate::{Gate, Mode, describe};
use crate::sandbox::limits::LimitExceeded;
use crate::sandbox::loader::LoadedWorker;
use crate::sandbox::payload::bounded_text;
use crate::sandbox::report::{ExecutionReport, OutcomeReport, Status};
use crate::sandbox::state::{HostState, OutputCapture, ReviewContext};
use crate::value::{EventInput, Record};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn limit_status(hit: LimitExceeded) -> Status {
    match hit {
        LimitExceeded::Memory { .. } => Status::MemoryLimit,
        LimitExceeded::Table { .. } => Status::TableLimit,
        LimitExceeded::Actions { .. } => Status::ActionLimit,
        LimitExceeded::HostCalls { .. } => Status::HostCallLimit,
        LimitExceeded::CallBytes { .. } | LimitExceeded::ListLength { .. } => Status::PayloadLimit,
    }
}

/// A new execution id: a UUIDv7 at `now_ms`.
fn execution_id(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
    uuid::Uuid::new_v7(ts).to_string()
}

/// The status and message of a trap.
fn classify(error: &wasmtime::Error, limiter_hit: Option<LimitExceeded>) -> (Status, String) {
    if let Some(halted) = error.downcast_ref::<crate::sandbox::gate::Halted>() {
        return (Status::Interrupted, halted.to_string());
    }
    if let Some(hit) = limiter_hit.or_else(|| error.downcast_ref::<LimitExceeded>().copied()) {
        return (limit_status(hit), hit.to_string());
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let status = match trap {
            Trap::OutOfFuel => Status::OutOfFuel,
            Trap::Interrupt => Status::Timeout,
            Trap::StackOverflow => Status::StackOverflow,
            _ => Status::Trapped,
        };
        return (status, trap.to_string());
    }
    (Status::Trapped, format!("{error:#}"))
}

/// A Rust panic's location and message, from what the guest printed to standard error.
fn panic_message(printed: &str) -> Option<String> {
    let mut lines = printed.lines().skip_while(|l| !l.contains("panicked at"));
    let location = lines.next()?;
    let message: Vec<&str> = lines
        .take_while(|l| !l.starts_with("note:") && !l.trim().is_empty())
        .take(5)
        .collect();
    Some(
        format!("{} {}", location.trim(), message.join(" "))
            .trim()
            .to_string(),
    )
}

/// How one execution runs; `Run::from(mode)` for a plain run of an event.
#[derive(Debug, Default)]
pub struct Run<'a> {
    /// Whether side effects happen.
    pub mode: Mode,
    /// The record the event names, when the caller read it already (the service reads it
    /// once, for conditions and for the event); `None` reads it from the store.
    pub record: Option<Option<Record>>,
    /// What this is an attempt at: every attempt with the same value (the service passes
    /// the installation, trigger and event) derives the same idempotency keys for its side
    /// effects, so a retry does not repeat what an earlier attempt did; `None` uses the
    /// event's id.
    pub attempt_of: Option<&'a str>,
    /// The review rules that hold matching side effects for a person's approval.
    pub review: Option<ReviewContext>,
    /// For an execution a signal started: the chain its signals extend, and the escalation
    /// path restricting what it may do.
    pub escalated: Escalated,
    /// Settings for this execution instead of the installation's (a rule's step
    /// conditions, evaluated by the host, ride along this way).
    pub settings: Option<String>,
}

impl From<Mode> for Run<'_> {
    fn from(mode: Mode) -> Self {
        Run {
            mode,
            ..Run::default()
        }
    }
}

impl LoadedWorker {
    /// Runs one event. `Err` only when the event itself is invalid (nothing ran); every way
    /// the worker can fail is a status in the report.
    pub fn execute<'a>(
        &self,
        input: &EventInput,
        run: impl Into<Run<'a>>,
    ) -> Result<ExecutionReport, Error> {
        let Run {
            mode,
            record,
            attempt_of,
            review,
            escalated,
            settings,
        } = run.into();
        let record = match record {
            Some(record) => record,
            None => input.read_record(&self.context.services.store)?,
        };
        let ctx = &self.context;
        let limits = ctx.limits;
        // The id carries the host clock's time, like the execution log's entries, so an
        // action id (`execution-id/index`) leads back to its entry.
        let execution_id = execution_id(ctx.services.store.clock().now_ms());
        let event_id = input.id.clone().unwrap_or_else(|| execution_id.clone());
        let idempotency_scope = format!(
            "{}@{}\u{1f}{}",
            ctx.plugin,
            ctx.version,
            attempt_of.unwrap_or(&event_id)
        );
        let mut event = input.to_wit(ctx, &event_id, now_ms(), record)?;
        if let Some(settings) = settings {
            event.settings = settings;
        }
        let size = event_size(&event);
        if size > limits.call_bytes {
            return Err(Error::InvalidEvent(format!(
                "the event carries {size} bytes, more than the limit of {}",
                limits.call_bytes
            )));
        }

        let started = Instant::now();
        let deadline = started + std::time::Duration::from_millis(limits.timeout_ms);
        let output = OutputCapture::new(limits.log_bytes as usize);
        let gate = Gate::new(execution_id.clone(), idempotency_scope, limits, mode)
            .with_halt(ctx.halt.clone());
        let mut state = HostState::new(ctx.clone(), gate, &output, deadline);
        state.review = review.map(std::sync::Arc::new);
        state.event_id = event_id.clone();
        state.escalated = escalated;
        let mut store = Store::new(self.runtime.engine.wasmtime(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(limits.fuel)?;
        // Checked at every epoch tick: a paused worker is interrupted within one tick, and
        // the wall-clock limit ends the execution at the first tick past its deadline.
        let halt = ctx.halt.clone();
        store.epoch_deadline_callback(move |_| {
            if halt.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(wasmtime::Error::new(crate::sandbox::gate::Halted));
            }
            if Instant::now() >= deadline {
                return Err(wasmtime::Error::new(Trap::Interrupt));
            }
            Ok(wasmtime::UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);

        // Every string the worker can put into the report is cut to this size.
        let max_text = usize::try_from(limits.call_bytes).unwrap_or(usize::MAX);
        let mut outcome = None;
        let mut error = None;
        let mut backtrace = None;
        let status = match self.pre.instantiate(&mut store) {
            Err(e) => {
                let (status, message) = classify(&e, store.data().limiter.hit);
                let status = if status == Status::Trapped {
                    Status::InstantiationFailed
                } else {
                    status
                };
                error = Some(bounded_text(message, max_text));
                status
            }
            Ok(worker) => match worker
                .roster_worker_handler()
                .call_handle(&mut store, &event)
            {
                Ok(Ok(o)) => {
                    use crate::sandbox::bindings::roster::worker::types::OutcomeStatus;
                    let status = match o.status {
                        OutcomeStatus::Success => Status::Success,
                        OutcomeStatus::Partial => Status::Partial,
                        OutcomeStatus::Skipped => Status::Skipped,
                    };
                    outcome = Some(OutcomeReport {
                        status,
                        summary: bounded_text(o.summary, max_text),
                        confidence: o.confidence.map(|c| c.clamp(0.0, 1.0)),
                    });
                    status
                }
                Ok(Err(e)) => {
                    error = Some(bounded_text(describe(&e), max_text));
                    Status::Failed
                }
                Err(e) => {
                    let (status, message) = classify(&e, store.data().limiter.hit);
                    backtrace = e
                        .downcast_ref::<WasmBacktrace>()
                        .map(|bt| bounded_text(bt.to_string(), max_text));
                    error = Some(bounded_text(message, max_text));
                    status
                }
            },
        };

        let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let (printed, output_truncated) = output.contents();
        if status == Status::Trapped
            && let Some(panic) = panic_message(&printed)
        {
            error = Some(format!("{}; {panic}", error.unwrap_or_default()));
        }
        let mut gate = state.gate;
        let report = ExecutionReport {
            execution_id,
            worker: ctx.plugin.clone(),
            version: ctx.version.clone(),
            principal: ctx.grant.grant.principal.clone(),
            grant_digest: ctx.grant_digest.clone(),
            component_digest: ctx.component_digest.clone(),
            event_id,
            status,
            outcome,
            error,
            backtrace,
            host_calls: gate.host_calls(),
            actions: gate.take_log(),
            logs: state.logs.lines,
            output: printed,
            logs_truncated: state.logs.truncated || output_truncated,
            fuel_consumed,
            duration_us: started.elapsed().as_micros() as u64,
        };
        tracing::info!(
            worker = %report.worker,
            execution = %report.execution_id,
            status = %report.status,
            actions = report.actions.len(),
            "execution finished"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_taken_from_standard_error() {
        let printed = "\nthread '<unnamed>' panicked at src/lib.rs:9:9:\nboom happened\nnote: run with RUST_BACKTRACE\n";
        assert_eq!(
            panic_message(printed).as_deref(),
            Some("thread '<unnamed>' panicked at src/lib.rs:9:9: boom happened")
        );
        assert_eq!(panic_message("all fine"), None);
    }

    #[test]
    fn long_summaries_are_cut_on_a_character_boundary() {
        assert_eq!(
            bounded_text("héllo".into(), 2),
            "h [truncated from 6 bytes]"
        );
        assert_eq!(bounded_text("short".into(), 10), "short");
    }
}
