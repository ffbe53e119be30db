//! What happens when an execution fails: which failures are retried and when, what runs
//! after the last retry (escalation), and when a worker's circuit breaker opens.
//!
//! ```toml
//! # in a worker's file
//! [retry]
//! max-retries = 3                      # after the first attempt
//! intervals = ["1s", "5s", "30s"]      # before each retry; the last one repeats
//! jitter = 0.2                         # each delay varies by up to ±20%
//! retry-on = ["trap", "timeout", "unavailable", "connector"]
//!
//! [escalation]
//! policy = "create-task"               # pause | create-task | log-and-continue | fallback
//! assignee = "ann"                     # create-task: a principal, or "team:<name>" (a queue)
//! # fallback-worker = "manual-review"  # fallback: run this worker with the failure context
//! # fallback-notify = { channel = "email", to = ["ops@example.com"] }
//!
//! [circuit-breaker]
//! error-rate = 0.5                     # open when more than half the executions...
//! window = "10m"                       # ...of the last ten minutes failed...
//! min-executions = 10                  # ...and at least this many ran
//! ```

use serde::{Deserialize, Serialize};

use crate::clock::{MINUTE_MS, parse_duration};
use crate::sandbox::gate::{ActionRecord, ActionResult};
use crate::sandbox::report::Status;

/// The longest a connector's `Retry-After` is honoured for (a day).
pub const MAX_RETRY_AFTER_MS: i64 = 24 * 60 * MINUTE_MS;

/// Why an execution failed, as far as retrying it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The worker trapped (a panic, a bad memory access) or its sandbox could not start.
    Trap,
    /// The worker ran past its wall-clock limit.
    Timeout,
    /// A capability or backend was unavailable (the worker returned `unavailable`, or the
    /// host could not read what the event needs).
    Unavailable,
    /// A connector the worker called failed: no answer, a 5xx, or throttling (429).
    Connector,
    /// The worker hit a resource limit (fuel, memory, actions, host calls, payload size).
    Limit,
    /// The worker attempted something its grant does not allow.
    Denied,
    /// The event or a call's arguments were invalid, or a target did not exist.
    Validation,
    /// Any other error the worker returned.
    Error,
    /// A person paused the worker while it ran (not the worker's failure: the trigger is
    /// held and runs again on resume).
    Interrupted,
}

impl FailureClass {
    /// The class's name as written in configuration and the execution log.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Trap => "trap",
            FailureClass::Timeout => "timeout",
            FailureClass::Unavailable => "unavailable",
            FailureClass::Connector => "connector",
            FailureClass::Limit => "limit",
            FailureClass::Denied => "denied",
            FailureClass::Validation => "validation",
            FailureClass::Error => "error",
            FailureClass::Interrupted => "interrupted",
        }
    }

    /// Denials and invalid input fail the same way every time: never retried.
    pub fn may_retry(self) -> bool {
        !matches!(
            self,
            FailureClass::Denied | FailureClass::Validation | FailureClass::Interrupted
        )
    }
}

/// Whether a connector call in the action log failed: an error, a 5xx or a 429.
fn connector_failed(action: &ActionRecord) -> bool {
    if action.capability != "http" {
        return false;
    }
    match &action.result {
        ActionResult::Failed { error } => !error.starts_with("invalid-input"),
        ActionResult::Performed { output } => output["status"]
            .as_u64()
            .is_some_and(|s| s == 429 || s >= 500),
        _ => false,
    }
}

/// Classifies a finished sandbox run; `None` when it did not fail.
pub fn classify(
    status: Status,
    error: Option<&str>,
    actions: &[ActionRecord],
) -> Option<FailureClass> {
    let class = match status {
        Status::Success | Status::Partial | Status::Skipped => return None,
        Status::Trapped | Status::StackOverflow | Status::InstantiationFailed => FailureClass::Trap,
        Status::Timeout => FailureClass::Timeout,
        Status::Interrupted => FailureClass::Interrupted,
        Status::OutOfFuel
        | Status::MemoryLimit
        | Status::TableLimit
        | Status::ActionLimit
        | Status::HostCallLimit
        | Status::PayloadLimit => FailureClass::Limit,
        Status::Failed => {
            let error = error.unwrap_or_default();
            let denied = actions
                .iter()
                .any(|a| matches!(a.result, ActionResult::Denied { .. }));
            if error.starts_with("denied:") {
                FailureClass::Denied
            } else if error.starts_with("invalid-input:") || error.starts_with("not-found:") {
                FailureClass::Validation
            } else if actions.iter().rev().any(connector_failed) {
                FailureClass::Connector
            } else if error.starts_with("unavailable:") {
                FailureClass::Unavailable
            } else if denied {
                // The worker turned a denial into some other error: still a denial.
                FailureClass::Denied
            } else if error.starts_with("budget-exceeded:") {
                FailureClass::Limit
            } else {
                FailureClass::Error
            }
        }
    };
    Some(class)
}

