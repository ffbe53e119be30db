//! Side effects as a held action keeps them: what a worker proposed, what a reviewer may
//! change of it, and what it says (for learning from the decision).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::FieldValue;

/// A side effect a worker proposed, in a form the host can perform later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Effect {
    /// Create a record.
    RecordCreate {
        /// The object type.
        object: String,
        /// The id the host assigned.
        id: String,
        /// The owner (the worker's principal).
        owner: Option<String>,
        /// The fields.
        fields: BTreeMap<String, FieldValue>,
    },
    /// Change fields of a record.
    RecordUpdate {
        /// The object type.
        object: String,
        /// The record.
        id: String,
        /// The new values.
        fields: BTreeMap<String, FieldValue>,
    },
    /// Delete a record.
    RecordDelete {
        /// The object type.
        object: String,
        /// The record.
        id: String,
    },
    /// Send a notification.
    Notify {
        /// `email`, `sms`, `slack`, `teams` or `in-app`.
        channel: String,
        /// The recipients.
        recipients: Vec<String>,
        /// The subject.
        subject: Option<String>,
        /// The body.
        body: String,
    },
    /// Emit a signal.
    Signal {
        /// The topic.
        topic: String,
        /// The JSON payload.
        payload: String,
        /// The plugins its cause passed through, the emitter last (kept from the proposal;
        /// an edit cannot change it).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain: Vec<String>,
    },
}

impl Effect {
    /// `capability.operation`.
    pub fn action(&self) -> &'static str {
        match self {
            Effect::RecordCreate { .. } => "records.create",
            Effect::RecordUpdate { .. } => "records.update",
            Effect::RecordDelete { .. } => "records.delete",
            Effect::Notify { .. } => "notify.send",
            Effect::Signal { .. } => "signals.emit",
        }
    }

    /// Checks that `edited` only changes what a reviewer may change: the values of the
    /// fields the worker proposed, a notification's subject and body (and fewer of its
    /// recipients), a signal's payload. The target is fixed — the kind of action, the
    /// object, the record's id and owner, the channel, the topic and the signal's chain —
    /// because anything else would step outside what the worker's grant was checked
    /// against.
    pub fn check_edit(&self, edited: &Effect) -> Result<(), String> {
        match (self, edited) {
            (
                Effect::RecordCreate {
                    object,
                    id,
                    owner,
                    fields,
                },
                Effect::RecordCreate {
                    object: o2,
                    id: i2,
                    owner: w2,
                    fields: f2,
                },
            ) => {
                same_record(object, id, o2, i2)?;
                if owner != w2 {
                    return Err("an edit cannot change the record's owner".into());
                }
                only_proposed_fields(fields, f2)
            }
            (
                Effect::RecordUpdate { object, id, fields },
                Effect::RecordUpdate {
                    object: o2,
                    id: i2,
                    fields: f2,
                },
            ) => {
                same_record(object, id, o2, i2)?;
                only_proposed_fields(fields, f2)
            }
            (
                Effect::Notify {
                    channel,
                    recipients,
                    ..
                },
                Effect::Notify {
                    channel: c2,
                    recipients: r2,
                    ..
                },
            ) => {
                if channel != c2 {
                    return Err("an edit cannot change the channel".into());
                }
                if r2.is_empty() || r2.iter().any(|r| !recipients.contains(r)) {
                    return Err("an edit may only remove recipients".into());
                }
                Ok(())
            }
            (
                Effect::Signal { topic, chain, .. },
                Effect::Signal {
                    topic: t2,
                    payload,
                    chain: c2,
                },
            ) => {
                if topic != t2 {
                    return Err("an edit cannot change the topic".into());
                }
                if !c2.is_empty() && c2 != chain {
                    return Err("an edit cannot change the signal's chain".into());
                }
                serde_json::from_str::<serde_json::Value>(payload)
                    .map(|_| ())
                    .map_err(|e| format!("the payload is not JSON: {e}"))
            }
            (Effect::RecordDelete { .. }, _) => {
                Err("a deletion can be approved or rejected, not edited".into())
            }
            _ => Err(format!(
                "an edit must be the same kind of action ({})",
                self.action()
            )),
        }
    }

    /// The effect a reviewer's edit applies: the proposal's target with the edit's values.
    /// [`Effect::check_edit`] has accepted `edited`; this keeps every part a reviewer may
    /// not change from the proposal, so nothing of the target can come from the edit.
    pub fn with_edit(&self, edited: &Effect) -> Result<Effect, String> {
        self.check_edit(edited)?;
        let mut applied = self.clone();
        match (&mut applied, edited) {
            (
                Effect::RecordCreate { fields, .. } | Effect::RecordUpdate { fields, .. },
                Effect::RecordCreate { fields: f2, .. } | Effect::RecordUpdate { fields: f2, .. },
            ) => fields.clone_from(f2),
            (
                Effect::Notify {
                    recipients,
                    subject,
                    body,
                    ..
                },
                Effect::Notify {
                    recipients: r2,
                    subject: s2,
                    body: b2,
                    ..
                },
            ) => {
                recipients.clone_from(r2);
                subject.clone_from(s2);
                body.clone_from(b2);
            }
            (Effect::Signal { payload, .. }, Effect::Signal { payload: p2, .. }) => {
                payload.clone_from(p2);
            }
            _ => {}
        }
        Ok(applied)
    }
}

