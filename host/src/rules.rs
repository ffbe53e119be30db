//! Rule files: a rule's identity, its triggers and conditions (the worker file's, in the
//! host's condition language) and its chain of steps (`roster_rules::Step`), checked
//! against the schema and the principals before anything is deployed. Every problem is
//! named by where it is: `trigger 1`, `conditions`, `step 2 (create `task`)`.
//!
//! ```toml
//! [rule]
//! name = "enterprise-lead-routing"
//! domain = "revenue"
//!
//! [[triggers]]
//! on = "record-created"
//! object = "lead"
//!
//! [conditions]
//! all = [{ field = "employees", op = "greater-than", value = 500 }, { owner-in-team = "emea" }]
//!
//! [[steps]]
//! id = "owner"
//! action = "assign"
//! strategy = "round-robin"
//! to = ["ann", "bob"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use roster_rules::{Chain, Step, StepValue, Strategy, Template};
use serde::Deserialize;

use crate::governance::directory::Directory;
use crate::schema::{FieldType, Schema};
use crate::scope::{Channel, OWNER};
use crate::trigger::condition::{Condition, ConditionSpec};
use crate::trigger::{Trigger, TriggerKind, TriggerSpec};

/// The presets: rule files a user copies and edits — six of the templates written as
/// rules, and the enterprise routing rule (`examples/rules/`).
pub const PRESETS: &[(&str, &str)] = &[
    (
        "stale-lead-alerter",
        include_str!("../../examples/rules/stale-lead-alerter.toml"),
    ),
    (
        "deal-stage-notifier",
        include_str!("../../examples/rules/deal-stage-notifier.toml"),
    ),
    (
        "renewal-reminder",
        include_str!("../../examples/rules/renewal-reminder.toml"),
    ),
    (
        "win-loss-logger",
        include_str!("../../examples/rules/win-loss-logger.toml"),
    ),
    (
        "meeting-no-show-follow-up",
        include_str!("../../examples/rules/meeting-no-show-follow-up.toml"),
    ),
    (
        "quota-milestone-alert",
        include_str!("../../examples/rules/quota-milestone-alert.toml"),
    ),
    (
        "enterprise-lead-routing",
        include_str!("../../examples/rules/enterprise-lead-routing.toml"),
    ),
];

/// The JSON Schema of rule files, for editors (`roster rules schema`,
/// docs/rules.schema.json).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RuleFile)).unwrap_or_default()
}

/// The most steps one rule may chain.
pub const MAX_STEPS: usize = 20;

/// A rule file as written.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    title = "A Roster rule file",
    description = "A rule made without code: its identity, triggers, conditions and chain of steps (see docs/rules.md)."
)]
pub struct RuleFile {
    /// Who the rule is.
    pub rule: RuleHeader,
    /// What starts it (as in a worker file).
    pub triggers: Vec<TriggerSpec>,
    /// When it acts (as in a worker file).
    #[serde(default)]
    pub conditions: Option<ConditionSpec>,
    /// What it does, in order.
    pub steps: Vec<Step>,
}

/// `[rule]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleHeader {
    /// The rule's name (its installation's name).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its business domain (`revenue`, `customer-experience`, ...).
    pub domain: String,
    /// Who it acts as (a principal of `roster.toml`); the principal the domain's other
    /// workers act as when absent.
    #[serde(default)]
    pub principal: Option<String>,
    /// Where its installation starts on the trust curve (`supervised` unless it says
    /// otherwise: its external messages wait for a person).
    #[serde(default)]
    pub stage: Option<crate::store::Stage>,
}

/// A rule that passed every check, with what it touches (for its grant).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The chain the rules worker runs.
    pub chain: Chain,
    /// The triggers.
    pub triggers: Vec<Trigger>,
    /// The conditions.
    pub conditions: Condition,
    /// Per object, the fields it reads.
    pub reads: BTreeMap<String, BTreeSet<String>>,
    /// Per object, the fields it writes (`owner` when it assigns).
    pub writes: BTreeMap<String, BTreeSet<String>>,
    /// The objects it creates records of.
    pub creates: BTreeSet<String>,
    /// The notification channels it sends on.
    pub channels: BTreeSet<Channel>,
    /// The signal topics it emits.
    pub topics: BTreeSet<String>,
    /// The recipients it addresses as written (`None`: one is a merge field, so any).
    pub recipients: Option<BTreeSet<String>>,
    /// What a `request-approval` step holds, if the rule has one.
    pub approval: Option<Approval>,
    /// The steps' own conditions, by step number (from 1), as the host evaluates them.
    pub when: BTreeMap<usize, Condition>,
    /// Where its installation starts on the trust curve.
    pub stage: crate::store::Stage,
}

