//! Trigger conditions: checked by the host on the triggering record before a sandbox is
//! created, so an event that does not qualify costs no instantiation. Every leaf's pass or
//! fail is recorded for the execution log.
//!
//! In a worker's configuration:
//!
//! ```toml
//! [conditions]
//! all = [
//!   { field = "status", op = "equals", value = "new" },
//!   { any = [
//!       { field = "source", op = "equals", value = "referral" },
//!       { field = "employees", op = "greater-than", value = 200 },
//!   ] },
//!   { owner-in-team = "emea" },
//!   { owner-has-role = "ae" },
//!   { no-activity-for = "14d" },
//!   { not = { field = "email", op = "ends-with", value = "@gmail.com" } },
//!   { field = "payload.budget", op = "greater-than", value = 10000 },
//! ]
//! ```
//!
//! A field named `payload.<name>` (or `payload.<a>.<b>`) reads the event's payload instead
//! of the record: typed by the event's declaration (`[events.<name>]` in `roster.toml`)
//! when its triggers name one declared event, by the value given otherwise. Conditions
//! that read only the payload need no record, so they work on webhook and signal
//! triggers too.

use serde::{Deserialize, Serialize};

use crate::clock::parse_duration;
use crate::filter::{Filter, Op, matches};
use crate::governance::directory::Directory;
use crate::schema::Schema;
use crate::store::ConditionResult;
use crate::value::{FieldValue, Record};

/// A condition as written in configuration: exactly one of its keys is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConditionSpec {
    /// Every condition holds.
    pub all: Option<Vec<ConditionSpec>>,
    /// At least one condition holds.
    pub any: Option<Vec<ConditionSpec>>,
    /// The condition does not hold.
    pub not: Option<Box<ConditionSpec>>,
    /// A field comparison: the field...
    pub field: Option<String>,
    /// ...the operator...
    pub op: Option<Op>,
    /// ...and the value (not needed for `is-empty` / `is-not-empty`).
    pub value: Option<FieldValue>,
    /// The record's owner belongs to this team.
    pub owner_in_team: Option<String>,
    /// The record's owner holds this role.
    pub owner_has_role: Option<String>,
    /// The record's `last_activity_at` is older than this (`14d`, `36h`); a record with no
    /// activity counts from its creation.
    pub no_activity_for: Option<String>,
}

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every condition holds (true when empty).
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// A field comparison.
    Field(Filter),
    /// The owner belongs to a team.
    OwnerInTeam(String),
    /// The owner holds a role.
    OwnerHasRole(String),
    /// No activity for at least this many milliseconds.
    NoActivityFor(i64),
    /// A comparison on the event's payload: the filter's field is the path after
    /// `payload.`, and the declared type of its first part, if the event declares one.
    Payload(Filter, Option<crate::schema::FieldType>),
}

/// The prefix of a condition field that reads the event's payload.
pub const PAYLOAD: &str = "payload.";

impl ConditionSpec {
    /// Checks the spec against the schema of `object`; errors say which condition is wrong.
    pub fn compile(&self, object: Option<&str>, schema: &Schema) -> Result<Condition, String> {
        self.compile_for(object, None, schema)
    }

