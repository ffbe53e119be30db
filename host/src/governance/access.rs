//! Who may do what: role-based access control decided by Cedar policies.
//!
//! Every operation of the HTTP API is a Cedar action (`Operation`) asked by an account
//! about a resource (`Resource`). The schema and the default policies are files an
//! auditor can read — `host/policies/roster.cedarschema` and `host/policies/roster.cedar`,
//! built into the binary — and `[access] policies = "DIR"` in `roster.toml` replaces them
//! with the files in `DIR`. The policies are validated against the schema when the host
//! starts; a policy that does not validate stops the start with the reason.
//!
//! Roles are granted to accounts as `role` (host-wide) or `role@domain` (scoped). A
//! host-wide role makes the account a member of `Roster::Role::"role"`; a scoped role puts
//! the domain into the account's `role_in` attribute. The policies compare those with the
//! resource's domain. Nothing in the host checks a role by name: it only asks the policies.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde::Serialize;

use crate::error::Error;
use crate::store::Account;

/// The default schema, as shipped.
pub const DEFAULT_SCHEMA: &str = include_str!("../../policies/roster.cedarschema");
/// The default policies, as shipped.
pub const DEFAULT_POLICIES: &str = include_str!("../../policies/roster.cedar");

/// The roles an account can hold.
pub const ROLES: [&str; 7] = [
    "admin",
    "security-auditor",
    "publisher",
    "business-owner",
    "reviewer",
    "operator",
    "viewer",
];

/// The roles that can be scoped to a domain (`reviewer@revenue`); the others are
/// host-wide only.
pub const SCOPED_ROLES: [&str; 4] = ["business-owner", "reviewer", "operator", "viewer"];

/// Checks a role grant (`role` or `role@domain`).
pub fn check_role(grant: &str) -> Result<(), String> {
    let (role, domain) = match grant.split_once('@') {
        Some((role, domain)) => (role, Some(domain)),
        None => (grant, None),
    };
    if !ROLES.contains(&role) {
        return Err(format!(
            "unknown role `{role}`; the roles are {}",
            ROLES.join(", ")
        ));
    }
    match domain {
        Some(_) if !SCOPED_ROLES.contains(&role) => Err(format!(
            "role `{role}` is host-wide and cannot be scoped to a domain"
        )),
        Some(d)
            if d.is_empty()
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Err(format!("`{d}` is not a domain name"))
        }
        _ => Ok(()),
    }
}