/// What a `request-approval` step asks for: the actions of the steps after it are held.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// What the reviewer is told.
    pub reason: String,
    /// Who decides.
    pub reviewers: Vec<String>,
    /// The actions held: `capability.operation` and the object for record actions.
    pub holds: BTreeSet<(String, Option<String>)>,
}

pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks a rule file; every problem found, each naming where it is.
pub fn check(
    file: &RuleFile,
    schema: &Schema,
    directory: &Directory,
) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    if !is_name(&file.rule.name) {
        problems.push(format!(
            "rule.name `{}`: use 1 to 64 lower-case letters, digits, `-` or `_`",
            file.rule.name
        ));
    }
    if file.triggers.is_empty() {
        problems.push("a rule needs at least one [[triggers]] entry".into());
    }
    let mut triggers = Vec::new();
    for (i, spec) in file.triggers.iter().enumerate() {
        match spec.compile(schema) {
            Ok(t) => triggers.push(t),
            Err(e) => problems.push(format!("trigger {}: {e}", i + 1)),
        }
    }
    let objects: BTreeSet<&str> = triggers.iter().filter_map(|t| t.kind.object()).collect();
    if objects.len() > 1 {
        problems.push("every trigger of a rule must be about the same object".into());
    }
    let object = objects.iter().next().map(|o| o.to_string());
    let mut events = triggers.iter().map(|t| match &t.kind {
        TriggerKind::Event { name } => Some(name.clone()),
        _ => None,
    });
    let first = events.next().flatten();
    let event = first.filter(|f| events.all(|e| e.as_ref() == Some(f)));
    let conditions = match &file.conditions {
        None => Condition::All(Vec::new()),
        Some(spec) => match spec.compile_for(object.as_deref(), event.as_deref(), schema) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("conditions: {e}"));
                Condition::All(Vec::new())
            }
        },
    };
    if file.steps.is_empty() {
        problems.push("a rule needs at least one [[steps]] entry".into());
    }
    if file.steps.len() > MAX_STEPS {
        problems.push(format!("a rule chains at most {MAX_STEPS} steps"));
    }
    let mut walk = Walk {
        schema,
        directory,
        object: object.clone(),
        event,
        problems,
        reads: BTreeMap::new(),
        writes: BTreeMap::new(),
        outputs: BTreeMap::new(),
        updates: triggers
            .iter()
            .any(|t| matches!(t.kind, TriggerKind::RecordUpdated { .. })),
    };
    let mut when = BTreeMap::new();
    let mut creates = BTreeSet::new();
    let mut channels = BTreeSet::new();
    let mut topics = BTreeSet::new();
    let mut recipients = Some(BTreeSet::new());
    let mut approval = None;
    for (i, step) in file.steps.iter().enumerate() {
        let at = step.place(i + 1);
        match step {
            Step::Create { object, fields, .. } => {
                if let Err(e) = schema.object(object) {
                    walk.problems.push(format!("{at}: {e}"));
                } else {
                    creates.insert(object.clone());
                    for (field, value) in fields {
                        walk.value(&at, object, field, value);
                    }
                }
            }
            Step::Update {
                record,
                set,
                increment,
                append,
                clear,
                ..
            } => {
                let target = match record {
                    None => walk.record_object(&at),
                    Some(r) => {
                        walk.template(&at, "record", r);
                        match r.split_once('/') {
                            Some((o, _)) if schema.object(o).is_ok() => Some(o.to_string()),
                            _ => {
                                walk.problems.push(format!(
                                    "{at}: record `{r}` is not `object/id` of a known object"
                                ));
                                None
                            }
                        }
                    }
                };
                if let Some(target) = target {
                    if set.is_empty()
                        && increment.is_empty()
                        && append.is_empty()
                        && clear.is_empty()
                    {
                        walk.problems.push(format!(
                            "{at}: give `set`, `increment`, `append` or `clear`"
                        ));
                    }
                    for (field, value) in set {
                        walk.value(&at, &target, field, value);
                    }
                    let numbers = [FieldType::Integer, FieldType::Number];
                    for field in increment.keys() {
                        walk.field_of(
                            &at,
                            &target,
                            field,
                            &numbers,
                            "`increment` adds to number fields, not",
                        );
                    }
                    for (field, option) in append {
                        walk.field_of(
                            &at,
                            &target,
                            field,
                            &[FieldType::TextList],
                            "`append` adds to multi-select fields, not",
                        );
                        walk.template(&at, &format!("field `{field}`"), option);
                    }
                    // Adding to a value reads it first.
                    for field in increment.keys().chain(append.keys()) {
                        walk.reads
                            .entry(target.clone())
                            .or_default()
                            .insert(field.clone());
                    }
                    for field in clear {
                        walk.field_of(&at, &target, field, &[], "");
                    }
                }
            }
            Step::Notify {
                channel,
                to,
                subject,
                message,
                ..
            } => {
                match serde_json::from_value::<Channel>(serde_json::json!(channel)) {
                    Ok(c) => {
                        channels.insert(c);
                    }
                    Err(_) => walk.problems.push(format!(
                        "{at}: `{channel}` is not a channel (in-app, email, sms, slack, teams)"
                    )),
                }
                if to.is_empty() {
                    walk.problems.push(format!("{at}: `to` names no recipient"));
                }
                for recipient in to {
                    walk.template(&at, "to", recipient);
                    let parsed = Template::parse(recipient).ok();
                    // A record's owner, or an assigned owner, is one of the principals.
                    let owner = parsed.as_ref().and_then(|t| t.single()).is_some_and(|p| {
                        p.last().is_some_and(|l| l == OWNER)
                            && (p.len() == 2 || (p.len() == 3 && p[0] == "steps"))
                    });
                    match (&parsed, recipients.as_mut()) {
                        (_, None) => {}
                        (Some(t), Some(r)) if t.is_plain() => {
                            r.insert(recipient.clone());
                        }
                        (Some(_), Some(r)) if owner && !directory.is_open() => {
                            r.extend(directory.principals().map(|p| p.id.clone()));
                        }
                        _ => recipients = None,
                    }
                }
                if let Some(subject) = subject {
                    walk.template(&at, "subject", subject);
                }
                walk.template(&at, "message", message);
            }
            Step::Assign {
                strategy,
                to,
                field,
                territories,
                capacity,
                threshold,
                open,
                ..
            } => {
                if let Some(object) = walk.record_object(&at) {
                    walk.writes
                        .entry(object.clone())
                        .or_default()
                        .insert(OWNER.to_string());
                    let needs_field = matches!(strategy, Strategy::Territory | Strategy::Score);
                    match (field, needs_field) {
                        (Some(f), true) => match schema.field(&object, f) {
                            Ok(def)
                                if *strategy == Strategy::Score
                                    && !matches!(
                                        def.ty,
                                        FieldType::Integer | FieldType::Number
                                    ) =>
                            {
                                walk.problems.push(format!(
                                    "{at}: a score is a number field; `{f}` is a {} field",
                                    def.ty.as_str()
                                ));
                            }
                            Ok(_) => {
                                walk.reads
                                    .entry(object.clone())
                                    .or_default()
                                    .insert(f.clone());
                            }
                            Err(e) => walk.problems.push(format!("{at}: {e}")),
                        },
                        (None, true) => walk
                            .problems
                            .push(format!("{at}: this strategy reads a `field`")),
                        (Some(_), false) => walk
                            .problems
                            .push(format!("{at}: this strategy reads no `field`")),
                        (None, false) => {}
                    }
                }
                let principals: Vec<String> = match strategy {
                    Strategy::Territory => {
                        if territories.is_empty() {
                            walk.problems
                                .push(format!("{at}: give the `territories` (value → principal)"));
                        }
                        territories.values().chain(to.iter()).cloned().collect()
                    }
                    Strategy::Score => {
                        if to.len() != 2 || threshold.is_none() {
                            walk.problems.push(format!(
                                "{at}: a score assignment needs `threshold` and two principals in `to` (at or above, below)"
                            ));
                        }
                        to.clone()
                    }
                    Strategy::RoundRobin | Strategy::Capacity => {
                        if to.is_empty() {
                            walk.problems
                                .push(format!("{at}: `to` names no principal to choose from"));
                        }
                        if *strategy == Strategy::Capacity && capacity.is_none_or(|c| c == 0) {
                            walk.problems
                                .push(format!("{at}: give the `capacity` (at least 1)"));
                        }
                        if let (Some(open), Some(object)) = (open, walk.object.clone()) {
                            if *strategy != Strategy::Capacity {
                                walk.problems.push(format!(
                                    "{at}: only a capacity assignment counts `open` records"
                                ));
                            }
                            match schema.field(&object, &open.field) {
                                Ok(def) if def.ty == FieldType::Text => {
                                    walk.reads
                                        .entry(object)
                                        .or_default()
                                        .insert(open.field.clone());
                                }
                                Ok(def) => walk.problems.push(format!(
                                    "{at}: `open` compares a text field; `{}` is a {} field",
                                    open.field,
                                    def.ty.as_str()
                                )),
                                Err(e) => walk.problems.push(format!("{at}: {e}")),
                            }
                        }
                        to.clone()
                    }
                };
                for p in &principals {
                    walk.principal(&at, p);
                }
            }
            Step::LogActivity { subject, kind, .. } => {
                walk.record_object(&at);
                walk.template(&at, "subject", subject);
                if schema.object("activity").is_err() {
                    walk.problems
                        .push(format!("{at}: the schema has no `activity` object"));
                } else {
                    creates.insert("activity".to_string());
                    for f in ["subject", "related_to"]
                        .into_iter()
                        .chain(kind.as_ref().map(|_| "type"))
                    {
                        walk.field_of(&at, "activity", f, &[], "");
                    }
                }
            }
            Step::Sequence { sequence, .. } => {
                walk.record_object(&at);
                if !is_name(sequence) {
                    walk.problems.push(format!(
                        "{at}: sequence `{sequence}`: use 1 to 64 lower-case letters, digits, `-` or `_`"
                    ));
                }
                if schema.object(roster_rules::ENROLLMENT).is_err() {
                    walk.problems.push(format!(
                        "{at}: the schema has no `{}` object",
                        roster_rules::ENROLLMENT
                    ));
                } else {
                    creates.insert(roster_rules::ENROLLMENT.to_string());
                    for f in [
                        "sequence",
                        "record",
                        "step",
                        "status",
                        "enrolled_at",
                        "advanced_at",
                    ] {
                        walk.field_of(&at, roster_rules::ENROLLMENT, f, &[], "");
                        walk.reads
                            .entry(roster_rules::ENROLLMENT.to_string())
                            .or_default()
                            .insert(f.to_string());
                    }
                }
            }
            Step::RequestApproval {
                reason, reviewers, ..
            } => {
                if reason.trim().is_empty() {
                    walk.problems
                        .push(format!("{at}: give the `reason` the reviewer reads"));
                }
                for r in reviewers {
                    let known = match r.strip_prefix("team:") {
                        Some(team) => directory.has_team(team),
                        None => directory.is_open() || directory.knows(r),
                    };
                    if !known {
                        walk.problems.push(format!(
                            "{at}: reviewer `{r}` is not a principal or team of this host"
                        ));
                    }
                }
                if approval.is_some() {
                    walk.problems
                        .push(format!("{at}: a rule requests approval once"));
                }
                if step.when().is_some() {
                    walk.problems.push(format!(
                        "{at}: the steps after an approval are always held; a request-approval step takes no `when`"
                    ));
                }
                let before: BTreeSet<_> = file.steps[..i]
                    .iter()
                    .flat_map(|s| step_actions(s, object.as_deref()))
                    .collect();
                let holds: BTreeSet<_> = file.steps[i + 1..]
                    .iter()
                    .flat_map(|s| step_actions(s, object.as_deref()))
                    .collect();
                if holds.is_empty() {
                    walk.problems.push(format!(
                        "{at}: no step after it would wait for the approval"
                    ));
                }
                for (action, on) in holds.intersection(&before) {
                    let what = match on {
                        Some(o) => format!("{action} of `{o}`"),
                        None => action.clone(),
                    };
                    walk.problems.push(format!(
                        "{at}: a step before it also takes {what}, which would be held too: move the approval before it"
                    ));
                }
                approval = Some(Approval {
                    reason: reason.clone(),
                    reviewers: reviewers.clone(),
                    holds,
                });
            }
            Step::Emit { topic, payload, .. } => {
                let valid = !topic.is_empty()
                    && topic.len() <= 128
                    && topic
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if valid {
                    topics.insert(topic.clone());
                } else {
                    walk.problems.push(format!(
                        "{at}: `{topic}` is not a signal topic (letters, digits, `.`, `-`, `_`)"
                    ));
                }
                for (key, value) in payload {
                    match value {
                        StepValue::Text(t) => walk.template(&at, &format!("payload `{key}`"), t),
                        StepValue::List(items) => {
                            for t in items {
                                walk.template(&at, &format!("payload `{key}`"), t);
                            }
                        }
                        _ => {}
                    }
                }
                // A rule triggered by what it emits would run forever.
                for t in &triggers {
                    if let TriggerKind::Signal { topic: pattern } = &t.kind
                        && wildmatch::WildMatch::new(pattern).matches(topic)
                    {
                        walk.problems.push(format!(
                            "{at}: emits `{topic}`, which triggers this rule (`{pattern}`): a cycle of signals"
                        ));
                    }
                }
            }
        }
        if let Some(spec) = step.when() {
            match serde_json::from_value::<ConditionSpec>(spec.clone())
                .map_err(|e| e.to_string())
                .and_then(|spec| {
                    spec.compile_for(walk.object.as_deref(), walk.event.as_deref(), schema)
                }) {
                Ok(c) => {
                    if let Some(object) = &walk.object {
                        collect_reads(&c, walk.reads.entry(object.clone()).or_default());
                    }
                    when.insert(i + 1, c);
                }
                Err(e) => walk.problems.push(format!("{at}: when: {e}")),
            }
        }
        if let Some(id) = step.id() {
            if !is_name(id) {
                walk.problems.push(format!(
                    "{at}: a step's id uses lower-case letters, digits, `-` or `_`"
                ));
            } else if walk
                .outputs
                .insert(id.to_string(), step.outputs())
                .is_some()
            {
                walk.problems
                    .push(format!("{at}: another step is already named `{id}`"));
            }
        }
    }
    // Conditions read the record's fields too.
    if let Some(object) = &object {
        collect_reads(&conditions, walk.reads.entry(object.clone()).or_default());
    }
    if !walk.problems.is_empty() {
        return Err(walk.problems);
    }
    Ok(Checked {
        chain: Chain {
            rule: file.rule.name.clone(),
            object,
            steps: file.steps.clone(),
        },
        triggers,
        conditions,
        reads: walk.reads,
        writes: walk.writes,
        creates,
        channels,
        topics,
        recipients,
        approval,
        when,
        stage: file.rule.stage.unwrap_or(crate::store::Stage::Supervised),
    })
}

fn collect_reads(c: &Condition, into: &mut BTreeSet<String>) {
    match c {
        Condition::All(items) | Condition::Any(items) => {
            for i in items {
                collect_reads(i, into);
            }
        }
        Condition::Not(inner) => collect_reads(inner, into),
        Condition::Field(f) => {
            into.insert(f.field.clone());
        }
        Condition::NoActivityFor(_) => {
            into.insert("last_activity_at".into());
            into.insert("created_at".into());
        }
        Condition::OwnerInTeam(_) | Condition::OwnerHasRole(_) | Condition::Payload(..) => {}
    }
}

mod grant;
mod walk;

pub use grant::MEMORY_QUOTA;
use grant::step_actions;
use walk::Walk;

#[cfg(test)]
mod tests;
