//! The steps of a rule: what the rules worker does, in order, once the host has found the
//! rule's trigger and conditions met. The host checks them against the schema and the
//! grant when the rule set is saved (and compiles the chain into the installation's
//! settings); the worker reads the same structures back and runs them.
//!
//! ```toml
//! [[steps]]
//! id = "owner"
//! action = "assign"
//! strategy = "round-robin"
//! to = ["ann", "bob"]
//!
//! [[steps]]
//! id = "task"
//! action = "create"
//! object = "task"
//! fields = { subject = "Call {{lead.name}}", due_date = { in-days = 2 }, assignee = "{{steps.owner.owner}}" }
//!
//! [[steps]]
//! action = "notify"
//! channel = "slack"
//! to = ["{{steps.owner.owner}}"]
//! message = "New enterprise lead {{lead.name}} from {{lead.company}}"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A value a step writes: a literal, a template (text with `{{...}}`), or a point in
/// time relative to when the step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepValue {
    /// `{ in-days = 2 }` (or `in-hours`): now plus that much, as a timestamp.
    Relative(Relative),
    /// Text; with `{{...}}` a template.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A decimal number.
    Number(f64),
    /// True or false.
    Boolean(bool),
    /// A list of texts (each may be a template).
    List(Vec<String>),
}

/// A point in time relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Relative {
    /// Days from now (may be negative).
    #[serde(default)]
    pub in_days: Option<i32>,
    /// Hours from now (may be negative).
    #[serde(default)]
    pub in_hours: Option<i32>,
}

impl Relative {
    /// The offset in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        i64::from(self.in_days.unwrap_or(0)) * 86_400_000
            + i64::from(self.in_hours.unwrap_or(0)) * 3_600_000
    }
}

/// How an `assign` step chooses the new owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Each in turn (the position is kept in the worker's memory, per rule).
    RoundRobin,
    /// By the value of a field (`field`), looked up in `territories`.
    Territory,
    /// The one with the fewest open records of the object (at most `capacity`).
    Capacity,
    /// By score: the first of `to` when `field` is at least `threshold`, else the second.
    Score,
}

/// One step of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Create a record; the output is its `id`.
    Create {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// The object type.
        object: String,
        /// Its fields.
        fields: BTreeMap<String, StepValue>,
    },
    /// Change fields of the triggering record (or of `record`, `object/id`).
    Update {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// The record, `object/id` (a template); the triggering record when absent.
        #[serde(default)]
        record: Option<String>,
        /// Fields to set.
        #[serde(default)]
        set: BTreeMap<String, StepValue>,
        /// Number fields to add to.
        #[serde(default)]
        increment: BTreeMap<String, f64>,
        /// Multi-select fields to add an option to.
        #[serde(default)]
        append: BTreeMap<String, String>,
        /// Fields to empty.
        #[serde(default)]
        clear: Vec<String>,
    },
    /// Send a notification.
    Notify {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// `in-app`, `email`, `sms`, `slack` or `teams`.
        channel: String,
        /// The recipients (templates).
        to: Vec<String>,
        /// The subject (a template).
        #[serde(default)]
        subject: Option<String>,
        /// The message (a template).
        message: String,
    },
    /// Hand the triggering record to a new owner; the output is `owner`.
    Assign {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// How the owner is chosen.
        strategy: Strategy,
        /// The principals to choose from.
        #[serde(default)]
        to: Vec<String>,
        /// The field a territory or score is read from.
        #[serde(default)]
        field: Option<String>,
        /// Territory: field value → principal.
        #[serde(default)]
        territories: BTreeMap<String, String>,
        /// Capacity: the most open records one owner may hold.
        #[serde(default)]
        capacity: Option<u32>,
        /// Score: the score from which the first of `to` is chosen.
        #[serde(default)]
        threshold: Option<f64>,
    },
    /// Record an activity on the triggering record; the output is its `id`.
    LogActivity {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// What happened (a template).
        subject: String,
        /// The activity's type (`call`, `email`, `note`, ...).
        #[serde(default)]
        kind: Option<String>,
    },
    /// Emit a signal other workers may be triggered by.
    Emit {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// The topic.
        topic: String,
        /// The payload's fields (templates).
        #[serde(default)]
        payload: BTreeMap<String, StepValue>,
    },
}

impl Step {
    /// The name later steps refer to its output by, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Step::Create { id, .. }
            | Step::Update { id, .. }
            | Step::Notify { id, .. }
            | Step::Assign { id, .. }
            | Step::LogActivity { id, .. }
            | Step::Emit { id, .. } => id.as_deref(),
        }
    }

    /// The action's name, as written.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Update { .. } => "update",
            Step::Notify { .. } => "notify",
            Step::Assign { .. } => "assign",
            Step::LogActivity { .. } => "log-activity",
            Step::Emit { .. } => "emit",
        }
    }

    /// What its output holds, for `{{steps.<id>.<name>}}`.
    pub fn outputs(&self) -> &'static [&'static str] {
        match self {
            Step::Create { .. } | Step::LogActivity { .. } => &["id"],
            Step::Update { .. } => &["updated"],
            Step::Notify { .. } => &["sent"],
            Step::Assign { .. } => &["owner"],
            Step::Emit { .. } => &["topic"],
        }
    }
}

/// The chain a rules worker runs: the steps, and the object of the triggering record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Chain {
    /// The rule's name (keys what it keeps between runs).
    pub rule: String,
    /// The triggering record's object, if the trigger is about one.
    #[serde(default)]
    pub object: Option<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        steps: Vec<Step>,
    }

    #[test]
    fn steps_read_from_a_rule_file() {
        let file: File = toml::from_str(
            r#"
            [[steps]]
            id = "owner"
            action = "assign"
            strategy = "round-robin"
            to = ["ann", "bob"]

            [[steps]]
            id = "task"
            action = "create"
            object = "task"
            fields = { subject = "Call {{lead.name}}", due_date = { in-days = 2 }, priority = 2 }

            [[steps]]
            action = "update"
            set = { status = "routed" }
            increment = { touches = 1 }
            append = { tags = "enterprise" }
            clear = ["next_step"]

            [[steps]]
            action = "notify"
            channel = "slack"
            to = ["{{steps.owner.owner}}"]
            message = "New lead {{lead.name}}"
            "#,
        )
        .unwrap();
        assert_eq!(file.steps.len(), 4);
        assert_eq!(file.steps[0].id(), Some("owner"));
        assert_eq!(file.steps[0].outputs(), ["owner"]);
        let Step::Create { fields, .. } = &file.steps[1] else {
            panic!("{:?}", file.steps[1]);
        };
        assert_eq!(
            fields["due_date"],
            StepValue::Relative(Relative {
                in_days: Some(2),
                in_hours: None
            })
        );
        assert_eq!(fields["priority"], StepValue::Integer(2));
        assert_eq!(file.steps[3].action(), "notify");
        // The chain round-trips through the settings (JSON) unchanged.
        let chain = Chain {
            rule: "routing".into(),
            object: Some("lead".into()),
            steps: file.steps,
        };
        let json = serde_json::to_string(&chain).unwrap();
        assert_eq!(serde_json::from_str::<Chain>(&json).unwrap(), chain);
    }

    #[test]
    fn a_misspelt_step_is_refused() {
        let err = toml::from_str::<File>("[[steps]]\naction = \"nofity\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `nofity`"), "{err}");
        let err = toml::from_str::<File>(
            "[[steps]]\naction = \"notify\"\nchannel = \"slack\"\nto = []\nmesage = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mesage"), "{err}");
    }
}