/// An operation of the API, as the policies name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operation {
    /// Who am I.
    Whoami,
    /// The queue's status.
    QueueView,
    /// The installed workers.
    WorkersList,
    /// The worker inventory.
    InventoryView,
    /// The execution log.
    ExecutionsView,
    /// Owners' alerts.
    AlertsView,
    /// The approval queue.
    ApprovalsList,
    /// One held action.
    ApprovalView,
    /// A worker's trust stage and metrics.
    TrustView,
    /// A worker's versions and readiness checklist.
    WorkerView,
    /// Read records.
    RecordsRead,
    /// Create, change or delete records.
    RecordsWrite,
    /// Search, export and verify the audit trail.
    AuditRead,
    /// Write an audit checkpoint.
    AuditCheckpoint,
    /// Read the workers' grants.
    GrantsRead,
    /// Revoke or restore a worker's grant.
    GrantsChange,
    /// Pause a worker.
    WorkerPause,
    /// Resume a worker.
    WorkerResume,
    /// The kill switch.
    Kill,
    /// Approve, edit or reject a held action.
    ApprovalDecide,
    /// Move a worker along the trust curve.
    TrustPromote,
    /// Report an action of a worker that a person reversed.
    ActionReverse,
    /// Run a worker in dry-run on a staging dataset.
    StagingRun,
    /// Put a worker live (after the readiness checklist).
    WorkerDeploy,
    /// Roll a worker back to its previous version.
    WorkerRollback,
    /// List accounts and tokens.
    PeopleRead,
    /// Create and change accounts, issue and revoke tokens.
    PeopleManage,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 27] = [
        Operation::Whoami,
        Operation::QueueView,
        Operation::WorkersList,
        Operation::InventoryView,
        Operation::ExecutionsView,
        Operation::AlertsView,
        Operation::ApprovalsList,
        Operation::ApprovalView,
        Operation::TrustView,
        Operation::WorkerView,
        Operation::RecordsRead,
        Operation::RecordsWrite,
        Operation::AuditRead,
        Operation::AuditCheckpoint,
        Operation::GrantsRead,
        Operation::GrantsChange,
        Operation::WorkerPause,
        Operation::WorkerResume,
        Operation::Kill,
        Operation::ApprovalDecide,
        Operation::TrustPromote,
        Operation::ActionReverse,
        Operation::StagingRun,
        Operation::WorkerDeploy,
        Operation::WorkerRollback,
        Operation::PeopleRead,
        Operation::PeopleManage,
    ];

    /// The Cedar action's id.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Whoami => "whoami",
            Operation::QueueView => "queue.view",
            Operation::WorkersList => "workers.list",
            Operation::InventoryView => "inventory.view",
            Operation::ExecutionsView => "executions.view",
            Operation::AlertsView => "alerts.view",
            Operation::ApprovalsList => "approvals.list",
            Operation::ApprovalView => "approval.view",
            Operation::TrustView => "trust.view",
            Operation::WorkerView => "worker.view",
            Operation::RecordsRead => "records.read",
            Operation::RecordsWrite => "records.write",
            Operation::AuditRead => "audit.read",
            Operation::AuditCheckpoint => "audit.checkpoint",
            Operation::GrantsRead => "grants.read",
            Operation::GrantsChange => "grants.change",
            Operation::WorkerPause => "worker.pause",
            Operation::WorkerResume => "worker.resume",
            Operation::Kill => "kill",
            Operation::ApprovalDecide => "approval.decide",
            Operation::TrustPromote => "trust.promote",
            Operation::ActionReverse => "action.reverse",
            Operation::StagingRun => "staging.run",
            Operation::WorkerDeploy => "worker.deploy",
            Operation::WorkerRollback => "worker.rollback",
            Operation::PeopleRead => "people.read",
            Operation::PeopleManage => "people.manage",
        }
    }
}

/// The account the bootstrap token (`api-token-env`) acts as: a service account holding
/// `admin`, never stored, so that a fresh host can create the first people.
pub fn bootstrap_account() -> Account {
    Account {
        id: "root".into(),
        kind: crate::store::AccountKind::Service,
        name: "bootstrap token".into(),
        roles: vec!["admin".into()],
        disabled: false,
        created_at: 0,
        updated_at: 0,
    }
}

/// What an operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The host as a whole.
    Host,
    /// A domain.
    Domain(String),
    /// An installed worker.
    Worker {
        /// Its name.
        name: String,
        /// Its domain.
        domain: String,
        /// Its business and technical owners (account ids).
        owners: Vec<String>,
    },
    /// A held action.
    Approval {
        /// The approval's id.
        id: String,
        /// The worker that proposed it.
        worker: String,
        /// The worker's domain.
        domain: String,
        /// The worker's owners.
        owners: Vec<String>,
    },
}

/// The answer to one authorization question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorization {
    /// Whether the operation is allowed.
    pub allowed: bool,
    /// The policies that decided (the permits that allowed it, or the forbids that
    /// refused it; empty when nothing permitted it).
    pub policies: Vec<String>,
}

/// The loaded, validated policies.
#[derive(Debug)]
pub struct Access {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
}

fn uid(kind: &str, id: &str) -> EntityUid {
    // The type names are fixed identifiers of the schema; they always parse.
    let kind = EntityTypeName::from_str(kind).unwrap_or_else(|_| unreachable!("{kind}"));
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

fn domain_set(domains: &[&str]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        domains
            .iter()
            .map(|d| RestrictedExpression::new_entity_uid(uid("Roster::Domain", d))),
    )
}

/// An account's entity, named by its canonical id, so that `Ann@Example.com` and
/// `ann@example.com` are one principal wherever the policies compare them.
fn account_uid(id: &str) -> EntityUid {
    uid("Roster::Account", &crate::store::canonical_id(id))
}