    /// Like [`ConditionSpec::compile`], with the named event whose declared payload types
    /// `payload.` fields are checked against.
    pub fn compile_for(
        &self,
        object: Option<&str>,
        event: Option<&str>,
        schema: &Schema,
    ) -> Result<Condition, String> {
        let kinds = [
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.field.is_some() || self.op.is_some() || self.value.is_some(),
            self.owner_in_team.is_some(),
            self.owner_has_role.is_some(),
            self.no_activity_for.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            1 => {}
            0 => return Err("an empty condition (use all, any, not, field, owner-in-team, owner-has-role or no-activity-for)".into()),
            _ => return Err("a condition sets more than one kind; nest them in `all` or `any`".into()),
        }
        let list = |items: &Vec<ConditionSpec>| {
            items
                .iter()
                .map(|c| c.compile_for(object, event, schema))
                .collect::<Result<Vec<_>, _>>()
        };
        if let Some(all) = &self.all {
            return Ok(Condition::All(list(all)?));
        }
        if let Some(any) = &self.any {
            if any.is_empty() {
                return Err("`any` needs at least one condition".into());
            }
            return Ok(Condition::Any(list(any)?));
        }
        if let Some(not) = &self.not {
            return Ok(Condition::Not(Box::new(
                not.compile_for(object, event, schema)?,
            )));
        }
        if let Some(team) = &self.owner_in_team {
            return Ok(Condition::OwnerInTeam(team.clone()));
        }
        if let Some(role) = &self.owner_has_role {
            return Ok(Condition::OwnerHasRole(role.clone()));
        }
        if let Some(d) = &self.no_activity_for {
            return Ok(Condition::NoActivityFor(parse_duration(d)?));
        }
        let field = self
            .field
            .clone()
            .ok_or("a field condition needs `field`")?;
        if let Some(path) = field.strip_prefix(PAYLOAD) {
            return self.compile_payload(path, event, schema);
        }
        let object = object.ok_or(
            "record field conditions need a trigger on one object type (a `payload.` field reads the event instead)",
        )?;
        let op = self
            .op
            .ok_or_else(|| format!("the condition on `{field}` needs `op`"))?;
        let value = match (&self.value, op.is_unary()) {
            (_, true) => FieldValue::Null,
            (Some(v), false) => schema
                .coerce_operand(object, &field, op, v.clone())
                .map_err(|e| e.to_string())?,
            (None, false) => {
                return Err(format!(
                    "the condition `{field} {}` needs `value`",
                    op.as_str()
                ));
            }
        };
        schema.field(object, &field).map_err(|e| e.to_string())?;
        Ok(Condition::Field(Filter { field, op, value }))
    }
}

