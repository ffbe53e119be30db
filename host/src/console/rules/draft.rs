//! The rule builder's draft: the form's fields, read from a posted form or from a rule
//! file, and written back as a rule file (the builder edits a rule file; the API checks
//! and runs it like any other).
//!
//! A step's values are written one per line, `name = value`: a number, `true`/`false`, a
//! point in time relative to now (`+2d`, `-4h`) or to a field (`{{account.renewal_date}}
//! -30d`), or text (templates included).

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::super::session::Form;

/// One condition row: `field op value`, an owner's team or role, or idle time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Cond {
    /// A field (`payload.x` for the event), or `owner-in-team`, `owner-has-role`,
    /// `no-activity-for`.
    pub(super) field: String,
    pub(super) op: String,
    pub(super) value: String,
    /// The condition must not hold.
    pub(super) not: bool,
    /// A condition the rows cannot show (a nested group), as inline TOML.
    pub(super) expr: String,
}

/// The special "fields" of a condition row.
pub(super) const SPECIAL: [&str; 3] = ["owner-in-team", "owner-has-role", "no-activity-for"];

/// One step: its action, its name, its own condition and its inputs by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct StepDraft {
    pub(super) action: String,
    pub(super) id: String,
    pub(super) when: Cond,
    pub(super) inputs: BTreeMap<String, String>,
}

/// The whole draft.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Draft {
    pub(super) rule: BTreeMap<String, String>,
    pub(super) trigger: BTreeMap<String, String>,
    /// The triggers after the first, one inline TOML table per line.
    pub(super) more_triggers: String,
    /// `all` or `any`.
    pub(super) group: String,
    pub(super) conditions: Vec<Cond>,
    pub(super) steps: Vec<StepDraft>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            rule: BTreeMap::from([("domain".into(), "revenue".into())]),
            trigger: BTreeMap::from([
                ("on".into(), "record-created".into()),
                ("object".into(), "lead".into()),
            ]),
            more_triggers: String::new(),
            group: "all".into(),
            conditions: vec![Cond::default()],
            steps: vec![StepDraft {
                action: "notify".into(),
                ..StepDraft::default()
            }],
        }
    }
}

/// The rule inputs of the form, by name.
pub(super) const RULE_INPUTS: [&str; 5] = ["name", "description", "domain", "principal", "stage"];
/// The trigger inputs of the form, by name (what each kind of trigger reads).
pub(super) const TRIGGER_INPUTS: [&str; 9] = [
    "on", "object", "fields", "cron", "every", "name", "topic", "within", "more",
];

/// The inputs each action shows.
pub(super) fn inputs_of(action: &str) -> &'static [&'static str] {
    match action {
        "create" => &["object", "fields"],
        "update" => &["record", "set", "increment", "append", "clear"],
        "notify" => &["channel", "to", "subject", "message"],
        "assign" => &[
            "strategy",
            "to",
            "field",
            "territories",
            "capacity",
            "threshold",
            "open",
        ],
        "log-activity" => &["subject", "kind"],
        "sequence" => &["op", "sequence"],
        "request-approval" => &["reason", "reviewers"],
        "emit" => &["topic", "payload"],
        _ => &[],
    }
}

/// The inputs written one `name = value` per line.
pub(super) fn is_lines(input: &str) -> bool {
    matches!(
        input,
        "fields" | "set" | "increment" | "append" | "territories" | "payload"
    )
}

/// The inputs written as a comma-separated list.
fn is_list(input: &str) -> bool {
    matches!(input, "to" | "clear" | "reviewers")
}

fn text(form: &Form, name: &str) -> String {
    form.get(name).unwrap_or_default().trim().to_string()
}

fn count(form: &Form, name: &str) -> usize {
    form.get(name)
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(super::MAX_ROWS)
}