fn account_set(ids: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        ids.iter()
            .map(|id| RestrictedExpression::new_entity_uid(account_uid(id))),
    )
}

impl Access {
    /// The shipped schema and policies.
    pub fn builtin() -> Result<Access, Error> {
        Access::from_text(DEFAULT_SCHEMA, DEFAULT_POLICIES, "built-in policies")
    }

    /// The schema and policies in `dir` (`*.cedarschema`, and every `*.cedar` file).
    pub fn load(dir: &Path) -> Result<Access, Error> {
        let config = |reason: String| Error::Config {
            location: dir.display().to_string(),
            reason,
        };
        let mut schema = None;
        let mut policies = String::new();
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| config(format!("cannot read the policy directory: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            let read = || {
                std::fs::read_to_string(&path)
                    .map_err(|e| config(format!("cannot read {}: {e}", path.display())))
            };
            match path.extension().and_then(|e| e.to_str()) {
                Some("cedarschema") if schema.is_none() => schema = Some(read()?),
                Some("cedarschema") => {
                    return Err(config("more than one .cedarschema file".into()));
                }
                Some("cedar") => {
                    policies.push_str(&read()?);
                    policies.push('\n');
                }
                _ => {}
            }
        }
        let schema = schema.ok_or_else(|| config("no .cedarschema file".into()))?;
        Access::from_text(&schema, &policies, &dir.display().to_string())
    }