impl ConditionSpec {
    fn compile_payload(
        &self,
        path: &str,
        event: Option<&str>,
        schema: &Schema,
    ) -> Result<Condition, String> {
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 8 {
            return Err(format!(
                "`payload.{path}` is not a payload path (names separated by dots, at most 8)"
            ));
        }
        let op = self
            .op
            .ok_or_else(|| format!("the condition on `payload.{path}` needs `op`"))?;
        let declared = event.and_then(|e| schema.event(e).map(|fields| (e, fields)));
        let ty = match declared {
            Some((name, fields)) => Some(*fields.get(parts[0]).ok_or_else(|| {
                format!(
                    "event `{name}` declares no payload field `{}` (it declares: {})",
                    parts[0],
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?),
            None => None,
        };
        let value = match (&self.value, op.is_unary()) {
            (_, true) => FieldValue::Null,
            (None, false) => {
                return Err(format!(
                    "the condition `payload.{path} {}` needs `value`",
                    op.as_str()
                ));
            }
            // A nested path has no declared type: the value is taken as given.
            (Some(v), false) => match ty.filter(|_| parts.len() == 1) {
                Some(crate::schema::FieldType::TextList) if op == Op::Contains => match v {
                    FieldValue::Text(_) => v.clone(),
                    _ => {
                        return Err(format!(
                            "`payload.{path} contains` compares with one text item"
                        ));
                    }
                },
                Some(ty) => {
                    if matches!(op, Op::GreaterThan | Op::LessThan)
                        && matches!(
                            ty,
                            crate::schema::FieldType::Boolean | crate::schema::FieldType::TextList
                        )
                    {
                        return Err(format!(
                            "`{}` does not fit `payload.{path}`, a {} field",
                            op.as_str(),
                            ty.as_str()
                        ));
                    }
                    schema
                        .coerce_as(ty, "payload", path, v.clone())
                        .map_err(|e| e.to_string())?
                }
                None => v.clone(),
            },
        };
        Ok(Condition::Payload(
            Filter {
                field: path.to_string(),
                op,
                value,
            },
            ty.filter(|_| parts.len() == 1),
        ))
    }
}

/// The value at a dotted path of a payload, as a field value of the declared type when
/// there is one (a value that does not read as that type counts as absent).
fn payload_value(
    payload: Option<&serde_json::Value>,
    path: &str,
    ty: Option<crate::schema::FieldType>,
    schema: &Schema,
) -> Option<FieldValue> {
    let mut at = payload?;
    for part in path.split('.') {
        at = at.as_object()?.get(part)?;
    }
    let value = FieldValue::from_json(at);
    match ty {
        Some(ty) => schema.coerce_as(ty, "payload", path, value).ok(),
        None => Some(value),
    }
}

/// What conditions are evaluated against.
pub struct Context<'a> {
    /// The principals (for team and role conditions).
    pub directory: &'a Directory,
    /// Now, in milliseconds since the Unix epoch.
    pub now: i64,
    /// The schema (declared payload types).
    pub schema: &'a Schema,
}

/// What one evaluation reads: the record (if the event has one) and the payload.
#[derive(Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The triggering record, as it is now.
    pub record: Option<&'a Record>,
    /// The event's payload.
    pub payload: Option<&'a serde_json::Value>,
}

impl Condition {
    /// Whether it reads the record (anything but payload comparisons).
    pub fn needs_record(&self) -> bool {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                items.iter().any(Condition::needs_record)
            }
            Condition::Not(inner) => inner.needs_record(),
            Condition::Payload(..) => false,
            Condition::Field(_)
            | Condition::OwnerInTeam(_)
            | Condition::OwnerHasRole(_)
            | Condition::NoActivityFor(_) => true,
        }
    }

    /// Whether it always holds (no conditions).
    pub fn is_empty(&self) -> bool {
        matches!(self, Condition::All(items) if items.is_empty())
    }

    /// Whether the condition holds for the subject, with every leaf's result appended to
    /// `results` (all leaves are evaluated, so the log shows each one). A record leaf
    /// without a record does not hold.
    pub fn evaluate(
        &self,
        record: Subject<'_>,
        ctx: &Context<'_>,
        results: &mut Vec<ConditionResult>,
    ) -> bool {
        match self {
            // Every item is evaluated (no short circuit) so that each leaf is logged.
            Condition::All(items) => {
                let held: Vec<bool> = items
                    .iter()
                    .map(|c| c.evaluate(record, ctx, results))
                    .collect();
                held.into_iter().all(|h| h)
            }
            Condition::Any(items) => {
                let held: Vec<bool> = items
                    .iter()
                    .map(|c| c.evaluate(record, ctx, results))
                    .collect();
                held.into_iter().any(|h| h)
            }
            Condition::Not(inner) => {
                let mut inner_results = Vec::new();
                let held = inner.evaluate(record, ctx, &mut inner_results);
                results.extend(inner_results.into_iter().map(|r| ConditionResult {
                    condition: format!("not ({})", r.condition),
                    passed: !r.passed,
                }));
                !held
            }
            leaf => {
                let (description, passed) = leaf.leaf(record, ctx);
                results.push(ConditionResult {
                    condition: description,
                    passed,
                });
                passed
            }
        }
    }

    fn leaf(&self, subject: Subject<'_>, ctx: &Context<'_>) -> (String, bool) {
        let shown = |f: &Filter| match &f.value {
            _ if f.op.is_unary() => String::new(),
            FieldValue::Text(t) => format!(" \"{t}\""),
            v => format!(" {}", serde_json::to_string(v).unwrap_or_default()),
        };
        if let Condition::Payload(f, ty) = self {
            let value = payload_value(subject.payload, &f.field, *ty, ctx.schema);
            return (
                format!("{PAYLOAD}{} {}{}", f.field, f.op.as_str(), shown(f)),
                matches(value.as_ref(), f.op, &f.value),
            );
        }
        let empty = Record {
            object: String::new(),
            id: String::new(),
            owner: None,
            fields: Default::default(),
        };
        let (record, present) = match subject.record {
            Some(r) => (r, true),
            None => (&empty, false),
        };
        let owner = record.owner.as_deref().unwrap_or("");
        let (description, passed) = match self {
            Condition::Field(f) => (
                format!("{} {}{}", f.field, f.op.as_str(), shown(f)),
                matches(record.fields.get(&f.field), f.op, &f.value),
            ),
            Condition::OwnerInTeam(team) => (
                format!("owner in team \"{team}\""),
                ctx.directory.in_team(owner, team),
            ),
            Condition::OwnerHasRole(role) => (
                format!("owner has role \"{role}\""),
                ctx.directory.has_role(owner, role),
            ),
            Condition::NoActivityFor(ms) => {
                let last = ["last_activity_at", "created_at"]
                    .iter()
                    .find_map(|f| record.fields.get(*f).and_then(FieldValue::as_f64));
                let idle = last.map(|t| ctx.now - t as i64);
                (
                    format!("no activity for {}", describe_ms(*ms)),
                    idle.is_some_and(|idle| idle > *ms),
                )
            }
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) | Condition::Payload(..) => {
                (String::new(), false)
            }
        };
        if present {
            (description, passed)
        } else {
            (format!("{description} (no record)"), false)
        }
    }
}

