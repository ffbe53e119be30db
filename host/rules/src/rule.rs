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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Relative {
    /// Days from now (may be negative).
    #[serde(default)]
    pub in_days: Option<i32>,
    /// Hours from now (may be negative).
    #[serde(default)]
    pub in_hours: Option<i32>,
    /// Counted from this point in time (a merge field such as `{{account.renewal_date}}`)
    /// instead of from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Each in turn (the position is kept in the worker's memory, per rule).
    RoundRobin,
    /// By the value of a field (`field`), looked up in `territories`.
    Territory,
    /// The one owning the fewest records of the object that match `open` (all of them
    /// when absent), among the first thousand; none at `capacity` or more.
    Capacity,
    /// By score: the first of `to` when `field` is at least `threshold`, else the second.
    Score,
}

/// Which records a capacity assignment counts: those whose text `field` equals `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Open {
    /// The field.
    pub field: String,
    /// The value of an open record.
    pub value: String,
}

/// What a `sequence` step does with the triggering record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SequenceOp {
    /// Enrol it at the first step (once: an active enrollment is kept).
    Add,
    /// End its active enrollment.
    Remove,
    /// Move its active enrollment to the next step.
    Advance,
}

/// The object a sequence enrollment is kept as, and its fields.
pub const ENROLLMENT: &str = "sequence_enrollment";

/// One step of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Create a record; the output is its `id`.
    Create {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
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
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
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
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
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
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
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
        /// Capacity: which records count as open (`{ field = "status", value = "open" }`).
        #[serde(default)]
        open: Option<Open>,
        /// Score: the score from which the first of `to` is chosen.
        #[serde(default)]
        threshold: Option<f64>,
    },
    /// Record an activity on the triggering record; the output is its `id`.
    LogActivity {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
        /// What happened (a template).
        subject: String,
        /// The activity's type (`call`, `email`, `note`, ...).
        #[serde(default)]
        kind: Option<String>,
    },
    /// Put the triggering record in a sequence, take it out, or move it to the next step
    /// (kept as a `sequence_enrollment` record); the output is the enrollment's `id`.
    Sequence {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
        /// `add`, `remove` or `advance`.
        op: SequenceOp,
        /// The sequence's name.
        sequence: String,
    },
    /// Ask a person to approve the steps after this one: their actions are held for
    /// approval (the host holds them; the rule goes on with held receipts). The output is
    /// `requested`.
    RequestApproval {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
        /// What the reviewer is told.
        reason: String,
        /// Who decides (principals or `team:` queues); the domain's reviewers when empty.
        #[serde(default)]
        reviewers: Vec<String>,
    },
    /// Emit a signal other workers may be triggered by.
    Emit {
        /// The name later steps refer to the output by.
        #[serde(default)]
        id: Option<String>,
        /// Run the step only when this condition holds (the host's condition language,
        /// on the triggering record and the event's payload; the host evaluates it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<serde_json::Value>,
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
            | Step::Sequence { id, .. }
            | Step::RequestApproval { id, .. }
            | Step::Emit { id, .. } => id.as_deref(),
        }
    }

    /// The step's own condition, as written, if it has one.
    pub fn when(&self) -> Option<&serde_json::Value> {
        match self {
            Step::Create { when, .. }
            | Step::Update { when, .. }
            | Step::Notify { when, .. }
            | Step::Assign { when, .. }
            | Step::LogActivity { when, .. }
            | Step::Sequence { when, .. }
            | Step::RequestApproval { when, .. }
            | Step::Emit { when, .. } => when.as_ref(),
        }
    }

    /// Where the step is, for messages: `step 2 (create `task`)` (`number` counts from 1).
    pub fn place(&self, number: usize) -> String {
        match self.id() {
            Some(id) => format!("step {number} ({} `{id}`)", self.action()),
            None => format!("step {number} ({})", self.action()),
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
            Step::Sequence { .. } => "sequence",
            Step::RequestApproval { .. } => "request-approval",
            Step::Emit { .. } => "emit",
        }
    }

    /// What its output holds, for `{{steps.<id>.<name>}}`.
    pub fn outputs(&self) -> &'static [&'static str] {
        match self {
            Step::Create { .. } | Step::LogActivity { .. } | Step::Sequence { .. } => &["id"],
            Step::RequestApproval { .. } => &["requested"],
            Step::Update { .. } => &["updated"],
            Step::Notify { .. } => &["sent"],
            Step::Assign { .. } => &["owner"],
            Step::Emit { .. } => &["topic"],
        }
    }
}

/// The chain a rules worker runs: the steps, and the object of the triggering record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
                in_hours: None,
                from: None,
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
