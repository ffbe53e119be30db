//! Rule sets made without code: every saved version of each rule (its file as written)
//! and which version is deployed, with the versions deployed before it for rollback.

use serde::{Deserialize, Serialize};

use super::log::GovernanceEvent;
use super::versions::read;
use super::{Store, StoreError, append_governance_in, decode};
use super::{set_state_in, state_in};

const NAMES: &str = "rules";

fn rule_key(name: &str) -> String {
    format!("rule\u{1f}{name}")
}

/// One saved version of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RuleVersion {
    /// Its number, from 1.
    pub version: u32,
    /// The rule file as saved.
    pub text: String,
    /// `sha256:<hex>` of the text.
    pub digest: String,
    /// When it was saved.
    pub saved_at: i64,
    /// Who saved it.
    pub by: String,
}

/// A rule: its versions and what is deployed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RuleSet {
    /// The rule's name (its installation's name).
    pub name: String,
    /// Every saved version, oldest first.
    pub versions: Vec<RuleVersion>,
    /// The version running, if one is deployed.
    pub deployed: Option<u32>,
    /// The versions deployed before it, most recent last (a rollback returns to the last).
    pub history: Vec<u32>,
    /// The latest dry run of each version that ran in one.
    #[serde(default)]
    pub tests: Vec<RuleTest>,
}

/// The totals of a version's latest dry run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RuleTest {
    /// The version.
    pub version: u32,
    /// When it ran.
    pub at: i64,
    /// Events in the dataset.
    pub events: usize,
    /// Events the rule acted on.
    pub ran: usize,
    /// Events its conditions skipped.
    pub skipped: usize,
    /// Runs that failed.
    pub failed: usize,
    /// Actions it proposed.
    pub proposed: usize,
}

impl RuleSet {
    /// A version by number.
    pub fn version(&self, n: u32) -> Option<&RuleVersion> {
        self.versions.iter().find(|v| v.version == n)
    }

    /// The newest version.
    pub fn latest(&self) -> Option<&RuleVersion> {
        self.versions.last()
    }
}

impl Store {
    /// A rule, if one was saved under this name.
    pub fn rule(&self, name: &str) -> Result<Option<RuleSet>, StoreError> {
        read(self, &rule_key(name))
    }

    /// Every saved rule, by name.
    pub fn rules(&self) -> Result<Vec<RuleSet>, StoreError> {
        let names: Vec<String> = read(self, NAMES)?.unwrap_or_default();
        let mut out = Vec::new();
        for name in names {
            if let Some(rule) = self.rule(&name)? {
                out.push(rule);
            }
        }
        Ok(out)
    }

    /// Saves a version of a rule unless it is the same text as the newest one; returns the
    /// rule and whether a version was added. The save is an audit entry.
    pub fn save_rule(
        &self,
        name: &str,
        version: RuleVersion,
        event: GovernanceEvent,
    ) -> Result<(RuleSet, bool), StoreError> {
        let (key, name, store) = (rule_key(name), name.to_string(), self.clone());
        self.write(move |tx| {
            let mut rule: RuleSet = match state_in(tx, &key)? {
                Some(text) => decode(&key, text.as_bytes())?,
                None => {
                    let mut names: Vec<String> = match state_in(tx, NAMES)? {
                        Some(text) => decode(NAMES, text.as_bytes())?,
                        None => Vec::new(),
                    };
                    names.push(name.clone());
                    names.sort();
                    names.dedup();
                    set_state_in(
                        tx,
                        NAMES,
                        &serde_json::to_string(&names).unwrap_or_default(),
                    )?;
                    RuleSet {
                        name: name.clone(),
                        ..RuleSet::default()
                    }
                }
            };
            if rule.latest().is_some_and(|v| v.digest == version.digest) {
                return Ok((rule, false));
            }
            let mut version = version.clone();
            version.version = rule.latest().map_or(1, |v| v.version.saturating_add(1));
            rule.versions.push(version);
            set_state_in(tx, &key, &serde_json::to_string(&rule).unwrap_or_default())?;
            append_governance_in(tx, &store, &event)?;
            Ok((rule, true))
        })
    }

    /// The latest dry run of a version, if it ran in one.
    pub fn rule_test(&self, name: &str, version: u32) -> Result<Option<RuleTest>, StoreError> {
        Ok(self
            .rule(name)?
            .and_then(|r| r.tests.into_iter().find(|t| t.version == version)))
    }

    /// Records a version's dry run (replacing its previous one) and its audit entry.
    pub fn record_rule_test(
        &self,
        name: &str,
        test: RuleTest,
        event: GovernanceEvent,
    ) -> Result<(), StoreError> {
        self.change_rule(name, event, move |rule| {
            rule.tests.retain(|t| t.version != test.version);
            rule.tests.push(test.clone());
        })
        .map(|_| ())
    }

    /// Changes a saved rule and records the change's audit entry, in one transaction.
    fn change_rule(
        &self,
        name: &str,
        event: GovernanceEvent,
        change: impl Fn(&mut RuleSet) + Send + 'static,
    ) -> Result<RuleSet, StoreError> {
        let (key, store) = (rule_key(name), self.clone());
        self.write(move |tx| {
            let mut rule: RuleSet = match state_in(tx, &key)? {
                Some(text) => decode(&key, text.as_bytes())?,
                None => {
                    return Err(StoreError::Invalid(
                        "no rule is saved under this name".into(),
                    ));
                }
            };
            change(&mut rule);
            set_state_in(tx, &key, &serde_json::to_string(&rule).unwrap_or_default())?;
            append_governance_in(tx, &store, &event)?;
            Ok(rule)
        })
    }

    /// Records which version of a rule runs now (a deploy pushes the one before on the
    /// history; a rollback pops it), with its audit entry, in one transaction.
    pub fn set_rule_deployed(
        &self,
        name: &str,
        version: u32,
        rollback: bool,
        event: GovernanceEvent,
    ) -> Result<RuleSet, StoreError> {
        self.change_rule(name, event, move |rule| {
            if rollback {
                rule.history.pop();
            } else if let Some(before) = rule.deployed.filter(|b| *b != version) {
                rule.history.push(before);
            }
            rule.deployed = Some(version);
        })
    }
}
