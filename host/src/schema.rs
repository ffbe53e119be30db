//! The record schema: the standard CRM objects, custom objects from `roster.toml`, typed
//! fields and which fields are indexed.
//!
//! Every write that comes from outside the store (imports, the API, workers) is checked
//! here: an unknown object or field, or a value of the wrong type, is rejected with a clear
//! error before anything is written. Values are coerced where the intent is unambiguous
//! (an integer into a number field, an RFC 3339 or `YYYY-MM-DD` text into a timestamp, text
//! digits from a CSV cell into a number).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::FieldValue;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldType {
    /// Free text.
    Text,
    /// A whole number.
    Integer,
    /// A decimal number (integers accepted).
    Number,
    /// True or false.
    Boolean,
    /// A point in time (milliseconds since the Unix epoch).
    Timestamp,
    /// A multi-select list of text options.
    TextList,
}

impl FieldType {
    /// The type's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::TextList => "text-list",
        }
    }
}

/// One field of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FieldDef {
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Whether queries on this field use an index.
    #[serde(default)]
    pub indexed: bool,
}

/// One object type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectDef {
    /// Fields by name.
    pub fields: BTreeMap<String, FieldDef>,
    /// Whether it was declared in configuration rather than built in.
    pub custom: bool,
}

/// Why a write does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The object type does not exist.
    #[error("unknown object `{0}`")]
    UnknownObject(String),
    /// The field does not exist on the object.
    #[error("unknown field `{field}` on `{object}`")]
    UnknownField {
        /// The object.
        object: String,
        /// The field.
        field: String,
    },
    /// The value does not have the field's type.
    #[error("`{object}.{field}` is {} field; got {got}", with_article(expected))]
    WrongType {
        /// The object.
        object: String,
        /// The field.
        field: String,
        /// The field's type.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A custom object definition is invalid.
    #[error("custom object `{object}`: {reason}")]
    BadDefinition {
        /// The object.
        object: String,
        /// What is wrong.
        reason: String,
    },
}

/// A type's name with its article (`an integer`, `a text`).
fn with_article(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// The fields every record of every object has, besides its own.
pub const SYSTEM_FIELDS: &[(&str, FieldType)] = &[
    ("created_at", FieldType::Timestamp),
    ("updated_at", FieldType::Timestamp),
    ("last_activity_at", FieldType::Timestamp),
];

/// The schema of the system of record.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    objects: BTreeMap<String, ObjectDef>,
    /// The payload fields named events declare (`[events.<name>]` in `roster.toml`).
    events: BTreeMap<String, BTreeMap<String, FieldType>>,
}

/// Builds a field map: `"name": Type;` or `"name": Type, idx;` for an indexed field.
macro_rules! object {
    ($($name:literal: $ty:ident $(, $idx:ident)?;)*) => {{
        let mut fields = BTreeMap::new();
        $(
            fields.insert($name.to_string(), FieldDef { ty: FieldType::$ty, indexed: object!(@idx $($idx)?) });
        )*
        fields
    }};
    (@idx) => { false };
    (@idx idx) => { true };
}

impl Default for Schema {
    fn default() -> Self {
        Schema::standard()
    }
}