/// The longest `Retry-After` a throttling connector asked for in this execution, in ms.
pub fn retry_after_ms(actions: &[ActionRecord]) -> Option<i64> {
    actions
        .iter()
        .filter_map(|a| match &a.result {
            ActionResult::Performed { output } => output["retry_after_ms"].as_i64(),
            _ => None,
        })
        .max()
}

/// `[retry]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetrySpec {
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    intervals: Option<Vec<String>>,
    #[serde(default)]
    jitter: Option<f64>,
    #[serde(default)]
    retry_on: Option<Vec<FailureClass>>,
}

/// When a failed execution is tried again.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before each retry in ms; the last one repeats.
    pub intervals_ms: Vec<i64>,
    /// Each delay varies by up to this fraction either way.
    pub jitter: f64,
    /// The failure classes that are retried.
    pub retry_on: Vec<FailureClass>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            intervals_ms: vec![1_000, 5_000, 30_000],
            jitter: 0.2,
            retry_on: vec![
                FailureClass::Trap,
                FailureClass::Timeout,
                FailureClass::Unavailable,
                FailureClass::Connector,
            ],
        }
    }
}

impl RetrySpec {
    /// Validates the section; the defaults fill what is not written.
    pub fn compile(&self) -> Result<RetryPolicy, String> {
        let mut policy = RetryPolicy::default();
        if let Some(n) = self.max_retries {
            if n > 100 {
                return Err(format!("retry.max-retries = {n}: at most 100"));
            }
            policy.max_retries = n;
        }
        if let Some(intervals) = &self.intervals {
            if intervals.is_empty() {
                return Err("retry.intervals: give at least one delay".into());
            }
            policy.intervals_ms = intervals
                .iter()
                .map(|i| parse_duration(i).map_err(|e| format!("retry.intervals: {e}")))
                .collect::<Result<_, _>>()?;
            if policy.intervals_ms.iter().any(|ms| *ms <= 0) {
                return Err("retry.intervals: every delay must be positive".into());
            }
        }
        if let Some(jitter) = self.jitter {
            if !(0.0..=1.0).contains(&jitter) {
                return Err(format!("retry.jitter = {jitter}: use 0.0 to 1.0"));
            }
            policy.jitter = jitter;
        }
        if let Some(on) = &self.retry_on {
            if let Some(bad) = on.iter().find(|c| !c.may_retry()) {
                return Err(format!(
                    "retry.retry-on: `{}` failures are never retried",
                    bad.as_str()
                ));
            }
            policy.retry_on = on.clone();
        }
        Ok(policy)
    }
}

impl RetryPolicy {
    /// Whether a failure of `class` is retried after `retries_done` retries.
    pub fn retries(&self, class: FailureClass, retries_done: u32) -> bool {
        class.may_retry() && self.retry_on.contains(&class) && retries_done < self.max_retries
    }

    /// The delay before retry number `retry` (from 1), jittered by `seed` (stable for one
    /// item and retry, so a restart computes the same delay) and never shorter than what a
    /// throttling connector asked for.
    pub fn delay_ms(&self, retry: u32, seed: u64, retry_after_ms: Option<i64>) -> i64 {
        let index = (retry.max(1) as usize - 1).min(self.intervals_ms.len() - 1);
        let base = self.intervals_ms[index] as f64;
        // A uniform value in [-1, 1] from the seed (splitmix64).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let delay = (base * (1.0 + self.jitter * unit)).round().max(1.0) as i64;
        delay.max(retry_after_ms.unwrap_or(0).min(MAX_RETRY_AFTER_MS))
    }
}

/// Where a fallback notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FallbackNotify {
    /// `in-app`, `email`, `slack`, `teams` or `sms`.
    pub channel: String,
    /// Recipients (principal ids or addresses).
    pub to: Vec<String>,
}

/// `[escalation]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EscalationSpec {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    fallback_worker: Option<String>,
    #[serde(default)]
    fallback_notify: Option<FallbackNotify>,
}