fn same_record(object: &str, id: &str, o2: &str, i2: &str) -> Result<(), String> {
    if object != o2 {
        return Err("an edit cannot change the object".into());
    }
    if id != i2 {
        return Err(format!(
            "an edit cannot change which record is written (`{object}/{id}`, not `{o2}/{i2}`)"
        ));
    }
    Ok(())
}

fn only_proposed_fields(
    proposed: &BTreeMap<String, FieldValue>,
    edited: &BTreeMap<String, FieldValue>,
) -> Result<(), String> {
    match edited.keys().find(|k| !proposed.contains_key(*k)) {
        Some(extra) => Err(format!(
            "field `{extra}` was not in the proposal; an edit changes proposed values only"
        )),
        None => Ok(()),
    }
}

/// Whether an effect carries `label`: a field value, recipient, subject or payload value
/// equal to it, or text containing it as a whole word (ASCII case ignored).
pub(crate) fn carries(effect: &Effect, label: &str) -> bool {
    fn in_value(v: &serde_json::Value, label: &str) -> bool {
        match v {
            serde_json::Value::String(s) => mentions(s, label),
            serde_json::Value::Array(items) => items.iter().any(|i| in_value(i, label)),
            serde_json::Value::Object(map) => map.values().any(|i| in_value(i, label)),
            _ => false,
        }
    }
    let value = match effect {
        // The target's identity is not what the worker decided.
        Effect::RecordCreate { fields, .. } | Effect::RecordUpdate { fields, .. } => {
            serde_json::to_value(fields).unwrap_or_default()
        }
        Effect::RecordDelete { .. } => return false,
        Effect::Notify { subject, body, .. } => serde_json::json!([subject, body]),
        Effect::Signal { payload, .. } => {
            serde_json::from_str(payload).unwrap_or(serde_json::Value::String(payload.clone()))
        }
    };
    in_value(&value, label)
}

/// Whether `text` is `label`, or contains it between non-word characters.
fn mentions(text: &str, label: &str) -> bool {
    let (text, label) = (text.to_ascii_lowercase(), label.to_ascii_lowercase());
    if label.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut from = 0;
    while let Some(i) = text[from..].find(&label) {
        let start = from + i;
        let end = start + label.len();
        if !word(text[..start].chars().next_back()) && !word(text[end..].chars().next()) {
            return true;
        }
        from = start + label.len().max(1);
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_found_as_whole_words_or_values() {
        assert!(mentions("Ticket T-1 looks like Billing.", "billing"));
        assert!(mentions("billing", "billing"));
        assert!(!mentions("rebilling is off", "billing"));
        assert!(!mentions("billings", "billing"));
        let effect = Effect::RecordUpdate {
            object: "ticket".into(),
            id: "billing".into(),
            fields: [("category".to_string(), FieldValue::Text("technical".into()))].into(),
        };
        assert!(carries(&effect, "technical"));
        assert!(
            !carries(&effect, "billing"),
            "the target id is not a decision"
        );
    }
}