    /// Parses and validates a schema and policies.
    pub fn from_text(schema: &str, policies: &str, origin: &str) -> Result<Access, Error> {
        let config = |reason: String| Error::Config {
            location: origin.to_string(),
            reason,
        };
        let (schema, _warnings) = Schema::from_cedarschema_str(schema)
            .map_err(|e| config(format!("the Cedar schema does not parse: {e}")))?;
        let policies = PolicySet::from_str(policies)
            .map_err(|e| config(format!("the Cedar policies do not parse: {e}")))?;
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|e| e.to_string())
                .collect();
            return Err(config(format!(
                "the Cedar policies do not validate against the schema: {}",
                errors.join("; ")
            )));
        }
        Ok(Access {
            schema,
            policies,
            authorizer: Authorizer::new(),
        })
    }

    /// Whether `account` may perform `operation` on `resource`.
    pub fn decide(
        &self,
        account: &Account,
        operation: Operation,
        resource: &Resource,
    ) -> Authorization {
        match self.ask(account, operation, resource) {
            Ok(verdict) => verdict,
            Err(e) => {
                // A request the schema refuses is a bug in the host's mapping, never a
                // reason to allow.
                tracing::error!(operation = operation.as_str(), "authorization error: {e}");
                Authorization {
                    allowed: false,
                    policies: Vec::new(),
                }
            }
        }
    }

    fn ask(
        &self,
        account: &Account,
        operation: Operation,
        resource: &Resource,
    ) -> Result<Authorization, String> {
        let mut entities = Vec::new();
        let mut domains: HashSet<String> = HashSet::new();
        let principal = account_uid(&account.id);
        let mut parents = HashSet::new();
        let mut scoped: HashMap<&str, Vec<&str>> = HashMap::new();
        for grant in &account.roles {
            match grant.split_once('@') {
                Some((role, domain)) => {
                    scoped.entry(role).or_default().push(domain);
                    domains.insert(domain.to_string());
                }
                None => {
                    parents.insert(uid("Roster::Role", grant));
                    entities.push(Entity::new_no_attrs(
                        uid("Roster::Role", grant),
                        HashSet::new(),
                    ));
                }
            }
        }
        let scoped_attr = |role: &str| domain_set(scoped.get(role).map_or(&[][..], |v| v));
        let kind = match account.kind {
            crate::store::AccountKind::User => "user",
            crate::store::AccountKind::Service => "service",
        };
        let attrs = HashMap::from([
            (
                "kind".to_string(),
                RestrictedExpression::new_string(kind.into()),
            ),
            (
                "business_owner_in".to_string(),
                scoped_attr("business-owner"),
            ),
            ("reviewer_in".to_string(), scoped_attr("reviewer")),
            ("operator_in".to_string(), scoped_attr("operator")),
            ("viewer_in".to_string(), scoped_attr("viewer")),
        ]);
        entities.push(Entity::new(principal.clone(), attrs, parents).map_err(|e| e.to_string())?);
        let resource_uid = match resource {
            Resource::Host => {
                let host = uid("Roster::Host", "roster");
                entities.push(Entity::new_no_attrs(host.clone(), HashSet::new()));
                host
            }
            Resource::Domain(name) => {
                domains.insert(name.clone());
                uid("Roster::Domain", name)
            }
            Resource::Worker {
                name,
                domain,
                owners,
            } => {
                domains.insert(domain.clone());
                let worker = uid("Roster::Worker", name);
                let attrs = HashMap::from([
                    (
                        "domain".to_string(),
                        RestrictedExpression::new_entity_uid(uid("Roster::Domain", domain)),
                    ),
                    ("owners".to_string(), account_set(owners)),
                ]);
                let parents = HashSet::from([uid("Roster::Domain", domain)]);
                entities
                    .push(Entity::new(worker.clone(), attrs, parents).map_err(|e| e.to_string())?);
                worker
            }
            Resource::Approval {
                id,
                worker,
                domain,
                owners,
            } => {
                domains.insert(domain.clone());
                let approval = uid("Roster::Approval", id);
                let domain_uid = uid("Roster::Domain", domain);
                let attrs = HashMap::from([
                    (
                        "domain".to_string(),
                        RestrictedExpression::new_entity_uid(domain_uid.clone()),
                    ),
                    ("owners".to_string(), account_set(owners)),
                ]);
                let worker_uid = uid("Roster::Worker", worker);
                entities.push(
                    Entity::new(
                        worker_uid.clone(),
                        HashMap::from([
                            (
                                "domain".to_string(),
                                RestrictedExpression::new_entity_uid(domain_uid.clone()),
                            ),
                            ("owners".to_string(), account_set(owners)),
                        ]),
                        HashSet::from([domain_uid]),
                    )
                    .map_err(|e| e.to_string())?,
                );
                entities.push(
                    Entity::new(approval.clone(), attrs, HashSet::from([worker_uid]))
                        .map_err(|e| e.to_string())?,
                );
                approval
            }
        };
        for domain in &domains {
            let d = uid("Roster::Domain", domain);
            let attrs = HashMap::from([(
                "domain".to_string(),
                RestrictedExpression::new_entity_uid(d.clone()),
            )]);
            entities.push(Entity::new(d, attrs, HashSet::new()).map_err(|e| e.to_string())?);
        }
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let request = Request::new(
            principal,
            uid("Roster::Action", operation.as_str()),
            resource_uid,
            Context::empty(),
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| self.name_of(p))
            .collect();
        policies.sort();
        Ok(Authorization {
            allowed: response.decision() == Decision::Allow,
            policies,
        })
    }

    /// A policy's `@id` annotation, or its generated id.
    fn name_of(&self, id: &cedar_policy::PolicyId) -> String {
        self.policies
            .policy(id)
            .and_then(|p| p.annotation("id").map(str::to_string))
            .unwrap_or_else(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AccountKind;

    fn account(roles: &[&str]) -> Account {
        Account {
            id: "ann@example.com".into(),
            kind: AccountKind::User,
            name: String::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            disabled: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn worker(owners: &[&str]) -> Resource {
        Resource::Worker {
            name: "w".into(),
            domain: "revenue".into(),
            owners: owners.iter().map(|o| o.to_string()).collect(),
        }
    }

    /// One resource of each kind, none with owners.
    fn every_kind_of_resource() -> [Resource; 4] {
        [
            Resource::Host,
            Resource::Domain("revenue".into()),
            worker(&[]),
            Resource::Approval {
                id: "a".into(),
                worker: "w".into(),
                domain: "revenue".into(),
                owners: vec![],
            },
        ]
    }

    #[test]
    fn shipped_policies_validate() {
        let access = Access::builtin().unwrap();
        // Every operation is an action of the schema: an admin may perform each on some
        // resource (a request the schema refuses is never allowed).
        let admin = account(&["admin"]);
        let resources = every_kind_of_resource();
        for op in Operation::ALL {
            assert!(
                resources
                    .iter()
                    .any(|r| access.decide(&admin, op, r).allowed),
                "{op:?} is not in the schema"
            );
        }
    }

    #[test]
    fn scoped_roles_stop_at_their_domain() {
        let access = Access::builtin().unwrap();
        let op = account(&["operator@revenue"]);
        assert!(
            access
                .decide(&op, Operation::WorkerPause, &worker(&[]))
                .allowed
        );
        let other = Resource::Worker {
            name: "w".into(),
            domain: "finance".into(),
            owners: vec![],
        };
        assert!(!access.decide(&op, Operation::WorkerPause, &other).allowed);
        assert!(!access.decide(&op, Operation::Kill, &Resource::Host).allowed);
        assert!(
            access
                .decide(&op, Operation::Kill, &Resource::Domain("revenue".into()))
                .allowed
        );
    }

    #[test]
    fn separation_of_duties_overrides_admin() {
        let access = Access::builtin().unwrap();
        let approval = Resource::Approval {
            id: "a".into(),
            worker: "w".into(),
            domain: "revenue".into(),
            owners: vec!["ann@example.com".into()],
        };
        let verdict = access.decide(&account(&["admin"]), Operation::ApprovalDecide, &approval);
        assert!(!verdict.allowed);
        assert_eq!(verdict.policies, ["no-self-approval"]);
        let both = account(&["admin", "reviewer@cx"]);
        let verdict = access.decide(&both, Operation::GrantsChange, &worker(&[]));
        assert_eq!(verdict.policies, ["reviewers-never-change-grants"]);
    }

    /// The role table of docs/security-model.md, rendered from the shipped policies: what
    /// each host-wide role may do on some resource.
    fn rendered_role_table(access: &Access) -> String {
        let resources = every_kind_of_resource();
        let mut table = format!("| operation | {} |\n", ROLES.join(" | "));
        table.push_str(&format!("| --- |{}\n", " :-: |".repeat(ROLES.len())));
        for op in Operation::ALL {
            let cells: Vec<&str> = ROLES
                .iter()
                .map(|role| {
                    let who = account(&[role]);
                    let allowed = resources.iter().any(|r| access.decide(&who, op, r).allowed);
                    if allowed { "yes" } else { "" }
                })
                .collect();
            table.push_str(&format!("| `{}` | {} |\n", op.as_str(), cells.join(" | ")));
        }
        table
    }

    #[test]
    fn the_documented_role_table_is_what_the_policies_decide() {
        let access = Access::builtin().unwrap();
        let rendered = rendered_role_table(&access);
        let docs = include_str!("../../../docs/security-model.md");
        let documented = docs
            .split_once("<!-- role-table:start -->\n")
            .and_then(|(_, rest)| rest.split_once("<!-- role-table:end -->"))
            .map(|(table, _)| table)
            .expect("docs/security-model.md holds the role table between its markers");
        assert_eq!(
            documented, rendered,
            "docs/security-model.md's role table disagrees with the policies; the policies \
             decide:\n{rendered}"
        );
    }

    #[test]
    fn identities_are_compared_case_insensitively() {
        let access = Access::builtin().unwrap();
        let approval = Resource::Approval {
            id: "a".into(),
            worker: "w".into(),
            domain: "revenue".into(),
            owners: vec!["Ann@Example.COM".into()],
        };
        let verdict = access.decide(
            &account(&["reviewer"]),
            Operation::ApprovalDecide,
            &approval,
        );
        assert_eq!(verdict.policies, ["no-self-approval"]);
    }

    #[test]
    fn role_grants_are_checked() {
        assert!(check_role("reviewer@revenue").is_ok());
        assert!(check_role("admin@revenue").is_err());
        assert!(check_role("root").is_err());
        assert!(check_role("viewer@").is_err());
    }
}