/// What runs when an execution has failed for good (retries exhausted, or a failure that
/// is never retried).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum Escalation {
    /// Pause the worker (its triggers, the failed one included, are held) and alert its
    /// owners; a person resumes it.
    Pause,
    /// Create a task for a person or a team's queue with the failure's context.
    CreateTask {
        /// A principal id, or `team:<name>`.
        assignee: String,
    },
    /// Record the failure and go on with the next trigger.
    LogAndContinue,
    /// Run a fallback: another worker given the failure context, a notification, or both.
    Fallback {
        /// The installed worker to run.
        worker: Option<String>,
        /// A notification to send.
        notify: Option<FallbackNotify>,
    },
}

impl Escalation {
    /// The policy's name as written and logged.
    pub fn name(&self) -> &'static str {
        match self {
            Escalation::Pause => "pause",
            Escalation::CreateTask { .. } => "create-task",
            Escalation::LogAndContinue => "log-and-continue",
            Escalation::Fallback { .. } => "fallback",
        }
    }
}

const CHANNELS: &[&str] = &["in-app", "email", "slack", "teams", "sms"];

impl EscalationSpec {
    /// Validates the section; without one a failure is logged and the worker goes on.
    pub fn compile(&self) -> Result<Escalation, String> {
        let policy = self.policy.as_deref().unwrap_or("log-and-continue");
        let unused = |field: &str, present: bool| {
            if present {
                Err(format!(
                    "escalation.{field} does not apply to policy `{policy}`"
                ))
            } else {
                Ok(())
            }
        };
        let escalation = match policy {
            "pause" | "log-and-continue" => {
                unused("assignee", self.assignee.is_some())?;
                unused("fallback-worker", self.fallback_worker.is_some())?;
                unused("fallback-notify", self.fallback_notify.is_some())?;
                if policy == "pause" {
                    Escalation::Pause
                } else {
                    Escalation::LogAndContinue
                }
            }
            "create-task" => {
                unused("fallback-worker", self.fallback_worker.is_some())?;
                unused("fallback-notify", self.fallback_notify.is_some())?;
                let assignee = self.assignee.clone().ok_or(
                    "escalation policy `create-task` needs `assignee` (a principal or `team:<name>`)",
                )?;
                Escalation::CreateTask { assignee }
            }
            "fallback" => {
                unused("assignee", self.assignee.is_some())?;
                if self.fallback_worker.is_none() && self.fallback_notify.is_none() {
                    return Err(
                        "escalation policy `fallback` needs `fallback-worker`, `fallback-notify` or both"
                            .into(),
                    );
                }
                if let Some(n) = &self.fallback_notify {
                    if !CHANNELS.contains(&n.channel.as_str()) {
                        return Err(format!(
                            "escalation.fallback-notify.channel `{}`: use one of {}",
                            n.channel,
                            CHANNELS.join(", ")
                        ));
                    }
                    if n.to.is_empty() {
                        return Err("escalation.fallback-notify.to: name a recipient".into());
                    }
                }
                Escalation::Fallback {
                    worker: self.fallback_worker.clone(),
                    notify: self.fallback_notify.clone(),
                }
            }
            other => {
                return Err(format!(
                    "escalation.policy `{other}`: use pause, create-task, log-and-continue or fallback"
                ));
            }
        };
        Ok(escalation)
    }
}

/// `[circuit-breaker]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BreakerSpec {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    error_rate: Option<f64>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    min_executions: Option<u32>,
}

/// When a worker is paused for failing too often.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Breaker {
    /// Whether the breaker is armed.
    pub enabled: bool,
    /// It opens when the share of failed executions exceeds this.
    pub error_rate: f64,
    /// Over this rolling window, in ms.
    pub window_ms: i64,
    /// And only once at least this many executions ran in the window.
    pub min_executions: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            enabled: true,
            error_rate: 0.5,
            window_ms: 10 * MINUTE_MS,
            min_executions: 10,
        }
    }
}

impl BreakerSpec {
    /// Validates the section; the defaults fill what is not written.
    pub fn compile(&self) -> Result<Breaker, String> {
        let mut b = Breaker::default();
        if let Some(enabled) = self.enabled {
            b.enabled = enabled;
        }
        if let Some(rate) = self.error_rate {
            if !(rate > 0.0 && rate < 1.0) {
                return Err(format!(
                    "circuit-breaker.error-rate = {rate}: use a fraction between 0 and 1"
                ));
            }
            b.error_rate = rate;
        }
        if let Some(window) = &self.window {
            b.window_ms =
                parse_duration(window).map_err(|e| format!("circuit-breaker.window: {e}"))?;
            if b.window_ms < 1_000 {
                return Err("circuit-breaker.window: at least one second".into());
            }
        }
        if let Some(n) = self.min_executions {
            if n == 0 {
                return Err("circuit-breaker.min-executions: at least 1".into());
            }
            b.min_executions = n;
        }
        Ok(b)
    }

