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
use crate::value::FieldValue;

/// The most steps one rule may chain.
pub const MAX_STEPS: usize = 20;

/// A rule file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleHeader {
    /// The rule's name (its installation's name).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its business domain.
    pub domain: String,
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
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// What the checks collect while they walk the rule.
struct Walk<'a> {
    schema: &'a Schema,
    directory: &'a Directory,
    object: Option<String>,
    event: Option<String>,
    problems: Vec<String>,
    reads: BTreeMap<String, BTreeSet<String>>,
    writes: BTreeMap<String, BTreeSet<String>>,
    /// Earlier steps' names and outputs.
    outputs: BTreeMap<String, &'static [&'static str]>,
}

impl Walk<'_> {
    /// Checks a template's merge fields; notes the record fields it reads.
    fn template(&mut self, at: &str, what: &str, text: &str) {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(format!("{at}: {what}: {e}"));
                return;
            }
        };
        for (path, _) in template.fields() {
            if let Err(reason) = self.merge_field(path) {
                self.problems.push(format!(
                    "{at}: {what}: `{{{{{}}}}}`: {reason}",
                    path.join(".")
                ));
            }
        }
    }

    fn merge_field(&mut self, path: &[String]) -> Result<(), String> {
        let root = path[0].as_str();
        match root {
            "now" if path.len() == 1 => Ok(()),
            "payload" => {
                let Some(first) = path.get(1) else {
                    return Err("name a payload field (`payload.<name>`)".into());
                };
                match self.event.as_deref().and_then(|e| self.schema.event(e)) {
                    Some(fields) if !fields.contains_key(first) => {
                        Err(format!("the event declares no payload field `{first}`"))
                    }
                    _ => Ok(()),
                }
            }
            "steps" => {
                let (Some(step), Some(output)) = (path.get(1), path.get(2)) else {
                    return Err(
                        "name an earlier step and its output (`steps.<id>.<output>`)".into(),
                    );
                };
                match self.outputs.get(step.as_str()) {
                    None => Err(format!("no earlier step is named `{step}`")),
                    Some(outputs) if !outputs.contains(&output.as_str()) || path.len() > 3 => {
                        Err(format!(
                            "step `{step}` gives {}",
                            outputs
                                .iter()
                                .map(|o| format!("`{o}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                    Some(_) => Ok(()),
                }
            }
            _ => {
                let Some(object) = self.object.clone() else {
                    return Err("unknown merge field: the trigger is not about a record".into());
                };
                if root != object && root != "record" {
                    return Err(format!(
                        "unknown merge field (the record is `{object}`; also `payload`, `steps`, `now`)"
                    ));
                }
                let Some(field) = path.get(1) else {
                    return Err(format!("name a field of `{object}`"));
                };
                if path.len() > 2 {
                    return Err(format!("`{field}` has no parts"));
                }
                if field != "id" && field != OWNER {
                    self.schema
                        .field(&object, field)
                        .map_err(|e| e.to_string())?;
                }
                self.reads.entry(object).or_default().insert(field.clone());
                Ok(())
            }
        }
    }

    /// Checks a value written to `object.field`.
    fn value(&mut self, at: &str, object: &str, field: &str, value: &StepValue) {
        let ty = match self.schema.field(object, field) {
            Ok(def) => def.ty,
            Err(e) => {
                self.problems.push(format!("{at}: {e}"));
                return;
            }
        };
        let what = format!("field `{field}`");
        let literal = match value {
            StepValue::Relative(r) => {
                if ty != FieldType::Timestamp {
                    self.problems.push(format!(
                        "{at}: {what}: `in-days` / `in-hours` fit timestamp fields; `{field}` is a {} field",
                        ty.as_str()
                    ));
                } else if r.in_days.is_none() && r.in_hours.is_none() {
                    self.problems
                        .push(format!("{at}: {what}: give `in-days` or `in-hours`"));
                }
                None
            }
            StepValue::Text(t) => {
                self.template(at, &what, t);
                Template::parse(t)
                    .ok()
                    .filter(Template::is_plain)
                    .map(|_| FieldValue::Text(t.clone()))
            }
            StepValue::List(items) => {
                for item in items {
                    self.template(at, &what, item);
                }
                Some(FieldValue::TextList(items.clone()))
            }
            StepValue::Integer(n) => Some(FieldValue::Integer(*n)),
            StepValue::Number(n) => Some(FieldValue::Number(*n)),
            StepValue::Boolean(b) => Some(FieldValue::Boolean(*b)),
        };
        if let Some(v) = literal
            && let Err(e) = self.schema.coerce_as(ty, object, field, v)
        {
            self.problems.push(format!("{at}: {e}"));
        }
        self.writes
            .entry(object.to_string())
            .or_default()
            .insert(field.to_string());
    }

    fn field_of(&mut self, at: &str, object: &str, field: &str, fits: &[FieldType], what: &str) {
        match self.schema.field(object, field) {
            Ok(def) if fits.is_empty() || fits.contains(&def.ty) => {
                self.writes
                    .entry(object.to_string())
                    .or_default()
                    .insert(field.to_string());
            }
            Ok(def) => self.problems.push(format!(
                "{at}: {what} `{field}`, a {} field",
                def.ty.as_str()
            )),
            Err(e) => self.problems.push(format!("{at}: {e}")),
        }
    }

    fn principal(&mut self, at: &str, id: &str) {
        if !self.directory.is_open() && !self.directory.knows(id) {
            self.problems.push(format!(
                "{at}: `{id}` is not a principal of this host (roster.toml's [[principals]])"
            ));
        }
    }

    /// The triggering record's object, or why a step needs one.
    fn record_object(&mut self, at: &str) -> Option<String> {
        if self.object.is_none() {
            self.problems.push(format!(
                "{at}: needs a triggering record, and the rule's triggers are not about one"
            ));
        }
        self.object.clone()
    }
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
    };
    let mut creates = BTreeSet::new();
    let mut channels = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for (i, step) in file.steps.iter().enumerate() {
        let at = match step.id() {
            Some(id) => format!("step {} ({} `{id}`)", i + 1, step.action()),
            None => format!("step {} ({})", i + 1, step.action()),
        };
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

#[cfg(test)]
mod tests;
