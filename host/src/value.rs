//! Field values, records and events: the data every layer of the host speaks of, from the
//! store to the capabilities and the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value of one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldValue {
    /// No value.
    Null,
    /// True or false.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// A decimal number.
    Number(f64),
    /// Text.
    Text(String),
    /// A multi-select value.
    TextList(Vec<String>),
    /// A point in time: `{"timestamp": <ms since the Unix epoch>}` in JSON.
    Timestamp {
        /// Milliseconds since the Unix epoch (UTC).
        timestamp: i64,
    },
}

/// Any of the shapes a field value takes (an integer is also a number, so `anyOf`).
impl utoipa::PartialSchema for FieldValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
        let of = |t: Type| ObjectBuilder::new().schema_type(t);
        AnyOfBuilder::new()
            .item(of(Type::Null))
            .item(of(Type::Boolean))
            .item(of(Type::Number))
            .item(of(Type::String))
            .item(ArrayBuilder::new().items(of(Type::String)))
            .item(
                ObjectBuilder::new()
                    .property("timestamp", of(Type::Integer))
                    .required("timestamp"),
            )
            .description(Some(
                "A field's value: null, a boolean, a number, text, a list of texts, or a point in \
                 time as {\"timestamp\": <ms since the Unix epoch>}.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for FieldValue {}

impl FieldValue {
    /// A JSON value as a field value: text, whole and decimal numbers, true or false, a
    /// list of texts, `{"timestamp": ms}`; anything else (objects, mixed lists) as its
    /// JSON text.
    pub fn from_json(v: &serde_json::Value) -> FieldValue {
        use serde_json::Value;
        match v {
            Value::Null => FieldValue::Null,
            Value::Bool(b) => FieldValue::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => FieldValue::Integer(i),
                None => n.as_f64().map_or(FieldValue::Null, FieldValue::Number),
            },
            Value::String(t) => FieldValue::Text(t.clone()),
            Value::Array(items) if items.iter().all(Value::is_string) => FieldValue::TextList(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
            ),
            Value::Object(o) if o.len() == 1 && o.get("timestamp").is_some_and(Value::is_i64) => {
                FieldValue::Timestamp {
                    timestamp: o["timestamp"].as_i64().unwrap_or_default(),
                }
            }
            other => FieldValue::Text(other.to_string()),
        }
    }

    /// Whether the value counts as empty (null, empty text, empty list).
    pub fn is_empty(&self) -> bool {
        match self {
            FieldValue::Null => true,
            FieldValue::Text(t) => t.is_empty(),
            FieldValue::TextList(l) => l.is_empty(),
            _ => false,
        }
    }

    /// A numeric view for comparisons (integers, numbers and timestamps).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Integer(n) => Some(*n as f64),
            FieldValue::Number(n) => Some(*n),
            FieldValue::Timestamp { timestamp } => Some(*timestamp as f64),
            _ => None,
        }
    }

    /// The number of bytes this value carries (for boundary accounting).
    pub fn size(&self) -> u64 {
        match self {
            FieldValue::Text(t) => t.len() as u64,
            FieldValue::TextList(l) => l.iter().map(|s| s.len() as u64 + 4).sum(),
            _ => 8,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    /// The object type.
    pub object: String,
    /// The identifier.
    pub id: String,
    /// The owning principal.
    #[serde(default)]
    pub owner: Option<String>,
    /// The fields.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
}

/// An event to run a worker on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventInput {
    /// The event id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// What happened.
    pub trigger: TriggerInput,
    /// The object type of the record the event is about.
    #[serde(default)]
    pub object: Option<String>,
    /// The id of the record the event is about (read from the store).
    #[serde(default)]
    pub record_id: Option<String>,
    /// Extra data (for example a webhook body).
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// When it happened, in milliseconds since the Unix epoch; now when absent.
    #[serde(default)]
    pub occurred_at: Option<i64>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TriggerInput {
    /// A record was created.
    RecordCreated,
    /// A record was updated.
    RecordUpdated {
        /// The changed fields.
        #[serde(default)]
        changes: Vec<ChangeInput>,
    },
    /// A record was deleted.
    RecordDeleted,
    /// A schedule fired.
    Schedule {
        /// The schedule's name.
        name: String,
    },
    /// A named business event.
    Named {
        /// The event's name.
        name: String,
    },
    /// A signal from another worker.
    Signal {
        /// The topic.
        topic: String,
    },
    /// A threshold was crossed.
    Threshold {
        /// The threshold's name.
        name: String,
    },
    /// A person ran the worker by hand.
    Manual,
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    /// The field.
    pub field: String,
    /// Its old value.
    pub old: FieldValue,
    /// Its new value.
    pub new: FieldValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_values_keep_their_types() {
        let v: BTreeMap<String, FieldValue> = serde_json::from_str(
            r#"{"a": 1, "b": 1.5, "c": "x", "d": ["p"], "e": {"timestamp": 5}, "f": null, "g": true}"#,
        )
        .unwrap();
        assert_eq!(v["a"], FieldValue::Integer(1));
        assert_eq!(v["b"], FieldValue::Number(1.5));
        assert_eq!(v["e"], FieldValue::Timestamp { timestamp: 5 });
        assert_eq!(v["f"], FieldValue::Null);
        assert_eq!(v["g"], FieldValue::Boolean(true));
    }
}