fn describe_ms(ms: i64) -> String {
    use crate::clock::{DAY_MS, HOUR_MS, MINUTE_MS};
    match ms {
        ms if ms % DAY_MS == 0 => format!("{} days", ms / DAY_MS),
        ms if ms % HOUR_MS == 0 => format!("{} hours", ms / HOUR_MS),
        ms => format!("{} minutes", ms / MINUTE_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DAY_MS;
    use crate::governance::directory::{Principal, PrincipalKind, Sees};

    fn spec(text: &str) -> ConditionSpec {
        toml::from_str(text).unwrap()
    }

    fn lead(fields: &[(&str, FieldValue)], owner: &str) -> Record {
        Record {
            object: "lead".into(),
            id: "1".into(),
            owner: Some(owner.into()),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn nested_groups_record_every_leaf() {
        let c = spec(
            r#"all = [
                { field = "status", op = "equals", value = "new" },
                { any = [
                    { field = "source", op = "equals", value = "referral" },
                    { field = "employees", op = "greater-than", value = 200 },
                ] },
                { owner-in-team = "emea" },
                { not = { field = "email", op = "ends-with", value = "@gmail.com" } },
                { no-activity-for = "14d" },
            ]"#,
        )
        .compile(Some("lead"), &Schema::standard())
        .unwrap();
        let dir = Directory::new(vec![Principal {
            id: "ann".into(),
            kind: PrincipalKind::User,
            teams: vec!["emea".into()],
            roles: vec![],
            sees: Sees::Team,
            email: None,
        }])
        .unwrap();
        let schema = Schema::standard();
        let ctx = Context {
            directory: &dir,
            now: 30 * DAY_MS,
            schema: &schema,
        };
        let r = lead(
            &[
                ("status", FieldValue::Text("New".into())),
                ("employees", FieldValue::Integer(500)),
                ("email", FieldValue::Text("a@corp.test".into())),
                (
                    "last_activity_at",
                    FieldValue::Timestamp { timestamp: DAY_MS },
                ),
            ],
            "ann",
        );
        let mut results = Vec::new();
        let of = |r| Subject {
            record: Some(r),
            payload: None,
        };
        assert!(c.evaluate(of(&r), &ctx, &mut results));
        let shown: Vec<(String, bool)> = results
            .into_iter()
            .map(|r| (r.condition, r.passed))
            .collect();
        assert_eq!(
            shown,
            [
                ("status equals \"new\"".to_string(), true),
                ("source equals \"referral\"".to_string(), false),
                ("employees greater-than 200".to_string(), true),
                ("owner in team \"emea\"".to_string(), true),
                ("not (email ends-with \"@gmail.com\")".to_string(), true),
                ("no activity for 14 days".to_string(), true),
            ]
        );
        let mut results = Vec::new();
        assert!(!c.evaluate(
            of(&lead(&[("status", FieldValue::Text("new".into()))], "bob")),
            &ctx,
            &mut results
        ));
        // Without a record, record conditions do not hold, and say why.
        let mut results = Vec::new();
        assert!(!c.evaluate(Subject::default(), &ctx, &mut results));
        assert!(
            results
                .iter()
                .all(|r| !r.passed || r.condition.starts_with("not"))
        );
        assert!(results[0].condition.ends_with("(no record)"), "{results:?}");
    }

    #[test]
    fn payload_conditions_read_the_event_typed_by_its_declaration() {
        let mut schema = Schema::standard();
        let declared = std::collections::BTreeMap::from([(
            "form-submitted".to_string(),
            std::collections::BTreeMap::from([
                ("budget".to_string(), crate::schema::FieldType::Number),
                ("due".to_string(), crate::schema::FieldType::Timestamp),
            ]),
        )]);
        schema.extend_events(&declared).unwrap();
        let c = spec(
            r#"all = [
                { field = "payload.budget", op = "greater-than", value = "10000" },
                { field = "payload.due", op = "less-than", value = "2027-01-01" },
            ]"#,
        );
        let typed = c
            .compile_for(None, Some("form-submitted"), &schema)
            .unwrap();
        assert!(!typed.needs_record());
        let dir = Directory::open();
        let ctx = Context {
            directory: &dir,
            now: 0,
            schema: &schema,
        };
        let payload = serde_json::json!({
            "budget": 12500, "due": "2026-12-24", "source": {"kind": "Web"}
        });
        let subject = Subject {
            record: None,
            payload: Some(&payload),
        };
        let mut results = Vec::new();
        assert!(typed.evaluate(subject, &ctx, &mut results), "{results:?}");
        assert_eq!(results[0].condition, "payload.budget greater-than 10000.0");
        let small =
            serde_json::json!({"budget": "900", "due": "2026-12-24", "source": {"kind": "web"}});
        let mut results = Vec::new();
        assert!(!typed.evaluate(
            Subject {
                record: None,
                payload: Some(&small)
            },
            &ctx,
            &mut results
        ));
        assert_eq!(results.iter().filter(|r| r.passed).count(), 1);
        // Without a declaration the value is taken as given, and paths may go deeper.
        let loose = spec(
            r#"all = [
                { field = "payload.budget", op = "greater-than", value = 10000 },
                { field = "payload.source.kind", op = "equals", value = "web" },
            ]"#,
        )
        .compile(None, &schema)
        .unwrap();
        let mut results = Vec::new();
        assert!(loose.evaluate(subject, &ctx, &mut results), "{results:?}");
        // Wrong declarations are refused when the worker loads.
        let err = |t: &str| {
            spec(t)
                .compile_for(None, Some("form-submitted"), &schema)
                .unwrap_err()
        };
        assert!(
            err("field = \"payload.bugdet\"\nop = \"equals\"\nvalue = 1")
                .contains("declares no payload field `bugdet`")
        );
        assert!(
            err("field = \"payload.budget\"\nop = \"equals\"\nvalue = \"lots\"")
                .contains("number field")
        );
        assert!(err("field = \"payload.\"\nop = \"is-empty\"").contains("not a payload path"));
        // A record field still needs an object.
        let err = spec("field = \"status\"\nop = \"equals\"\nvalue = \"new\"")
            .compile(None, &schema)
            .unwrap_err();
        assert!(err.contains("need a trigger on one object type"), "{err}");
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        let schema = Schema::standard();
        let err = |t: &str| spec(t).compile(Some("lead"), &schema).unwrap_err();
        assert!(
            err("field = \"nope\"\nop = \"equals\"\nvalue = 1").contains("unknown field `nope`")
        );
        assert!(err("field = \"status\"\nop = \"equals\"").contains("needs `value`"));
        assert!(
            err("field = \"employees\"\nop = \"equals\"\nvalue = \"many\"")
                .contains("integer field")
        );
        assert!(
            err("owner-in-team = \"a\"\nowner-has-role = \"b\"").contains("more than one kind")
        );
        assert!(err("no-activity-for = \"soon\"").contains("unit"));
        assert!(toml::from_str::<ConditionSpec>("fild = \"x\"").is_err());
    }
}
