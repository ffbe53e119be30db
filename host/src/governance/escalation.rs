//! Cross-domain escalation paths: a signal in one domain starting a declared worker in
//! another, with the context it needs, the actions it may take and how they are reviewed.
//!
//! ```toml
//! # roster.toml
//! [[escalation-paths]]
//! name = "closed-won-onboarding"
//! signal = "revenue.closed-won"           # the topic (patterns such as `revenue.*` allowed)
//! from = ["win-loss-logger"]              # who may start it (installed workers; empty: any)
//! to = "customer-onboarding"              # the receiving worker (it has a trigger on the topic)
//! context = ["account_id", "opportunity_id"]   # payload members the signal must carry
//! actions = ["records.create", "notify.send"]  # all the receiving execution may do
//! review = "worker"                       # or "hold": every action waits for a person
//! ```
//!
//! Once a topic has a declared path, its signals reach only the paths' receiving workers,
//! only from the declared senders and only with the required context; anything else is
//! refused and the refusal is an audit entry. Every signal carries the chain of workers
//! its cause passed through: a signal is never delivered to a worker already in the chain
//! (a loop), nor beyond [`MAX_CHAIN`] hops. The receiving execution's audit entry names its
//! cause — the path, the signal, the emitting action (whose id starts with the emitting
//! execution's id) — so both executions are linked in the audit trail.

use serde::{Deserialize, Serialize};

/// The most workers a chain of signals may pass through.
pub const MAX_CHAIN: usize = 5;

/// The actions a path may permit.
pub const ACTIONS: [&str; 7] = [
    "records.create",
    "records.update",
    "records.delete",
    "notify.send",
    "signals.emit",
    "http.request",
    "http",
];

/// How the receiving execution's actions are reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathReview {
    /// The receiving worker's own review rules.
    #[default]
    Worker,
    /// Every action waits for a person.
    Hold,
}

/// One declared path, as written in `roster.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EscalationPath {
    /// Its name, for the audit trail.
    pub name: String,
    /// The signal topic (or pattern).
    pub signal: String,
    /// The installed workers that may start it; empty means any.
    #[serde(default)]
    pub from: Vec<String>,
    /// The installed worker that receives it.
    pub to: String,
    /// The payload members the signal must carry (present and not null).
    #[serde(default)]
    pub context: Vec<String>,
    /// What the receiving execution may do: `capability.operation` (or a capability).
    pub actions: Vec<String>,
    /// How its actions are reviewed.
    #[serde(default)]
    pub review: PathReview,
}

impl EscalationPath {
    /// Whether the path covers `topic`.
    pub fn covers(&self, topic: &str) -> bool {
        wildmatch::WildMatch::new(&self.signal).matches(topic)
    }

    /// Whether the receiving execution may perform `capability.operation`.
    pub fn permits(&self, capability: &str, operation: &str) -> bool {
        let full = format!("{capability}.{operation}");
        self.actions.iter().any(|a| a == capability || *a == full)
    }

    /// Problems with the path on its own (names are checked against the workers by the
    /// configuration).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let at = format!("escalation path `{}`", self.name);
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            problems.push(format!(
                "{at}: name it with letters, digits, `-`, `_` or `.`"
            ));
        }
        if self.signal.trim().is_empty() {
            problems.push(format!("{at}: `signal` names no topic"));
        }
        if self.actions.is_empty() {
            problems.push(format!(
                "{at}: list the `actions` the receiving worker may take"
            ));
        }
        for a in &self.actions {
            if !ACTIONS.contains(&a.as_str())
                && !["records", "notify", "signals"].contains(&a.as_str())
            {
                problems.push(format!(
                    "{at}: action `{a}` is not one of records.create, records.update, records.delete, notify.send, signals.emit, http"
                ));
            }
        }
        if self.from.iter().any(|f| f == &self.to) {
            problems.push(format!("{at}: a worker cannot escalate to itself"));
        }
        problems
    }
}

/// What a receiving execution runs under.
#[derive(Debug, Clone, Default)]
pub struct Escalated {
    /// The chain its signals extend.
    pub chain: Vec<String>,
    /// The path restricting its actions, when one governs it.
    pub path: Option<EscalationPath>,
}

/// Why a signal was not delivered along a path; `senders` are the installed names of the
/// emitting plugin.
pub fn refusal(
    path: &EscalationPath,
    senders: &[&str],
    payload: &serde_json::Value,
    chain: &[String],
    to_plugin: &str,
) -> Option<String> {
    if !path.from.is_empty() && !senders.iter().any(|n| path.from.iter().any(|f| f == n)) {
        let who = if senders.is_empty() {
            "a worker that is not installed".to_string()
        } else {
            senders.join(", ")
        };
        return Some(format!(
            "it was emitted by {who}, not by {}",
            path.from.join(" or ")
        ));
    }
    let missing: Vec<&str> = path
        .context
        .iter()
        .filter(|k| {
            payload
                .get(k.as_str())
                .is_none_or(serde_json::Value::is_null)
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "the signal lacks the required context: {}",
            missing.join(", ")
        ));
    }
    loop_refusal(chain, to_plugin)
}

/// Why a signal must not reach `to_plugin` given its chain: a loop, or too many hops.
pub fn loop_refusal(chain: &[String], to_plugin: &str) -> Option<String> {
    if chain.iter().any(|p| p == to_plugin) {
        return Some(format!(
            "loop prevented: {to_plugin} is already in the chain {}",
            chain.join(" → ")
        ));
    }
    if chain.len() >= MAX_CHAIN {
        return Some(format!(
            "chain too long: {} (at most {MAX_CHAIN} workers)",
            chain.join(" → ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> EscalationPath {
        EscalationPath {
            name: "closed-won-onboarding".into(),
            signal: "revenue.closed-won".into(),
            from: vec!["win-loss-logger".into()],
            to: "customer-onboarding".into(),
            context: vec!["account_id".into()],
            actions: vec!["records.create".into(), "notify".into()],
            review: PathReview::Worker,
        }
    }

    #[test]
    fn paths_check_sender_context_and_loops() {
        let p = path();
        assert!(p.validate().is_empty());
        assert!(p.permits("records", "create"));
        assert!(p.permits("notify", "send"));
        assert!(!p.permits("records", "delete"));
        let ok = serde_json::json!({"account_id": "A-1"});
        let chain = vec!["roster.win-loss-logger".to_string()];
        assert_eq!(
            refusal(&p, &["win-loss-logger"], &ok, &chain, "roster.onboarding"),
            None
        );
        assert!(
            refusal(&p, &["deal-stage-notifier"], &ok, &chain, "x")
                .unwrap()
                .contains("not by win-loss-logger")
        );
        let lacking = serde_json::json!({"account_id": null});
        assert!(
            refusal(&p, &["win-loss-logger"], &lacking, &chain, "x")
                .unwrap()
                .contains("account_id")
        );
        assert!(
            refusal(
                &p,
                &["win-loss-logger"],
                &ok,
                &chain,
                "roster.win-loss-logger"
            )
            .unwrap()
            .starts_with("loop prevented")
        );
        let long: Vec<String> = (0..MAX_CHAIN).map(|i| format!("p{i}")).collect();
        assert!(
            loop_refusal(&long, "q")
                .unwrap()
                .starts_with("chain too long")
        );
        let mut bad = path();
        bad.actions = vec!["records.explode".into()];
        bad.from = vec!["customer-onboarding".into()];
        assert_eq!(bad.validate().len(), 2);
    }
}