    /// Whether `failed` of `total` executions in the window open the breaker.
    pub fn opens(b: &Breaker, failed: usize, total: usize) -> bool {
        b.enabled
            && total >= b.min_executions as usize
            && failed as f64 > b.error_rate * total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(result: ActionResult) -> ActionRecord {
        ActionRecord {
            id: "x/0".into(),
            capability: "http",
            operation: "send",
            kind: crate::sandbox::gate::ActionKind::Effect,
            target: "https://api.example.com".into(),
            input: json!({}),
            result,
            idempotency_key: None,
            replayed: false,
            duration_us: 1,
            proposal_digest: None,
            proposal: None,
        }
    }

    #[test]
    fn failures_are_classified() {
        use FailureClass::*;
        assert_eq!(classify(Status::Success, None, &[]), None);
        assert_eq!(classify(Status::Trapped, Some("boom"), &[]), Some(Trap));
        assert_eq!(classify(Status::Timeout, None, &[]), Some(Timeout));
        assert_eq!(classify(Status::OutOfFuel, None, &[]), Some(Limit));
        assert_eq!(
            classify(Status::Failed, Some("denied: no"), &[]),
            Some(Denied)
        );
        assert_eq!(
            classify(Status::Failed, Some("invalid-input: bad"), &[]),
            Some(Validation)
        );
        assert_eq!(
            classify(Status::Failed, Some("unavailable: down"), &[]),
            Some(Unavailable)
        );
        let throttled = http(ActionResult::Performed {
            output: json!({ "status": 429, "retry_after_ms": 7000 }),
        });
        assert_eq!(
            classify(
                Status::Failed,
                Some("unavailable: throttled"),
                std::slice::from_ref(&throttled)
            ),
            Some(Connector)
        );
        assert_eq!(retry_after_ms(&[throttled]), Some(7000));
        let denied = http(ActionResult::Denied {
            reason: "not granted".into(),
        });
        assert_eq!(
            classify(Status::Failed, Some("other: gave up"), &[denied]),
            Some(Denied)
        );
        assert_eq!(classify(Status::Failed, Some("other: ?"), &[]), Some(Error));
    }

    #[test]
    fn delays_follow_the_intervals_with_bounded_jitter() {
        let p = RetryPolicy::default();
        for seed in 0..200 {
            for (retry, base) in [(1, 1_000.0), (2, 5_000.0), (3, 30_000.0), (4, 30_000.0)] {
                let d = p.delay_ms(retry, seed, None) as f64;
                assert!(
                    d >= base * 0.8 - 1.0 && d <= base * 1.2 + 1.0,
                    "{retry}: {d}"
                );
            }
        }
        assert_eq!(p.delay_ms(1, 7, None), p.delay_ms(1, 7, None));
        assert_ne!(p.delay_ms(1, 7, None), p.delay_ms(1, 8, None));
        assert_eq!(p.delay_ms(1, 7, Some(60_000)), 60_000, "Retry-After wins");
        assert_eq!(
            p.delay_ms(1, 7, Some(i64::MAX)),
            MAX_RETRY_AFTER_MS,
            "within reason"
        );
    }

    #[test]
    fn sections_are_validated() {
        let spec: RetrySpec = toml::from_str("retry-on = [\"denied\"]").unwrap();
        assert!(spec.compile().unwrap_err().contains("never retried"));
        let spec: RetrySpec = toml::from_str("intervals = [\"soon\"]").unwrap();
        assert!(spec.compile().is_err());
        let spec: EscalationSpec = toml::from_str("policy = \"create-task\"").unwrap();
        assert!(spec.compile().unwrap_err().contains("assignee"));
        let spec: EscalationSpec =
            toml::from_str("policy = \"pause\"\nassignee = \"ann\"").unwrap();
        assert!(spec.compile().unwrap_err().contains("does not apply"));
        let spec: EscalationSpec = toml::from_str("policy = \"panic\"").unwrap();
        assert!(spec.compile().is_err());
        let spec: BreakerSpec = toml::from_str("error-rate = 1.5").unwrap();
        assert!(spec.compile().is_err());
        assert!(toml::from_str::<RetrySpec>("tries = 3").is_err());
    }

    #[test]
    fn the_breaker_needs_enough_executions_and_more_than_the_rate() {
        let b = Breaker::default();
        assert!(!BreakerSpec::opens(&b, 9, 9), "below the minimum");
        assert!(!BreakerSpec::opens(&b, 5, 10), "exactly half is not more");
        assert!(BreakerSpec::opens(&b, 6, 10));
    }
}
