//! Human-in-the-loop checkpoints: which of a worker's side effects wait for a person.
//!
//! A worker's `[review]` section puts it on the trust curve (`stage`) and may add rules.
//! Each stage brings default rules; the worker's own rules and the host's
//! (`[[review-rules]]` in `roster.toml`, optionally per domain) come on top. A rule
//! matches on the action type, the risk level, the object, the record's value, the
//! worker's confidence and the stage; every given field must match. A side effect that a
//! rule matches is *held*: the worker gets a `held-for-approval` receipt and a person
//! approves, edits or rejects it (see `store/approvals.rs`).
//!
//! A rule with `confidence-below` cannot be decided while the worker runs (it reports its
//! confidence with its outcome), so the effect is held until the execution ends: it is
//! released at once when the reported confidence reaches the threshold, and otherwise
//! waits for a person like any other held action.

use serde::{Deserialize, Serialize};

use crate::store::{Risk, Stage};
use crate::value::FieldValue;

/// The objects whose changes are financial.
pub const FINANCIAL_OBJECTS: [&str; 6] = [
    "invoice",
    "payment",
    "purchase_order",
    "quote",
    "order",
    "contract",
];

/// A stage's default rules.
pub fn default_rules(stage: Stage, confidence_threshold: f32) -> Vec<Rule> {
    let at_least = |risk| Rule {
        risk: Some(risk),
        reason: Some(format!("{} stage", stage.as_str())),
        ..Rule::default()
    };
    match stage {
        Stage::Assistive => vec![at_least(Risk::InternalWrite)],
        Stage::Supervised => vec![at_least(Risk::ExternalCommunication)],
        Stage::ConditionalAutonomy => vec![
            at_least(Risk::FinancialOrIrreversible),
            Rule {
                confidence_below: Some(confidence_threshold),
                reason: Some("conditional-autonomy stage: confidence".into()),
                ..Rule::default()
            },
        ],
        Stage::HighTrust => Vec::new(),
    }
}

/// A record value rule: the field is at least the amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValueRule {
    /// The numeric field (`amount`, `arr`).
    pub field: String,
    /// The smallest value that is held.
    pub at_least: f64,
}

/// One review rule; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// A capability (`notify`) or `capability.operation` (`records.update`).
    #[serde(default)]
    pub action: Option<String>,
    /// The lowest risk level held.
    #[serde(default)]
    pub risk: Option<Risk>,
    /// The record's object type (record actions only).
    #[serde(default)]
    pub object: Option<String>,
    /// The record's value (the target record's field, else the trigger record's).
    #[serde(default)]
    pub record_value: Option<ValueRule>,
    /// Held unless the worker reports at least this confidence.
    #[serde(default)]
    pub confidence_below: Option<f32>,
    /// Only for workers of these domains (host rules).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Only at these stages.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Why it holds (shown to the reviewer).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `[review]` in a worker file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewSettings {
    /// The stage the worker starts at (promotion moves it on; see the trust curve).
    pub stage: Stage,
    /// The confidence threshold of the conditional-autonomy stage.
    #[serde(default = "default_threshold")]
    pub confidence_threshold: f32,
    /// Extra rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// Who decides on held actions (principals or `team:` queues), for the reviewer's
    /// queue; the access policies decide who may.
    #[serde(default)]
    pub reviewers: Vec<String>,
}

fn default_threshold() -> f32 {
    0.8
}

impl Rule {
    /// Problems with the rule, for the configuration error.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = self.confidence_below
            && !(0.0..=1.0).contains(&c)
        {
            problems.push(format!("confidence-below {c}: use 0.0 to 1.0"));
        }
        if let Some(a) = &self.action {
            let capability = a.split('.').next().unwrap_or_default();
            if !["records", "notify", "signals"].contains(&capability) {
                problems.push(format!(
                    "action `{a}`: records, notify and signals actions can be held (an HTTP request's response is needed while the worker runs)"
                ));
            }
        }
        problems
    }
}

impl ReviewSettings {
    /// Problems with the settings, for the configuration error.
    pub fn validate(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.rules.iter().flat_map(Rule::validate).collect();
        if !(0.0..=1.0).contains(&self.confidence_threshold) {
            problems.push("confidence-threshold: use 0.0 to 1.0".into());
        }
        problems
    }
}

/// A side effect as the review rules see it.
#[derive(Clone)]
pub struct Proposal<'a> {
    /// `records`, `notify`, `signals`.
    pub capability: &'a str,
    /// `create`, `update`, `delete`, `send`, `emit`.
    pub operation: &'a str,
    /// Its risk level.
    pub risk: Risk,
    /// The record's object, for record actions.
    pub object: Option<&'a str>,
    /// A field's value: the target record's, or the trigger record's.
    pub value: &'a dyn Fn(&str) -> Option<f64>,
}

/// Why a proposal is held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// The rules that hold it now.
    pub reasons: Vec<String>,
    /// The confidence it needs to be released when the execution ends (when only
    /// confidence rules matched).
    pub release_at_confidence: Option<f32>,
}