impl Schema {
    /// The standard objects: lead, contact, account, opportunity, task, activity, note,
    /// meeting, ticket, invoice and the rest the demo business uses, and the
    /// enrollments of records in sequences.
    pub fn standard() -> Schema {
        let mut objects = BTreeMap::new();
        let mut add = |name: &str, fields: BTreeMap<String, FieldDef>| {
            objects.insert(
                name.to_string(),
                ObjectDef {
                    fields,
                    custom: false,
                },
            );
        };
        add(
            "lead",
            object! {
                "name": Text; "email": Text, idx; "phone": Text; "title": Text; "company": Text, idx;
                "employees": Integer, idx; "source": Text, idx; "status": Text, idx; "score": Number, idx;
                "rating": Text, idx; "stale": Boolean; "country": Text, idx; "tags": TextList;
                "domain": Text, idx; "industry": Text, idx; "annual_revenue": Number;
                "enriched_at": Timestamp;
            },
        );
        add(
            "contact",
            object! {
                "name": Text; "email": Text, idx; "phone": Text; "title": Text; "account_id": Text, idx;
                "status": Text, idx; "merged_into": Text, idx;
            },
        );
        add(
            "account",
            object! {
                "name": Text, idx; "domain": Text, idx; "industry": Text, idx; "employees": Integer, idx;
                "annual_revenue": Number; "tier": Text, idx; "renewal_date": Timestamp, idx;
                "health_score": Number, idx; "country": Text, idx;
            },
        );
        add(
            "opportunity",
            object! {
                "name": Text; "account_id": Text, idx; "stage": Text, idx; "status": Text, idx;
                "amount": Number, idx; "close_date": Timestamp, idx; "probability": Number;
                "loss_reason": Text; "next_step": Text; "win_reason": Text;
            },
        );
        add(
            "task",
            object! {
                "subject": Text; "status": Text, idx; "due_date": Timestamp, idx; "priority": Text, idx;
                "related_to": Text, idx; "assignee": Text, idx;
            },
        );
        add(
            "activity",
            object! {
                "type": Text, idx; "subject": Text; "related_to": Text, idx; "occurred_at": Timestamp, idx;
                "outcome": Text;
            },
        );
        add(
            "note",
            object! {
                "body": Text; "related_to": Text, idx;
            },
        );
        add(
            "meeting",
            object! {
                "subject": Text; "related_to": Text, idx; "starts_at": Timestamp, idx; "status": Text, idx;
                "attendees": TextList;
            },
        );
        add(
            "ticket",
            object! {
                "subject": Text; "status": Text, idx; "priority": Text, idx; "account_id": Text, idx;
                "opened_at": Timestamp, idx; "category": Text, idx; "description": Text;
                "queue": Text, idx; "sentiment": Text, idx;
            },
        );
        add(
            "invoice",
            object! {
                "number": Text, idx; "account_id": Text, idx; "amount": Number, idx; "status": Text, idx;
                "due_date": Timestamp, idx; "paid_at": Timestamp; "vendor": Text, idx;
                "po_number": Text, idx; "review_status": Text, idx; "discrepancy": Text;
            },
        );
        add(
            "purchase_order",
            object! {
                "number": Text, idx; "vendor": Text, idx; "amount": Number, idx; "status": Text, idx;
                "approved_by": Text;
            },
        );
        add(
            "security_alert",
            object! {
                "title": Text; "source": Text, idx; "severity": Text, idx; "category": Text, idx;
                "host": Text, idx; "user": Text, idx; "status": Text, idx; "details": Text;
            },
        );
        add(
            "employee",
            object! {
                "name": Text; "email": Text, idx; "department": Text, idx; "title": Text;
                "manager": Text, idx; "start_date": Timestamp, idx; "status": Text, idx;
            },
        );
        add(
            "access_request",
            object! {
                "employee_id": Text, idx; "system": Text, idx; "role": Text; "status": Text, idx;
                "justification": Text; "approver": Text, idx;
            },
        );
        add(
            "candidate",
            object! {
                "name": Text; "email": Text, idx; "position": Text, idx; "skills": TextList;
                "years_experience": Integer; "stage": Text, idx; "score": Number, idx;
                "recommendation": Text;
            },
        );
        add(
            "sequence_enrollment",
            object! {
                "sequence": Text, idx; "record": Text, idx; "step": Integer; "status": Text, idx;
                "enrolled_at": Timestamp; "advanced_at": Timestamp;
            },
        );
        let mut schema = Schema {
            objects,
            events: BTreeMap::new(),
        };
        schema.add_system_fields();
        schema
    }

    fn add_system_fields(&mut self) {
        for def in self.objects.values_mut() {
            for (name, ty) in SYSTEM_FIELDS {
                def.fields.insert(
                    name.to_string(),
                    FieldDef {
                        ty: *ty,
                        indexed: true,
                    },
                );
            }
        }
    }