impl Draft {
    /// The draft a posted builder form describes.
    pub(super) fn from_form(form: &Form) -> Draft {
        let mut draft = Draft {
            rule: BTreeMap::new(),
            trigger: BTreeMap::new(),
            more_triggers: form
                .get("more_triggers")
                .unwrap_or_default()
                .trim()
                .replace("\r\n", "\n"),
            group: if form.get("group") == Some("any") {
                "any".into()
            } else {
                "all".into()
            },
            conditions: Vec::new(),
            steps: Vec::new(),
        };
        for name in RULE_INPUTS {
            draft.rule.insert(name.into(), text(form, name));
        }
        for name in TRIGGER_INPUTS {
            draft
                .trigger
                .insert(name.into(), text(form, &format!("trigger.{name}")));
        }
        let cond = |prefix: &str| Cond {
            field: text(form, &format!("{prefix}.field")),
            op: text(form, &format!("{prefix}.op")),
            value: text(form, &format!("{prefix}.value")),
            not: form.get(&format!("{prefix}.not")) == Some("yes"),
            expr: text(form, &format!("{prefix}.expr")),
        };
        for i in 0..count(form, "conditions") {
            draft.conditions.push(cond(&format!("c{i}")));
        }
        for i in 0..count(form, "steps") {
            let prefix = format!("s{i}");
            let action = text(form, &format!("{prefix}.action"));
            let mut inputs = BTreeMap::new();
            for input in inputs_of(&action) {
                // Lines keep their line breaks; one-line inputs are trimmed.
                let value = form
                    .get(&format!("{prefix}.{input}"))
                    .unwrap_or_default()
                    .replace("\r\n", "\n");
                let value = if is_lines(input) || *input == "message" {
                    value.trim_end().to_string()
                } else {
                    value.trim().to_string()
                };
                inputs.insert(input.to_string(), value);
            }
            draft.steps.push(StepDraft {
                action,
                id: text(form, &format!("{prefix}.id")),
                when: cond(&format!("{prefix}.when")),
                inputs,
            });
        }
        draft
    }

