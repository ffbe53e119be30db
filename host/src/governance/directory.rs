//! Principals — people and service accounts — with their teams, roles and what records
//! they may see. A worker runs as a principal and sees exactly what that principal sees.
//!
//! Visibility, per principal:
//! - `own`: records it owns;
//! - `team` (the default): records owned by itself or by anyone sharing one of its teams;
//! - `all`: every record.
//!
//! With no principals configured (single-user development, `roster run`), the directory is
//! *open*: every principal sees every record.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::value::Record;

/// What a principal may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sees {
    /// Records it owns.
    Own,
    /// Records owned by itself or its teammates.
    #[default]
    Team,
    /// Every record.
    All,
}

/// A principal as configured in `roster.toml` (`[[principals]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Principal {
    /// The principal's id (as used in record owners).
    pub id: String,
    /// Whether it is a person or a service account.
    #[serde(default)]
    pub kind: PrincipalKind,
    /// Teams it belongs to.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Roles it holds.
    #[serde(default)]
    pub roles: Vec<String>,
    /// What it may see.
    #[serde(default)]
    pub sees: Sees,
    /// An email address for notifications, if any.
    #[serde(default)]
    pub email: Option<String>,
}

/// A person or a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// A person.
    #[default]
    User,
    /// A service account (workers typically run as one).
    Service,
}

/// The configured principals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    principals: BTreeMap<String, Principal>,
}

impl Directory {
    /// A directory with no principals: everyone sees everything.
    pub fn open() -> Directory {
        Directory::default()
    }

    /// A directory of `principals`; fails on a duplicate id.
    pub fn new(principals: Vec<Principal>) -> Result<Directory, String> {
        let mut map = BTreeMap::new();
        for p in principals {
            if p.id.trim().is_empty() {
                return Err("a principal has an empty id".into());
            }
            let id = p.id.clone();
            if map.insert(id.clone(), p).is_some() {
                return Err(format!("principal `{id}` is listed twice"));
            }
        }
        Ok(Directory { principals: map })
    }

    /// Whether no principals are configured.
    pub fn is_open(&self) -> bool {
        self.principals.is_empty()
    }

    /// Every configured principal, by id.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.principals.values()
    }

    /// A principal, if configured.
    pub fn get(&self, id: &str) -> Option<&Principal> {
        self.principals.get(id)
    }

    /// Whether `id` is a known principal (always true for an open directory).
    pub fn knows(&self, id: &str) -> bool {
        self.is_open() || self.principals.contains_key(id)
    }

    /// The owners whose records `principal` may see, or `None` for every record.
    pub fn visible_owners(&self, principal: &str) -> Option<Vec<String>> {
        if self.is_open() {
            return None;
        }
        let Some(p) = self.principals.get(principal) else {
            // An unknown principal sees nothing but its own records.
            return Some(vec![principal.to_string()]);
        };
        match p.sees {
            Sees::All => None,
            Sees::Own => Some(vec![p.id.clone()]),
            Sees::Team => {
                let mut owners: BTreeSet<String> = BTreeSet::from([p.id.clone()]);
                for other in self.principals.values() {
                    if other.teams.iter().any(|t| p.teams.contains(t)) {
                        owners.insert(other.id.clone());
                    }
                }
                Some(owners.into_iter().collect())
            }
        }
    }

    /// Whether `principal` may see `record`.
    pub fn can_see(&self, principal: &str, record: &Record) -> bool {
        match self.visible_owners(principal) {
            None => true,
            Some(owners) => record.owner.as_ref().is_some_and(|o| owners.contains(o)),
        }
    }

    /// Whether `principal` belongs to `team`.
    pub fn in_team(&self, principal: &str, team: &str) -> bool {
        self.principals
            .get(principal)
            .is_some_and(|p| p.teams.iter().any(|t| t == team))
    }

    /// Whether any principal belongs to `team` (always true for an open directory).
    pub fn has_team(&self, team: &str) -> bool {
        self.is_open()
            || self
                .principals
                .values()
                .any(|p| p.teams.iter().any(|t| t == team))
    }

    /// Where to email `who`: its configured address, or `who` itself when it is one.
    pub fn email_of(&self, who: &str) -> Option<String> {
        match self.principals.get(who).and_then(|p| p.email.clone()) {
            Some(email) => Some(email),
            None if who.contains('@') => Some(who.to_string()),
            None => None,
        }
    }

    /// Whether `principal` holds `role`.
    pub fn has_role(&self, principal: &str, role: &str) -> bool {
        self.principals
            .get(principal)
            .is_some_and(|p| p.roles.iter().any(|r| r == role))
    }

    /// Every principal holding `role`.
    pub fn with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Principal> + 'a {
        self.principals
            .values()
            .filter(move |p| p.roles.iter().any(|r| r == role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, teams: &[&str], sees: Sees) -> Principal {
        Principal {
            id: id.into(),
            kind: PrincipalKind::User,
            teams: teams.iter().map(|t| t.to_string()).collect(),
            roles: vec!["ae".into()],
            sees,
            email: None,
        }
    }

    fn owned(owner: &str) -> Record {
        Record {
            object: "lead".into(),
            id: "x".into(),
            owner: Some(owner.into()),
            fields: Default::default(),
        }
    }

    #[test]
    fn visibility_follows_own_team_and_all() {
        let d = Directory::new(vec![
            p("ann", &["emea"], Sees::Team),
            p("bob", &["emea"], Sees::Own),
            p("cat", &["apac"], Sees::Team),
            p("ops", &[], Sees::All),
        ])
        .unwrap();
        assert!(d.can_see("ann", &owned("bob")));
        assert!(!d.can_see("ann", &owned("cat")));
        assert!(!d.can_see("bob", &owned("ann")));
        assert!(d.can_see("bob", &owned("bob")));
        assert!(d.can_see("ops", &owned("cat")));
        assert!(!d.can_see("stranger", &owned("ann")));
        assert!(d.in_team("ann", "emea") && d.has_role("ann", "ae"));
        assert!(Directory::open().can_see("anyone", &owned("ann")));
        assert!(Directory::new(vec![p("a", &[], Sees::All), p("a", &[], Sees::All)]).is_err());
    }
}