    /// Adds custom objects (or extra fields on standard objects) from configuration.
    pub fn extend(
        &mut self,
        custom: &BTreeMap<String, BTreeMap<String, FieldDef>>,
    ) -> Result<(), SchemaError> {
        for (object, fields) in custom {
            let valid_name = |n: &str| {
                !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            };
            if !valid_name(object) {
                return Err(SchemaError::BadDefinition {
                    object: object.clone(),
                    reason: "names use 1 to 64 lower-case letters, digits or `_`".into(),
                });
            }
            if let Some(bad) = fields.keys().find(|f| !valid_name(f)) {
                return Err(SchemaError::BadDefinition {
                    object: object.clone(),
                    reason: format!("field `{bad}`: names use lower-case letters, digits or `_`"),
                });
            }
            let entry = self
                .objects
                .entry(object.clone())
                .or_insert_with(|| ObjectDef {
                    fields: BTreeMap::new(),
                    custom: true,
                });
            for (name, def) in fields {
                if let Some(existing) = entry.fields.get(name)
                    && existing.ty != def.ty
                {
                    return Err(SchemaError::BadDefinition {
                        object: object.clone(),
                        reason: format!(
                            "field `{name}` is already a {} field",
                            existing.ty.as_str()
                        ),
                    });
                }
                entry.fields.insert(name.clone(), *def);
            }
        }
        self.add_system_fields();
        Ok(())
    }