    /// The draft of a rule file (what the builder can show of it).
    pub(super) fn from_toml(text: &str) -> Result<Draft, String> {
        let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut draft = Draft {
            conditions: Vec::new(),
            steps: Vec::new(),
            ..Draft::default()
        };
        let get = |t: Option<&Value>, key: &str| -> String {
            t.and_then(|t| t.get(key)).map(show).unwrap_or_default()
        };
        let rule = table.get("rule");
        for name in RULE_INPUTS {
            draft.rule.insert(name.into(), get(rule, name));
        }
        let trigger = table
            .get("triggers")
            .and_then(Value::as_array)
            .and_then(|t| t.first());
        for name in TRIGGER_INPUTS {
            let key = if name == "fields" && get(trigger, "on") == "date-within" {
                "field"
            } else {
                name
            };
            draft.trigger.insert(name.into(), get(trigger, key));
        }
        // Whatever else the trigger says (a threshold's aggregate, a scan's limit), as
        // `key = value` lines of TOML.
        let more: Vec<String> = trigger
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                let date_field = k.as_str() == "field" && get(trigger, "on") == "date-within";
                !(TRIGGER_INPUTS.contains(&k.as_str()) || date_field)
            })
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        draft.trigger.insert("more".into(), more.join("\n"));
        draft.more_triggers = table
            .get("triggers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .skip(1)
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(conditions) = table.get("conditions") {
            let (group, leaves) = match (conditions.get("all"), conditions.get("any")) {
                (Some(Value::Array(a)), _) => ("all", a.clone()),
                (_, Some(Value::Array(a))) => ("any", a.clone()),
                _ => ("all", vec![conditions.clone()]),
            };
            draft.group = group.into();
            draft.conditions.extend(leaves.iter().map(row_of));
        }
        for step in table
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let action = get(Some(step), "action");
            let mut inputs = BTreeMap::new();
            for input in inputs_of(&action) {
                let value = match (*input, step.get(*input)) {
                    ("open", Some(Value::Table(o))) => format!(
                        "{} = {}",
                        o.get("field").map(show).unwrap_or_default(),
                        o.get("value").map(show).unwrap_or_default()
                    ),
                    (_, Some(Value::Table(t))) => t
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", show(v)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    (_, Some(v)) => show(v),
                    (_, None) => String::new(),
                };
                inputs.insert(input.to_string(), value);
            }
            let when = step.get("when").map(row_of).unwrap_or_default();
            draft.steps.push(StepDraft {
                action,
                id: get(Some(step), "id"),
                when,
                inputs,
            });
        }
        Ok(draft)
    }

    /// The rule file the draft describes.
    pub(super) fn to_toml(&self) -> String {
        let mut file = Table::new();
        let mut rule = Table::new();
        for name in RULE_INPUTS {
            if let Some(v) = self.rule.get(name).filter(|v| !v.is_empty()) {
                rule.insert(name.into(), Value::String(v.clone()));
            }
        }
        file.insert("rule".into(), Value::Table(rule));
        let mut trigger = Table::new();
        let on = self.trigger.get("on").cloned().unwrap_or_default();
        for name in TRIGGER_INPUTS {
            let Some(v) = self.trigger.get(name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = match name {
                "more" => {
                    if let Ok(more) = toml::from_str::<Table>(v) {
                        trigger.extend(more);
                    }
                    continue;
                }
                "fields" if on == "date-within" => {
                    trigger.insert("field".into(), Value::String(v.clone()));
                    continue;
                }
                "fields" => Value::Array(list(v).into_iter().map(Value::String).collect()),
                _ => Value::String(v.clone()),
            };
            trigger.insert(name.into(), value);
        }
        let mut triggers = vec![Value::Table(trigger)];
        for line in self.more_triggers.lines().filter(|l| !l.trim().is_empty()) {
            // As written; a line that is not TOML is kept as text for the checks to refuse.
            triggers.push(
                toml::from_str::<Table>(&format!("x = {line}"))
                    .ok()
                    .and_then(|mut t| t.remove("x"))
                    .unwrap_or_else(|| Value::String(line.to_string())),
            );
        }
        file.insert("triggers".into(), Value::Array(triggers));
        let leaves: Vec<Value> = self.conditions.iter().filter_map(Cond::to_toml).collect();
        match (leaves.as_slice(), self.group.as_str()) {
            ([], _) => {}
            // One condition stands alone.
            ([Value::Table(leaf)], "all") => {
                file.insert("conditions".into(), Value::Table(leaf.clone()));
            }
            _ => {
                let mut conditions = Table::new();
                conditions.insert(self.group.clone(), Value::Array(leaves));
                file.insert("conditions".into(), Value::Table(conditions));
            }
        }
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| Value::Table(s.to_toml()))
            .collect();
        file.insert("steps".into(), Value::Array(steps));
        let body = toml::to_string(&file).unwrap_or_default();
        format!("# Written by the rule builder.\n{body}")
    }
}

/// A value as the builder shows it: text bare, lists comma-separated, relative times as
/// `+2d` (or `{{field}} -30d`), other values as TOML.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Table(t) if t.contains_key("in-days") || t.contains_key("in-hours") => {
            let (n, unit) = match (t.get("in-days"), t.get("in-hours")) {
                (Some(d), _) => (d.as_integer().unwrap_or(0), "d"),
                (None, Some(h)) => (h.as_integer().unwrap_or(0), "h"),
                _ => (0, "d"),
            };
            let offset = format!("{n:+}{unit}");
            match t.get("from").and_then(Value::as_str) {
                Some(from) => format!("{from} {offset}"),
                None => offset,
            }
        }
        other => other.to_string(),
    }
}

/// A condition row from one condition: a leaf (or `not` of a leaf) as a row, anything
/// else as inline TOML.
fn row_of(v: &Value) -> Cond {
    leaf_of(v).unwrap_or_else(|| Cond {
        expr: v.to_string(),
        ..Cond::default()
    })
}

