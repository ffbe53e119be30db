//! What a checked rule is granted: the scopes computed from what it touches, and the
//! review its installation starts with.

use std::collections::{BTreeMap, BTreeSet};

use roster_rules::Step;

use super::Checked;
use crate::governance::review::{ReviewSettings, Rule as ReviewRule};
use crate::scope::{MemoryScope, NotifyScope, ObjectScope, RecordsScope, Scopes, SignalsScope};

/// The actions a step takes, as review rules name them.
pub(super) fn step_actions(step: &Step, object: Option<&str>) -> Vec<(String, Option<String>)> {
    let record = |op: &str, o: Option<&str>| (format!("records.{op}"), o.map(str::to_string));
    match step {
        Step::Create { object: o, .. } => vec![record("create", Some(o))],
        Step::Update { record: target, .. } => {
            let o = target
                .as_deref()
                .and_then(|r| r.split_once('/').map(|(o, _)| o))
                .or(object);
            vec![record("update", o)]
        }
        Step::Assign { .. } => vec![record("update", object)],
        Step::LogActivity { .. } => vec![record("create", Some("activity"))],
        Step::Sequence { .. } => vec![
            record("create", Some(roster_rules::ENROLLMENT)),
            record("update", Some(roster_rules::ENROLLMENT)),
        ],
        Step::Notify { .. } => vec![("notify.send".to_string(), None)],
        Step::Emit { .. } => vec![("signals.emit".to_string(), None)],
        Step::RequestApproval { .. } => Vec::new(),
    }
}

/// The memory a rule keeps (its round-robin positions).
pub const MEMORY_QUOTA: u64 = 16 * 1024;

impl Checked {
    /// The grant the rule needs, and nothing more: the objects and fields it reads and
    /// writes, creating only what it creates, the channels it sends on (to the recipients
    /// it names, or to anyone when a recipient is a merge field), the topics it emits, and
    /// a little memory. Capabilities the rule does not use are granted empty, so every
    /// call to them is denied.
    pub fn scopes(&self) -> Scopes {
        let mut objects = BTreeMap::new();
        let names: BTreeSet<&String> = self
            .reads
            .keys()
            .chain(self.writes.keys())
            .chain(self.creates.iter())
            .collect();
        for object in names {
            if self.reads.get(object).is_none_or(BTreeSet::is_empty)
                && self.writes.get(object).is_none_or(BTreeSet::is_empty)
                && !self.creates.contains(object)
            {
                continue;
            }
            let list = |m: &BTreeMap<String, BTreeSet<String>>| {
                m.get(object)
                    .map(|f| f.iter().cloned().collect())
                    .unwrap_or_default()
            };
            objects.insert(
                object.clone(),
                ObjectScope {
                    read: list(&self.reads),
                    write: list(&self.writes),
                    create: self.creates.contains(object),
                    delete: false,
                },
            );
        }
        Scopes {
            records: Some(RecordsScope { objects }),
            notify: Some(NotifyScope {
                channels: self.channels.iter().copied().collect(),
                recipients: match &self.recipients {
                    Some(named) => named.iter().cloned().collect(),
                    None => vec!["*".into()],
                },
                max_recipients: 20,
            }),
            memory: Some(MemoryScope {
                quota_bytes: MEMORY_QUOTA,
            }),
            signals: Some(SignalsScope {
                topics: self.topics.iter().cloned().collect(),
            }),
            ..Scopes::default()
        }
    }

    /// The `[review]` section the rule's installation starts with: its trust stage
    /// (`[rule] stage`, supervised unless it says otherwise) and, when it has a
    /// `request-approval` step, that step's holds as review rules.
    pub fn review(&self) -> ReviewSettings {
        let approval = self.approval.as_ref();
        ReviewSettings {
            stage: self.stage,
            confidence_threshold: 0.8,
            rules: approval
                .iter()
                .flat_map(|a| {
                    a.holds.iter().map(|(action, object)| ReviewRule {
                        action: Some(action.clone()),
                        object: object.clone(),
                        reason: Some(a.reason.clone()),
                        ..ReviewRule::default()
                    })
                })
                .collect(),
            reviewers: approval.map(|a| a.reviewers.clone()).unwrap_or_default(),
        }
    }
}
