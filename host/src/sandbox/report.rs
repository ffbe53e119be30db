//! What one execution did: its status, the worker's outcome, every action it attempted,
//! its log lines and, for failures, the error and the wasm backtrace.

use serde::Serialize;

use crate::sandbox::gate::ActionRecord;

/// How an execution ended. Every limit has its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The worker reported success.
    Success,
    /// The worker reported partial success.
    Partial,
    /// The worker reported that nothing needed doing.
    Skipped,
    /// The worker returned an error.
    Failed,
    /// The worker trapped (a panic, an `unreachable`, a bad memory access).
    Trapped,
    /// The worker used up its fuel.
    OutOfFuel,
    /// The worker ran past its wall-clock limit.
    Timeout,
    /// The worker's linear memory would have grown past its limit.
    MemoryLimit,
    /// A table would have grown past its limit.
    TableLimit,
    /// The worker overflowed the wasm stack.
    StackOverflow,
    /// The worker attempted more actions than allowed.
    ActionLimit,
    /// The worker made more host calls than allowed.
    HostCallLimit,
    /// A host call passed more bytes than allowed.
    PayloadLimit,
    /// The sandbox could not be set up (for example an instance or memory count limit).
    InstantiationFailed,
    /// The worker was paused (by a person or the kill switch) while the execution ran.
    Interrupted,
}

impl Status {
    /// The status's name as printed and stored (`out-of-fuel`, `timeout`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Partial => "partial",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Trapped => "trapped",
            Status::OutOfFuel => "out-of-fuel",
            Status::Timeout => "timeout",
            Status::MemoryLimit => "memory-limit",
            Status::TableLimit => "table-limit",
            Status::StackOverflow => "stack-overflow",
            Status::ActionLimit => "action-limit",
            Status::HostCallLimit => "host-call-limit",
            Status::PayloadLimit => "payload-limit",
            Status::InstantiationFailed => "instantiation-failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// Whether the worker completed its handler without failing.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Success | Status::Partial | Status::Skipped)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome a worker reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeReport {
    /// `success`, `partial` or `skipped`.
    pub status: Status,
    /// The worker's summary.
    pub summary: String,
    /// The worker's confidence, if it gave one.
    pub confidence: Option<f32>,
}

/// One log line written by the worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message.
    pub message: String,
}

/// Everything about one execution.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionReport {
    /// The execution's id.
    pub execution_id: String,
    /// The plugin id.
    pub worker: String,
    /// The plugin version.
    pub version: String,
    /// The principal the worker acted as.
    pub principal: String,
    /// The digest of the grant in force.
    pub grant_digest: String,
    /// The component's digest.
    pub component_digest: String,
    /// The event's id.
    pub event_id: String,
    /// How it ended.
    pub status: Status,
    /// The worker's outcome, when it returned one.
    pub outcome: Option<OutcomeReport>,
    /// The error, for every status but success, partial and skipped.
    pub error: Option<String>,
    /// The wasm backtrace of a trap.
    pub backtrace: Option<String>,
    /// Every capability call, in order.
    pub actions: Vec<ActionRecord>,
    /// The worker's log lines.
    pub logs: Vec<LogLine>,
    /// What the worker wrote to standard output and standard error.
    pub output: String,
    /// Whether log lines or output were dropped for exceeding the log limit.
    pub logs_truncated: bool,
    /// Fuel used.
    pub fuel_consumed: u64,
    /// Host calls made.
    pub host_calls: u32,
    /// Wall-clock duration in microseconds.
    pub duration_us: u64,
}

impl ExecutionReport {
    /// The actions that were denied.
    pub fn denials(&self) -> impl Iterator<Item = &ActionRecord> {
        self.actions
            .iter()
            .filter(|a| matches!(a.result, crate::sandbox::gate::ActionResult::Denied { .. }))
    }
}