    /// Declares the payload fields of named events; their payloads are checked when
    /// accepted and conditions on them are typed.
    pub fn extend_events(
        &mut self,
        events: &BTreeMap<String, BTreeMap<String, FieldType>>,
    ) -> Result<(), SchemaError> {
        for (name, fields) in events {
            let valid = |n: &str| {
                !n.is_empty()
                    && n.len() <= 64
                    && n.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    })
            };
            if !valid(name) {
                return Err(SchemaError::BadDefinition {
                    object: format!("event {name}"),
                    reason: "event names use 1 to 64 lower-case letters, digits, `-` or `_`".into(),
                });
            }
            if let Some(bad) = fields.keys().find(|f| !valid(f)) {
                return Err(SchemaError::BadDefinition {
                    object: format!("event {name}"),
                    reason: format!(
                        "field `{bad}`: names use lower-case letters, digits, `-` or `_`"
                    ),
                });
            }
            self.events.insert(name.clone(), fields.clone());
        }
        Ok(())
    }

    /// The payload fields an event declares, if it declares any.
    pub fn event(&self, name: &str) -> Option<&BTreeMap<String, FieldType>> {
        self.events.get(name)
    }

    /// Checks the declared fields of an event's payload (others pass as they are).
    pub fn check_payload(
        &self,
        name: &str,
        payload: Option<&serde_json::Value>,
    ) -> Result<(), SchemaError> {
        let Some(fields) = self.events.get(name) else {
            return Ok(());
        };
        let object = format!("payload of {name}");
        let Some(payload) = payload.filter(|p| !p.is_null()) else {
            return Ok(());
        };
        let Some(map) = payload.as_object() else {
            return Err(SchemaError::WrongType {
                object,
                field: "(payload)".into(),
                expected: "JSON object",
                got: describe_json(payload),
            });
        };
        for (field, ty) in fields {
            if let Some(v) = map.get(field) {
                self.coerce_as(*ty, &object, field, FieldValue::from_json(v))?;
            }
        }
        Ok(())
    }

    /// The object's definition.
    pub fn object(&self, object: &str) -> Result<&ObjectDef, SchemaError> {
        self.objects
            .get(object)
            .ok_or_else(|| SchemaError::UnknownObject(object.to_string()))
    }

    /// Every object type's name.
    pub fn objects(&self) -> impl Iterator<Item = (&String, &ObjectDef)> {
        self.objects.iter()
    }

    /// A field's definition.
    pub fn field(&self, object: &str, field: &str) -> Result<FieldDef, SchemaError> {
        self.object(object)?
            .fields
            .get(field)
            .copied()
            .ok_or_else(|| SchemaError::UnknownField {
                object: object.to_string(),
                field: field.to_string(),
            })
    }

    /// Whether `object.field` is indexed.
    pub fn is_indexed(&self, object: &str, field: &str) -> bool {
        self.field(object, field).is_ok_and(|f| f.indexed)
    }

    /// Checks a value against a field's type, converting it where the intent is clear.
    pub fn coerce(
        &self,
        object: &str,
        field: &str,
        value: FieldValue,
    ) -> Result<FieldValue, SchemaError> {
        let def = self.field(object, field)?;
        self.coerce_as(def.ty, object, field, value)
    }

    /// Checks a value against a type, converting it where the intent is clear; errors
    /// name `object.field`.
    pub fn coerce_as(
        &self,
        ty: FieldType,
        object: &str,
        field: &str,
        value: FieldValue,
    ) -> Result<FieldValue, SchemaError> {
        let wrong = |got: &FieldValue| SchemaError::WrongType {
            object: object.to_string(),
            field: field.to_string(),
            expected: ty.as_str(),
            got: describe(got),
        };
        let coerced = match (ty, value) {
            (_, FieldValue::Null) => FieldValue::Null,
            (FieldType::Text, FieldValue::Text(t)) => FieldValue::Text(t),
            (FieldType::Integer, FieldValue::Integer(n)) => FieldValue::Integer(n),
            (FieldType::Integer, FieldValue::Number(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
                FieldValue::Integer(n as i64)
            }
            (FieldType::Integer, FieldValue::Text(t)) => FieldValue::Integer(
                t.trim()
                    .parse()
                    .map_err(|_| wrong(&FieldValue::Text(t.clone())))?,
            ),
            (FieldType::Number, FieldValue::Number(n)) => FieldValue::Number(n),
            (FieldType::Number, FieldValue::Integer(n)) => FieldValue::Number(n as f64),
            (FieldType::Number, FieldValue::Text(t)) => {
                let n: f64 = t
                    .trim()
                    .parse()
                    .map_err(|_| wrong(&FieldValue::Text(t.clone())))?;
                if !n.is_finite() {
                    return Err(wrong(&FieldValue::Text(t)));
                }
                FieldValue::Number(n)
            }
            (FieldType::Boolean, FieldValue::Boolean(b)) => FieldValue::Boolean(b),
            (FieldType::Boolean, FieldValue::Text(t)) => {
                match t.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => FieldValue::Boolean(true),
                    "false" | "no" | "0" => FieldValue::Boolean(false),
                    _ => return Err(wrong(&FieldValue::Text(t))),
                }
            }
            (FieldType::Timestamp, FieldValue::Timestamp { timestamp }) => {
                FieldValue::Timestamp { timestamp }
            }
            (FieldType::Timestamp, FieldValue::Integer(n)) => {
                FieldValue::Timestamp { timestamp: n }
            }
            (FieldType::Timestamp, FieldValue::Text(t)) => FieldValue::Timestamp {
                timestamp: parse_time(&t).ok_or_else(|| wrong(&FieldValue::Text(t.clone())))?,
            },
            (FieldType::TextList, FieldValue::TextList(l)) => FieldValue::TextList(l),
            (FieldType::TextList, FieldValue::Text(t)) => FieldValue::TextList(
                t.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            (_, other) => return Err(wrong(&other)),
        };
        if let FieldValue::Number(n) = coerced
            && !n.is_finite()
        {
            return Err(wrong(&coerced));
        }
        Ok(coerced)
    }

    /// Checks the value a filter compares `object.field` with: like [`Schema::coerce`],
    /// except that `contains` on a list field compares with one item (text).
    pub fn coerce_operand(
        &self,
        object: &str,
        field: &str,
        op: crate::filter::Op,
        value: FieldValue,
    ) -> Result<FieldValue, SchemaError> {
        let def = self.field(object, field)?;
        if def.ty == FieldType::TextList && op == crate::filter::Op::Contains {
            return match value {
                FieldValue::Text(t) => Ok(FieldValue::Text(t)),
                other => Err(SchemaError::WrongType {
                    object: object.to_string(),
                    field: field.to_string(),
                    expected: "text (one list item)",
                    got: describe(&other),
                }),
            };
        }
        self.coerce(object, field, value)
    }

    /// Checks and converts every field of a write.
    pub fn coerce_all(
        &self,
        object: &str,
        fields: BTreeMap<String, FieldValue>,
    ) -> Result<BTreeMap<String, FieldValue>, SchemaError> {
        self.object(object)?;
        fields
            .into_iter()
            .map(|(name, value)| {
                let value = self.coerce(object, &name, value)?;
                Ok((name, value))
            })
            .collect()
    }
}