/// A condition row from one leaf (`not` of a leaf included); `None` for a group.
fn leaf_of(v: &Value) -> Option<Cond> {
    if let Some(inner) = v.get("not") {
        let mut c = leaf_of(inner)?;
        if c.not {
            return None;
        }
        c.not = true;
        return Some(c);
    }
    if v.get("all").is_some() || v.get("any").is_some() {
        return None;
    }
    for special in SPECIAL {
        if let Some(value) = v.get(special) {
            return Some(Cond {
                field: special.into(),
                value: show(value),
                ..Cond::default()
            });
        }
    }
    Some(Cond {
        field: show(v.get("field")?),
        op: v.get("op").map(show).unwrap_or_default(),
        value: v.get("value").map(show).unwrap_or_default(),
        ..Cond::default()
    })
}

/// The items of a comma-separated list.
fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A value as typed: a number, true or false, a relative time, or text.
pub(super) fn typed(text: &str) -> Value {
    let t = text.trim();
    if let Some(relative) = relative(t) {
        return relative;
    }
    if let Ok(n) = t.parse::<i64>() {
        return Value::Integer(n);
    }
    if let Ok(n) = t.parse::<f64>()
        && n.is_finite()
        && t.chars().any(|c| c.is_ascii_digit())
    {
        return Value::Float(n);
    }
    match t {
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        _ => {
            let unquoted = t
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(t);
            Value::String(unquoted.to_string())
        }
    }
}

/// `+2d`, `-4h`, `{{account.renewal_date}} -30d`.
fn relative(t: &str) -> Option<Value> {
    let (from, offset) = match t.rsplit_once(' ') {
        Some((from, offset)) if from.trim().starts_with("{{") => (Some(from.trim()), offset),
        _ => (None, t),
    };
    let sign = offset.chars().next().filter(|c| *c == '+' || *c == '-')?;
    let unit = offset.chars().last()?;
    let digits = offset.get(1..offset.len() - 1)?;
    // At most a u32 of days or hours: no overflow whatever was typed.
    let n = i64::from(digits.parse::<u32>().ok()?);
    let n = if sign == '-' { -n } else { n };
    let mut table = Table::new();
    match unit {
        'd' => table.insert("in-days".into(), Value::Integer(n)),
        'h' => table.insert("in-hours".into(), Value::Integer(n)),
        _ => return None,
    };
    if let Some(from) = from {
        table.insert("from".into(), Value::String(from.to_string()));
    }
    Some(Value::Table(table))
}

/// `name = value` lines as a table (blank lines skipped; a line without `=` is kept as a
/// name with an empty value, for the API to refuse by name).
fn lines(text: &str, value: impl Fn(&str) -> Value) -> Table {
    let mut table = Table::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, v) = line.split_once('=').unwrap_or((line, ""));
        table.insert(name.trim().to_string(), value(v.trim()));
    }
    table
}

impl Cond {
    fn to_toml(&self) -> Option<Value> {
        if !self.expr.is_empty() {
            // As written; TOML that does not parse is kept as text for the checks to refuse.
            return Some(
                toml::from_str::<Table>(&format!("x = {}", self.expr))
                    .ok()
                    .and_then(|mut t| t.remove("x"))
                    .unwrap_or_else(|| Value::String(self.expr.clone())),
            );
        }
        if self.field.is_empty() {
            return None;
        }
        let mut leaf = Table::new();
        if SPECIAL.contains(&self.field.as_str()) {
            leaf.insert(self.field.clone(), Value::String(self.value.clone()));
        } else {
            leaf.insert("field".into(), Value::String(self.field.clone()));
            leaf.insert(
                "op".into(),
                Value::String(if self.op.is_empty() {
                    "equals".into()
                } else {
                    self.op.clone()
                }),
            );
            if !matches!(self.op.as_str(), "is-empty" | "is-not-empty") {
                leaf.insert("value".into(), typed(&self.value));
            }
        }
        Some(if self.not {
            Value::Table(Table::from_iter([("not".to_string(), Value::Table(leaf))]))
        } else {
            Value::Table(leaf)
        })
    }
}

