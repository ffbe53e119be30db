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
//! ]
//! ```

use serde::{Deserialize, Serialize};

use crate::clock::parse_duration;
use crate::filter::{Filter, Op, matches};
use crate::governance::directory::Directory;
use crate::schema::Schema;
use crate::store::ConditionResult;
use crate::value::{FieldValue, Record};

/// A condition as written in configuration: exactly one of its keys is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}

impl ConditionSpec {
    /// Checks the spec against the schema of `object`; errors say which condition is wrong.
    pub fn compile(&self, object: Option<&str>, schema: &Schema) -> Result<Condition, String> {
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
                .map(|c| c.compile(object, schema))
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
            return Ok(Condition::Not(Box::new(not.compile(object, schema)?)));
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
        let object = object.ok_or("field conditions need a trigger on one object type")?;
        let field = self
            .field
            .clone()
            .ok_or("a field condition needs `field`")?;
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

/// What conditions are evaluated against.
pub struct Context<'a> {
    /// The principals (for team and role conditions).
    pub directory: &'a Directory,
    /// Now, in milliseconds since the Unix epoch.
    pub now: i64,
}

impl Condition {
    /// Whether the condition holds for `record`, with every leaf's result appended to
    /// `results` (all leaves are evaluated, so the log shows each one).
    pub fn evaluate(
        &self,
        record: &Record,
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

    fn leaf(&self, record: &Record, ctx: &Context<'_>) -> (String, bool) {
        let owner = record.owner.as_deref().unwrap_or("");
        match self {
            Condition::Field(f) => {
                let shown = match &f.value {
                    _ if f.op.is_unary() => String::new(),
                    FieldValue::Text(t) => format!(" \"{t}\""),
                    v => format!(" {}", serde_json::to_string(v).unwrap_or_default()),
                };
                (
                    format!("{} {}{shown}", f.field, f.op.as_str()),
                    matches(record.fields.get(&f.field), f.op, &f.value),
                )
            }
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
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) => (String::new(), false),
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
        let ctx = Context {
            directory: &dir,
            now: 30 * DAY_MS,
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
        assert!(c.evaluate(&r, &ctx, &mut results));
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
            &lead(&[("status", FieldValue::Text("new".into()))], "bob"),
            &ctx,
            &mut results
        ));
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