fn describe_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(_) => "a list".into(),
        serde_json::Value::String(_) => "text".into(),
        serde_json::Value::Number(_) => "a number".into(),
        serde_json::Value::Bool(_) => "true or false".into(),
        serde_json::Value::Null => "nothing".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

fn describe(v: &FieldValue) -> String {
    match v {
        FieldValue::Null => "null".into(),
        FieldValue::Boolean(b) => format!("boolean {b}"),
        FieldValue::Integer(n) => format!("integer {n}"),
        FieldValue::Number(n) => format!("number {n}"),
        FieldValue::Text(t) if t.len() > 40 => {
            format!("text \"{}…\"", &t[..t.floor_char_boundary(40)])
        }
        FieldValue::Text(t) => format!("text \"{t}\""),
        FieldValue::TextList(_) => "a list".into(),
        FieldValue::Timestamp { .. } => "a timestamp".into(),
    }
}

/// Parses RFC 3339 (`2026-11-21T10:00:00Z`) or a date (`2026-11-21`, midnight UTC) into
/// milliseconds since the Unix epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_objects_fields_and_types_are_named() {
        let s = Schema::standard();
        assert_eq!(
            s.coerce("widget", "x", FieldValue::Null)
                .unwrap_err()
                .to_string(),
            "unknown object `widget`"
        );
        assert_eq!(
            s.coerce("lead", "ssn", FieldValue::Null)
                .unwrap_err()
                .to_string(),
            "unknown field `ssn` on `lead`"
        );
        let err = s
            .coerce("lead", "employees", FieldValue::Text("many".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`lead.employees` is an integer field; got text \"many\""
        );
    }

    #[test]
    fn values_are_coerced_where_the_intent_is_clear() {
        let s = Schema::standard();
        assert_eq!(
            s.coerce("lead", "employees", FieldValue::Text(" 42 ".into())),
            Ok(FieldValue::Integer(42))
        );
        assert_eq!(
            s.coerce("opportunity", "amount", FieldValue::Integer(5)),
            Ok(FieldValue::Number(5.0))
        );
        assert_eq!(
            s.coerce(
                "account",
                "renewal_date",
                FieldValue::Text("1970-01-02".into())
            ),
            Ok(FieldValue::Timestamp {
                timestamp: 86_400_000
            })
        );
        assert_eq!(
            s.coerce("lead", "tags", FieldValue::Text("a; b".into())),
            Ok(FieldValue::TextList(vec!["a".into(), "b".into()]))
        );
        assert!(
            s.coerce("opportunity", "amount", FieldValue::Text("NaN".into()))
                .is_err()
        );
        assert!(s.is_indexed("lead", "last_activity_at"));
        assert!(!s.is_indexed("lead", "name"));
    }

    #[test]
    fn custom_objects_extend_the_schema() {
        let mut s = Schema::standard();
        let custom: BTreeMap<String, BTreeMap<String, FieldDef>> = toml::from_str(
            "[subscription]\nplan = { type = \"text\", indexed = true }\nseats = { type = \"integer\" }\n[lead]\nregion = { type = \"text\" }\n",
        )
        .unwrap();
        s.extend(&custom).unwrap();
        assert!(s.object("subscription").unwrap().custom);
        assert!(s.is_indexed("subscription", "plan"));
        assert!(s.field("lead", "region").is_ok());
        let clash: BTreeMap<String, BTreeMap<String, FieldDef>> =
            toml::from_str("[lead]\nemployees = { type = \"text\" }\n").unwrap();
        assert!(s.extend(&clash).is_err());
    }
}