/// The review rules in force for one worker at one stage.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    rules: Vec<Rule>,
}

impl Checkpoints {
    /// The rules of a worker: its stage's defaults, its own rules and the host's rules for
    /// its domain, each filtered by stage.
    pub fn new(
        settings: Option<&ReviewSettings>,
        stage: Option<Stage>,
        host_rules: &[Rule],
        domain: &str,
    ) -> Checkpoints {
        let mut rules = Vec::new();
        if let Some(stage) = stage {
            let threshold = settings.map_or(default_threshold(), |s| s.confidence_threshold);
            rules.extend(default_rules(stage, threshold));
        }
        if let Some(s) = settings {
            rules.extend(s.rules.iter().cloned());
        }
        rules.extend(
            host_rules
                .iter()
                .filter(|r| r.domains.is_empty() || r.domains.iter().any(|d| d == domain))
                .cloned(),
        );
        rules.retain(|r| r.stages.is_empty() || stage.is_some_and(|s| r.stages.contains(&s)));
        Checkpoints { rules }
    }

    /// Whether there are any rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Why `p` is held, or `None` when it may go ahead.
    pub fn check(&self, p: &Proposal<'_>) -> Option<Hold> {
        let mut hold = Hold::default();
        let mut deferred: Option<f32> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches_action(p) {
                continue;
            }
            let reason = rule
                .reason
                .clone()
                .unwrap_or_else(|| format!("rule {}", i + 1));
            match rule.confidence_below {
                Some(c) => deferred = Some(deferred.map_or(c, |d| d.max(c))),
                None => hold.reasons.push(reason),
            }
        }
        match (hold.reasons.is_empty(), deferred) {
            (true, None) => None,
            (true, Some(c)) => Some(Hold {
                reasons: vec![format!("confidence below {c}")],
                release_at_confidence: Some(c),
            }),
            (false, _) => Some(hold),
        }
    }
}

impl Rule {
    fn matches_action(&self, p: &Proposal<'_>) -> bool {
        let action_ok = self
            .action
            .as_ref()
            .is_none_or(|a| a == p.capability || *a == format!("{}.{}", p.capability, p.operation));
        let risk_ok = self.risk.is_none_or(|r| p.risk >= r);
        let object_ok = self
            .object
            .as_ref()
            .is_none_or(|o| p.object == Some(o.as_str()));
        let value_ok = self
            .record_value
            .as_ref()
            .is_none_or(|v| (p.value)(&v.field).is_some_and(|x| x >= v.at_least));
        action_ok && risk_ok && object_ok && value_ok
    }
}

/// A field value as a number, for record-value rules.
pub fn number(value: &FieldValue) -> Option<f64> {
    match value {
        FieldValue::Integer(i) => Some(*i as f64),
        FieldValue::Number(n) => Some(*n),
        FieldValue::Text(t) => t.parse().ok(),
        _ => None,
    }
}

/// The risk of a record action on `object`.
pub fn record_risk(object: &str, operation: &str) -> Risk {
    if operation == "delete" || FINANCIAL_OBJECTS.contains(&object) {
        Risk::FinancialOrIrreversible
    } else {
        Risk::InternalWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(
        capability: &'static str,
        operation: &'static str,
        risk: Risk,
    ) -> Proposal<'static> {
        Proposal {
            capability,
            operation,
            risk,
            object: Some("opportunity"),
            value: &|f| (f == "amount").then_some(50_000.0),
        }
    }

    #[test]
    fn stages_hold_less_as_trust_grows() {
        let email = proposal("notify", "send", Risk::ExternalCommunication);
        let update = proposal("records", "update", Risk::InternalWrite);
        let held = |stage| {
            let c = Checkpoints::new(None, Some(stage), &[], "revenue");
            (c.check(&email), c.check(&update))
        };
        let (e, u) = held(Stage::Assistive);
        assert!(e.is_some() && u.is_some());
        let (e, u) = held(Stage::Supervised);
        assert!(e.is_some() && u.is_none());
        let (e, u) = held(Stage::ConditionalAutonomy);
        assert_eq!(e.unwrap().release_at_confidence, Some(0.8));
        assert_eq!(u.unwrap().release_at_confidence, Some(0.8));
        let (e, u) = held(Stage::HighTrust);
        assert!(e.is_none() && u.is_none());
    }

    #[test]
    fn rules_match_on_every_given_field() {
        let rule = Rule {
            action: Some("records.update".into()),
            record_value: Some(ValueRule {
                field: "amount".into(),
                at_least: 10_000.0,
            }),
            ..Rule::default()
        };
        let c = Checkpoints::new(None, None, std::slice::from_ref(&rule), "revenue");
        assert!(
            c.check(&proposal("records", "update", Risk::InternalWrite))
                .is_some()
        );
        assert!(
            c.check(&proposal("records", "create", Risk::InternalWrite))
                .is_none()
        );
        let other = Checkpoints::new(
            None,
            None,
            &[Rule {
                domains: vec!["finance".into()],
                ..rule
            }],
            "revenue",
        );
        assert!(other.is_empty());
    }
}
