//! The execution log's entries: one per finished execution, and one per person's decision
//! recorded beside them, with the conditions checked and what caused the execution. The
//! hash chain over them is `audit.rs`.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

pub(crate) const EXECUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("executions");

/// One leaf's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConditionResult {
    /// What was checked, for example `status equals "new"`.
    pub condition: String,
    /// Whether it held.
    pub passed: bool,
}

/// What started an execution through a path: recorded with its queue item and its audit
/// entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Cause {
    /// The path's name (`None` for a signal no path governs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The signal's position in the signal log.
    pub signal_seq: u64,
    /// The topic.
    pub topic: String,
    /// The emitting action's id (`<execution id>/<index>`).
    pub action: String,
    /// The emitting plugin.
    pub from_plugin: String,
    /// The plugins the cause passed through, the emitter last.
    pub chain: Vec<String>,
}

impl Cause {
    /// The emitting execution's id (the part of the action id before the index).
    pub fn execution(&self) -> &str {
        self.action
            .rsplit_once('/')
            .map_or(self.action.as_str(), |(e, _)| e)
    }
}

/// One finished execution, in the execution log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionEntry {
    /// Position in the log (assigned when recorded).
    pub seq: u64,
    /// The worker's name.
    pub worker: String,
    /// The trigger's description.
    pub trigger: String,
    /// The queue item it came from.
    pub queue_seq: u64,
    /// The event's id.
    pub event_id: String,
    /// `object/id` of the record, if any.
    pub record: Option<String>,
    /// When the trigger was accepted.
    pub accepted_at: i64,
    /// When the execution started.
    pub started_at: i64,
    /// When it finished.
    pub finished_at: i64,
    /// The final status (`success`, `skipped`, `failed`, `timeout`, ...).
    pub status: String,
    /// Each condition and whether it passed.
    pub conditions: Vec<ConditionResult>,
    /// Why it was skipped or failed, when it was.
    pub detail: Option<String>,
    /// The execution report (actions, logs, outcome), when a sandbox ran.
    pub report: Option<serde_json::Value>,
    /// Which attempt this was (1 for the first).
    #[serde(default = "first")]
    pub attempt: u32,
    /// Why it failed, as far as retrying is concerned (`trap`, `connector`, `denied`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When the next attempt is due, if the failure is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
    /// The escalation that ran after a final failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationRecord>,
    /// What started it when a signal did: the signal, the emitting action (and so the
    /// emitting execution) and the escalation path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The API request that caused it (`x-request-id`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The OpenTelemetry trace of the execution, when spans are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The hash of the entry before it in the audit chain (set when recorded).
    #[serde(default)]
    pub prev_hash: String,
}

/// The status of an audit entry that records a person's decision, not an execution.
pub const GOVERNANCE: &str = "governance";

impl ExecutionEntry {
    /// Whether the entry records a person's decision (see [`GovernanceEvent`]) rather
    /// than an execution.
    pub fn is_governance(&self) -> bool {
        self.status == GOVERNANCE
    }
}

/// A person's decision, recorded in the audit chain beside the executions: an account
/// or role change, a token issued or revoked, a pause or resume, an approval, a
/// promotion on the trust curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceEvent {
    /// What was done (`account.create`, `approval.approve`, `trust.promote`, ...).
    pub action: String,
    /// The account that did it.
    pub by: String,
    /// The worker concerned, if any.
    pub worker: Option<String>,
    /// What it was done to (an account, a token id, an approval id), if anything else.
    pub subject: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// Details.
    pub data: serde_json::Value,
}

impl GovernanceEvent {
    /// The audit entry recording it at `now`.
    pub(crate) fn entry(&self, now: i64) -> ExecutionEntry {
        ExecutionEntry {
            seq: 0,
            worker: self.worker.clone().unwrap_or_default(),
            trigger: format!("governance:{}", self.action),
            queue_seq: 0,
            event_id: String::new(),
            record: None,
            accepted_at: now,
            started_at: now,
            finished_at: now,
            status: GOVERNANCE.to_string(),
            conditions: Vec::new(),
            detail: self.reason.clone(),
            report: Some(serde_json::json!({
                "principal": self.by,
                "governance": self,
            })),
            attempt: 1,
            failure: None,
            retry_at: None,
            escalation: None,
            cause: None,
            request_id: current_request(),
            trace_id: None,
            prev_hash: String::new(),
        }
    }
}

thread_local! {
    /// The API request whose work this thread does, if any.
    static REQUEST: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `work` as the work of the API request `id`: the audit entries it records (on this
/// thread, or through the writer, which carries the id over) name that request.
pub fn for_request<T>(id: Option<String>, work: impl FnOnce() -> T) -> T {
    /// Puts the previous request back, even when `work` panics.
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            REQUEST.with(|r| *r.borrow_mut() = previous);
        }
    }
    let _restore = Restore(REQUEST.with(|r| r.replace(id)));
    work()
}

/// The API request whose work this thread does, if any.
pub fn current_request() -> Option<String> {
    REQUEST.with(|r| r.borrow().clone())
}

fn first() -> u32 {
    1
}

/// The escalation policy that ran after a final failure, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EscalationRecord {
    /// `pause`, `create-task`, `log-and-continue` or `fallback`.
    pub policy: String,
    /// What it did (the task created, the fallback queued, ...).
    pub detail: String,
}
