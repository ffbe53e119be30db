//! The walk over a rule's steps: each merge field, written value and principal checked
//! against the schema and the directory, with what the rule reads and writes collected
//! for its grant.

use std::collections::{BTreeMap, BTreeSet};

use roster_rules::{StepValue, Template};

use crate::governance::directory::Directory;
use crate::schema::{FieldType, Schema};
use crate::scope::OWNER;
use crate::value::FieldValue;

/// What the checks collect while they walk the rule.
pub(super) struct Walk<'a> {
    pub(super) schema: &'a Schema,
    pub(super) directory: &'a Directory,
    pub(super) object: Option<String>,
    pub(super) event: Option<String>,
    pub(super) problems: Vec<String>,
    pub(super) reads: BTreeMap<String, BTreeSet<String>>,
    pub(super) writes: BTreeMap<String, BTreeSet<String>>,
    /// Earlier steps' names and outputs.
    pub(super) outputs: BTreeMap<String, &'static [&'static str]>,
    /// Whether a trigger is a record update (so `changes.<field>` exists).
    pub(super) updates: bool,
}

impl Walk<'_> {
    /// Checks a template's merge fields; notes the record fields it reads.
    pub(super) fn template(&mut self, at: &str, what: &str, text: &str) {
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

    pub(super) fn merge_field(&mut self, path: &[String]) -> Result<(), String> {
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
            "changes" => {
                let (Some(field), Some(side), None) = (path.get(1), path.get(2), path.get(3))
                else {
                    return Err("name a field and `old` or `new` (`changes.<field>.old`)".into());
                };
                if !self.updates {
                    return Err("`changes` needs a record-updated trigger".into());
                }
                if side != "old" && side != "new" {
                    return Err(format!("a change has `old` and `new`, not `{side}`"));
                }
                let object = self.object.clone().unwrap_or_default();
                self.schema
                    .field(&object, field)
                    .map_err(|e| e.to_string())?;
                self.reads.entry(object).or_default().insert(field.clone());
                Ok(())
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
                        "unknown merge field (the record is `{object}`; also `payload`, `changes`, `steps`, `now`)"
                    ));
                }
                let Some(field) = path.get(1) else {
                    return Err(format!("name a field of `{object}`"));
                };
                if let Some(part) = path.get(2) {
                    // A related record: `{{opportunity.account.name}}` reads the account
                    // the opportunity's `account_id` names.
                    if path.len() > 3 {
                        return Err(format!("`{field}.{part}` has no parts"));
                    }
                    let link = format!("{field}_id");
                    if self.schema.object(field).is_err()
                        || self.schema.field(&object, &link).is_err()
                    {
                        return Err(format!(
                            "`{field}` is not a field or a related record of `{object}` (a related record is named by a `<object>_id` field)"
                        ));
                    }
                    if part == "id" || part == OWNER {
                        return Err(format!(
                            "a related record's `{part}` is not a merge field; its id is `{{{{{object}.{link}}}}}`"
                        ));
                    }
                    self.schema.field(field, part).map_err(|e| e.to_string())?;
                    self.reads
                        .entry(field.clone())
                        .or_default()
                        .insert(part.clone());
                    self.reads.entry(object).or_default().insert(link);
                    return Ok(());
                }
                if field == "id" || field == OWNER {
                    // Every record carries its id and owner.
                    return Ok(());
                }
                self.schema
                    .field(&object, field)
                    .map_err(|e| e.to_string())?;
                self.reads.entry(object).or_default().insert(field.clone());
                Ok(())
            }
        }
    }

    /// Checks a value written to `object.field`.
    pub(super) fn value(&mut self, at: &str, object: &str, field: &str, value: &StepValue) {
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
                if let Some(from) = &r.from {
                    self.template(at, &format!("{what}: from"), from);
                    if Template::parse(from)
                        .ok()
                        .and_then(|t| t.single().map(|_| ()))
                        .is_none()
                    {
                        self.problems.push(format!(
                            "{at}: {what}: `from` is one merge field holding a point in time (`{{{{account.renewal_date}}}}`)"
                        ));
                    }
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

    pub(super) fn field_of(
        &mut self,
        at: &str,
        object: &str,
        field: &str,
        fits: &[FieldType],
        what: &str,
    ) {
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

    pub(super) fn principal(&mut self, at: &str, id: &str) {
        if !self.directory.is_open() && !self.directory.knows(id) {
            self.problems.push(format!(
                "{at}: `{id}` is not a principal of this host (roster.toml's [[principals]])"
            ));
        }
    }

    /// The triggering record's object, or why a step needs one.
    pub(super) fn record_object(&mut self, at: &str) -> Option<String> {
        if self.object.is_none() {
            self.problems.push(format!(
                "{at}: needs a triggering record, and the rule's triggers are not about one"
            ));
        }
        self.object.clone()
    }
}