impl StepDraft {
    fn to_toml(&self) -> Table {
        let mut step = Table::new();
        if !self.id.is_empty() {
            step.insert("id".into(), Value::String(self.id.clone()));
        }
        step.insert("action".into(), Value::String(self.action.clone()));
        for (input, value) in &self.inputs {
            if value.is_empty() {
                continue;
            }
            let v = match input.as_str() {
                "increment" => Value::Table(lines(value, |v| {
                    v.parse::<f64>().map(Value::Float).unwrap_or(typed(v))
                })),
                "append" | "territories" => {
                    Value::Table(lines(value, |v| Value::String(v.to_string())))
                }
                "open" => {
                    let (field, v) = value.split_once('=').unwrap_or((value, ""));
                    Value::Table(Table::from_iter([
                        ("field".to_string(), Value::String(field.trim().into())),
                        ("value".to_string(), Value::String(v.trim().into())),
                    ]))
                }
                "capacity" | "threshold" => typed(value),
                i if is_lines(i) => Value::Table(lines(value, typed)),
                i if is_list(i) => {
                    Value::Array(list(value).into_iter().map(Value::String).collect())
                }
                _ => Value::String(value.clone()),
            };
            step.insert(input.clone(), v);
        }
        if let Some(when) = self.when.to_toml() {
            step.insert("when".into(), when);
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTING: &str = include_str!("../../../../examples/rules/enterprise-lead-routing.toml");

    #[test]
    fn a_preset_reads_into_the_builder_and_back_the_same() {
        for (name, text) in crate::rules::PRESETS {
            let draft = Draft::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let written = draft.to_toml();
            let again = Draft::from_toml(&written).unwrap();
            assert_eq!(again, draft, "{name}:\n{written}");
            // The same rule, as the checks read it.
            let checked = |text: &str| {
                let file: crate::rules::RuleFile =
                    toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
                crate::rules::check(
                    &file,
                    &crate::schema::Schema::standard(),
                    &crate::governance::directory::Directory::open(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e:?}\n{text}"))
            };
            let (a, b) = (checked(text), checked(&written));
            assert_eq!(a.chain, b.chain, "{name}");
            assert_eq!(a.conditions, b.conditions, "{name}");
            assert_eq!(a.triggers, b.triggers, "{name}");
            assert_eq!(a.when, b.when, "{name}");
        }
        let draft = Draft::from_toml(ROUTING).unwrap();
        assert_eq!(draft.steps[1].inputs["fields"].lines().count(), 6);
        assert!(draft.steps[1].inputs["fields"].contains("due_date = +2d"));
    }

    #[test]
    fn values_are_typed_as_written() {
        assert_eq!(typed("500"), Value::Integer(500));
        assert_eq!(typed("2.5"), Value::Float(2.5));
        assert_eq!(typed("true"), Value::Boolean(true));
        assert_eq!(
            typed("Call {{lead.name}}"),
            Value::String("Call {{lead.name}}".into())
        );
        assert_eq!(typed("\"42\""), Value::String("42".into()));
        let Value::Table(t) = typed("{{account.renewal_date}} -30d") else {
            panic!()
        };
        assert_eq!(t["in-days"], Value::Integer(-30));
        assert_eq!(t["from"], Value::String("{{account.renewal_date}}".into()));
        assert!(matches!(typed("+4h"), Value::Table(t) if t["in-hours"] == Value::Integer(4)));
        assert_eq!(typed("+x"), Value::String("+x".into()));
        assert_eq!(
            typed("--9223372036854775808d"),
            Value::String("--9223372036854775808d".into())
        );
        assert_eq!(
            typed("+99999999999d"),
            Value::String("+99999999999d".into())
        );
    }
}
