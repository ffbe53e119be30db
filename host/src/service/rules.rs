//! Rules made without code, as the service runs them: checked when saved (every problem
//! named by its step), versioned, tried in dry-run on a staging dataset or on sample
//! records, and deployed as an installation of the rules worker — pulled from a registry
//! and verified like any plugin — under the grant computed from the rule, with the rule's
//! triggers, conditions and approval holds in its worker file. A rollback deploys the
//! version that ran before.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::staging::{self, Dataset, StagingReport};
use super::*;
use crate::distribution::install::{
    self, GrantChoice, InstallOptions, RuleSections, Verified, keep_component,
};
use crate::failure::{Breaker, Escalation, RetryPolicy};
use crate::rules::{Checked, RuleFile};
use crate::sandbox::grant::{Grant, GrantInfo};
use crate::sandbox::manifest::Domain;
use crate::store::{RuleSet, RuleTest, RuleVersion};

/// The plugin every rule runs on.
pub const RULES_PLUGIN: &str = "roster.rules";
/// The largest rule file accepted.
pub const MAX_RULE_BYTES: usize = 64 * 1024;

/// What checking a rule found, and what it would be granted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RuleCheck {
    /// The rule's name, if the file says it.
    pub name: Option<String>,
    /// Whether it passed every check.
    pub valid: bool,
    /// Every problem, each naming where it is (`step 2 (create `task`): ...`).
    pub problems: Vec<String>,
    /// The rule's domain.
    pub domain: Option<String>,
    /// Who it would act as.
    pub principal: Option<String>,
    /// The grant it would be given (a grant file), when valid.
    pub grant: Option<String>,
    /// What it touches, line by line, for the install review.
    pub touches: Vec<String>,
}

/// One item of a rule version's readiness to deploy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleReadinessItem {
    /// `valid`, `tested` or `principal`.
    pub item: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A saved rule: its versions, what runs, and whether the newest version may be deployed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RuleView {
    /// The rule and its versions.
    pub rule: RuleSet,
    /// Whether its installation exists now.
    pub installed: bool,
    /// The readiness of the newest version.
    pub readiness: Vec<RuleReadinessItem>,
}

/// A rule file read and checked, with what the deployment needs.
struct Compiled {
    domain: Domain,
    table: toml::Table,
    file: RuleFile,
    checked: Checked,
    principal: String,
}

fn digest(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

fn refused(problems: Vec<String>) -> Error {
    Error::RuleRefused(problems)
}

/// Reads a rule file's text: TOML, at most [`MAX_RULE_BYTES`].
fn parse(text: &str) -> Result<(toml::Table, RuleFile), Vec<String>> {
    if text.len() > MAX_RULE_BYTES {
        return Err(vec![format!(
            "the rule file is {} bytes; at most {MAX_RULE_BYTES}",
            text.len()
        )]);
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| vec![one_line(&e.to_string())])?;
    let file: RuleFile = toml::from_str(text).map_err(|e| vec![one_line(&e.to_string())])?;
    Ok((table, file))
}

/// A TOML error on one line: `line 3, column 5: ...`.
fn one_line(e: &str) -> String {
    let mut lines = e.lines();
    let head = lines.next().unwrap_or_default().trim();
    let detail = lines
        .filter(|l| {
            let t = l.trim();
            // Leave out the quoted source and its markers (`1 | ...`, `  | ^`).
            let quoted = t
                .split_once('|')
                .is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()));
            !t.is_empty() && !quoted
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let head = head
        .trim_start_matches("TOML parse error at ")
        .trim_end_matches(':');
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

impl Service {
    /// Checks a rule file against the schema, the principals and the rules worker's
    /// reach; never fails (the problems are the answer).
    pub fn check_rule(&self, text: &str) -> RuleCheck {
        let mut check = RuleCheck {
            name: None,
            valid: false,
            problems: Vec::new(),
            domain: None,
            principal: None,
            grant: None,
            touches: Vec::new(),
        };
        match parse(text) {
            Err(problems) => check.problems = problems,
            Ok((_, file)) => {
                check.name = Some(file.rule.name.clone());
                check.domain = Some(file.rule.domain.clone());
            }
        }
        match self.compile_rule(text, false) {
            Ok(c) => {
                check.valid = true;
                check.touches = touches(&c.checked);
                check.grant = Some(self.rule_grant_text(&c));
                check.principal = Some(c.principal);
            }
            Err(Error::RuleRefused(problems)) => check.problems = problems,
            Err(other) => check.problems = vec![other.to_string()],
        }
        check
    }

    fn rule_grant(&self, c: &Compiled) -> Grant {
        Grant {
            grant: GrantInfo {
                plugin: RULES_PLUGIN.into(),
                principal: c.principal.clone(),
            },
            capabilities: c.checked.scopes(),
            limits: Default::default(),
        }
    }

    fn rule_grant_text(&self, c: &Compiled) -> String {
        format!(
            "# The grant of rule `{}`, computed from what it reads, writes, creates, sends and emits.\n{}",
            c.file.rule.name,
            toml::to_string(&self.rule_grant(c)).unwrap_or_default()
        )
    }

    /// Reads and checks a rule file. With `pull`, a rules worker not seen yet is pulled
    /// from a registry to learn what a rule may reach (saving does; checking as a rule is
    /// typed does not).
    fn compile_rule(&self, text: &str, pull: bool) -> Result<Compiled, Error> {
        let config = self.current_config();
        let (table, file) = parse(text).map_err(refused)?;
        let named = serde_json::from_value::<Domain>(json!(file.rule.domain));
        let checked = crate::rules::check(&file, &config.schema, &config.directory);
        let (named, checked) = match (named, checked) {
            (Ok(d), Ok(c)) => (d, c),
            (named, checked) => {
                let mut problems = Vec::new();
                if named.is_err() {
                    problems.push(format!(
                        "rule.domain `{}`: use revenue, customer-experience, it-operations, finance, security or hr",
                        file.rule.domain
                    ));
                }
                problems.extend(checked.err().unwrap_or_default());
                return Err(refused(problems));
            }
        };
        let domain = named.as_str();
        let principal = match &file.rule.principal {
            Some(p) if config.directory.knows(p) => p.clone(),
            Some(p) => {
                return Err(refused(vec![format!(
                    "rule.principal `{p}` is not a principal of this host"
                )]));
            }
            None => self.domain_principal(domain).ok_or_else(|| {
                refused(vec![format!(
                    "rule.principal: no worker of domain `{domain}` is installed to take the principal from and there is no `svc-{domain}`; name who the rule acts as"
                )])
            })?,
        };
        // The rules worker may reach only what its manifest requests.
        if pull && self.rules_reach().is_none() {
            // Pulling keeps its manifest for the next checks; a registry that does not
            // answer leaves the reach to be checked when the rule is tried or deployed.
            let _ = self.rules_plugin();
        }
        if let Some(manifest) = self.rules_reach() {
            let beyond = beyond_reach(&file, &checked, &manifest);
            if !beyond.is_empty() {
                return Err(refused(beyond));
            }
        }
        Ok(Compiled {
            domain: named,
            table,
            file,
            checked,
            principal,
        })
    }

    /// The manifest of the rules worker: an installed rule's, else the one last pulled
    /// by a dry run or a deployment (`None` before either: what a rule may reach is then
    /// checked when it is tried or deployed, which pull it). Checking never reaches a
    /// registry.
    fn rules_reach(&self) -> Option<crate::sandbox::manifest::Manifest> {
        if let Some(w) = self
            .shared
            .workers()
            .values()
            .find(|w| w.config.manifest.plugin.id == RULES_PLUGIN)
        {
            return Some(w.config.manifest.clone());
        }
        self.shared.rules_manifest.lock().ok()?.clone()
    }

    /// The principal most of a domain's installed workers act as.
    fn domain_principal(&self, domain: &str) -> Option<String> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for w in self.shared.workers().values() {
            if w.config.manifest.plugin.domain.as_str() == domain {
                *counts
                    .entry(w.config.grant.grant.principal.clone())
                    .or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(p, _)| p)
            .or_else(|| {
                // The domain's service account, as `roster up` names them.
                let service = format!("svc-{domain}");
                self.shared
                    .config
                    .directory
                    .knows(&service)
                    .then_some(service)
            })
    }

    /// Checks and saves a rule file as the rule's next version (the same text as the
    /// newest version saves nothing). Nothing is deployed.
    pub fn save_rule(&self, text: &str, by: &str) -> Result<RuleView, Error> {
        let c = self.compile_rule(text, true)?;
        let name = c.file.rule.name.clone();
        let version = RuleVersion {
            version: 0,
            text: text.to_string(),
            digest: digest(text),
            saved_at: self.shared.clock.now_ms(),
            by: by.to_string(),
        };
        let event = GovernanceEvent {
            action: "rule.save".into(),
            by: by.to_string(),
            worker: Some(name.clone()),
            subject: Some(version.digest.clone()),
            reason: None,
            data: json!({
                "domain": c.domain.as_str(),
                "principal": c.principal,
                "touches": touches(&c.checked),
            }),
        };
        self.shared.store.save_rule(&name, version, event)?;
        self.rule_view(&name)
    }

    /// Every saved rule.
    pub fn rules(&self) -> Result<Vec<RuleView>, Error> {
        let names: Vec<String> = self
            .shared
            .store
            .rules()?
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.iter().map(|n| self.rule_view(n)).collect()
    }

    /// A saved rule, its versions and the readiness of its newest version.
    pub fn rule_view(&self, name: &str) -> Result<RuleView, Error> {
        let rule = self.saved_rule(name)?;
        let readiness = match rule.latest() {
            Some(v) => self.rule_readiness(&rule, v),
            None => Vec::new(),
        };
        Ok(RuleView {
            installed: self.shared.workers().contains_key(name),
            rule,
            readiness,
        })
    }

    fn saved_rule(&self, name: &str) -> Result<RuleSet, Error> {
        self.shared
            .store
            .rule(name)?
            .ok_or_else(|| Error::NotFound(format!("no rule is named `{name}`")))
    }

    fn rule_readiness(&self, rule: &RuleSet, v: &RuleVersion) -> Vec<RuleReadinessItem> {
        let compiled = self.compile_rule(&v.text, false);
        let test = self.shared.store.rule_test(&rule.name, v.version);
        vec![
            RuleReadinessItem {
                item: "valid",
                ok: compiled.is_ok(),
                detail: match &compiled {
                    Ok(_) => format!("version {} passes every check", v.version),
                    Err(Error::RuleRefused(p)) => p.join("; "),
                    Err(e) => e.to_string(),
                },
            },
            RuleReadinessItem {
                item: "principal",
                ok: compiled.is_ok(),
                detail: match &compiled {
                    Ok(c) => format!("acts as `{}`", c.principal),
                    Err(_) => "unknown until the rule is valid".into(),
                },
            },
            RuleReadinessItem {
                item: "tested",
                ok: matches!(&test, Ok(Some(t)) if t.failed == 0 && t.ran > 0),
                detail: match test {
                    Ok(Some(t)) => format!(
                        "dry run: {} events, {} ran, {} skipped, {} failed, {} actions proposed",
                        t.events, t.ran, t.skipped, t.failed, t.proposed
                    ),
                    Ok(None) => format!(
                        "version {} has not run in dry-run yet (`roster rules test`)",
                        v.version
                    ),
                    Err(e) => e.to_string(),
                },
            },
        ]
    }

    /// Where each rule installation's component comes from: `[registry] rules-plugin`,
    /// else the newest tag of a repository named `rules` among the sources; pulled and
    /// verified like any installation.
    fn rules_plugin(&self) -> Result<Verified, Error> {
        let config = self.current_config();
        let reference = match &config.rules_plugin {
            Some(r) => r.clone(),
            None => {
                let mut found: Vec<(String, String)> = Vec::new();
                for source in self.catalogue() {
                    for repo in &source.repositories {
                        if repo.name == "rules" || repo.name.ends_with("/rules") {
                            for tag in &repo.tags {
                                found.push((
                                    tag.clone(),
                                    format!("{}/{}:{tag}", source.registry, repo.name),
                                ));
                            }
                        }
                    }
                }
                found.sort_by(|a, b| install::compare_versions(&a.0, &b.0));
                found.pop().map(|(_, r)| r).ok_or_else(|| {
                    Error::InstallRefused(
                        "no registry of [registry] sources offers the rules worker (a repository named `rules`); publish it or set [registry] rules-plugin".into(),
                    )
                })?
            }
        };
        let pulled = self.pull(&config, &reference)?;
        let verified =
            install::verify(&reference, &pulled, &install::trusted_keys(&config), false)?;
        if verified.manifest.plugin.id != RULES_PLUGIN {
            return Err(Error::InstallRefused(format!(
                "{reference} is plugin `{}`, not the rules worker `{RULES_PLUGIN}`",
                verified.manifest.plugin.id
            )));
        }
        if let Ok(mut kept) = self.shared.rules_manifest.lock() {
            *kept = Some(verified.manifest.clone());
        }
        Ok(verified)
    }

    /// The settings, worker-file sections and grant a version deploys with.
    fn rule_install(&self, c: &Compiled) -> Result<(toml::Table, RuleSections), Error> {
        let chain = serde_json::to_string(&c.checked.chain)
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let mut settings = toml::Table::new();
        settings.insert("chain".into(), chain.into());
        let mut sections = toml::Table::new();
        for key in ["triggers", "conditions"] {
            if let Some(v) = c.table.get(key) {
                sections.insert(key.into(), v.clone());
            }
        }
        let mut when = toml::Table::new();
        for (i, step) in c.file.steps.iter().enumerate() {
            if let Some(spec) = step.when() {
                when.insert(
                    (i + 1).to_string(),
                    toml::Value::try_from(spec)
                        .map_err(|e| Error::InvalidRequest(e.to_string()))?,
                );
            }
        }
        if !when.is_empty() {
            sections.insert("step-conditions".into(), toml::Value::Table(when));
        }
        sections.insert(
            "review".into(),
            toml::Value::try_from(c.checked.review())
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        );
        Ok((
            settings,
            RuleSections {
                sections,
                domain: c.domain.as_str().to_string(),
            },
        ))
    }

    /// Runs a version of a saved rule (the newest when `None`) in dry-run on a dataset:
    /// every action recorded, none performed, live records untouched. The result counts
    /// toward the version's readiness and is an audit entry.
    pub fn test_rule(
        &self,
        name: &str,
        version: Option<u32>,
        dataset: &Dataset,
        by: &str,
    ) -> Result<StagingReport, Error> {
        let rule = self.saved_rule(name)?;
        let v = match version {
            Some(n) => rule
                .version(n)
                .ok_or_else(|| Error::NotFound(format!("rule `{name}` has no version {n}")))?,
            None => rule
                .latest()
                .ok_or_else(|| Error::NotFound(format!("rule `{name}` has no version")))?,
        };
        let verified = self.rules_plugin()?;
        let c = self.compile_rule(&v.text, false)?;
        let config = self.current_config();
        let (digest, kept) = keep_component(&config, &verified.component)?;
        let (given, _) = self.rule_install(&c)?;
        let mut manifest = verified.manifest.clone();
        manifest.plugin.domain = c.domain;
        let settings = manifest
            .settings(&given)
            .map_err(|p| Error::InvalidRequest(p.join("; ")))?;
        let worker = WorkerConfig {
            name: name.to_string(),
            path: config.data_dir.join("rules").join(name),
            component: kept,
            manifest,
            manifest_path: config.data_dir.join("rules").join(name),
            grant_path: config.data_dir.join("rules").join(name),
            grant: self.rule_grant(&c),
            enabled: true,
            triggers: c.checked.triggers.clone(),
            conditions: c.checked.conditions.clone(),
            limits: Default::default(),
            owners: Vec::new(),
            retry: RetryPolicy::default(),
            escalation: Escalation::LogAndContinue,
            breaker: Breaker::default(),
            review: Some(c.checked.review()),
            deployment: crate::store::DeployStatus::Live,
            shadow: None,
            pinned: Some(digest),
            source: None,
            settings,
            settings_given: given,
            minutes_saved: Default::default(),
            step_conditions: c.checked.when.clone(),
        };
        let scratch = config
            .data_dir
            .join("staging")
            .join(uuid::Uuid::now_v7().to_string());
        let report = staging::dry_run(&self.shared.runtime, &config, &worker, dataset, &scratch)?;
        let totals = &report.summary;
        let test = RuleTest {
            version: v.version,
            at: self.shared.clock.now_ms(),
            events: totals.events,
            ran: totals.ran,
            skipped: totals.skipped,
            failed: totals.failed,
            proposed: totals.proposed,
        };
        self.shared.store.record_rule_test(
            name,
            test,
            GovernanceEvent {
                action: "rule.test".into(),
                by: by.to_string(),
                worker: Some(name.to_string()),
                subject: Some(v.digest.clone()),
                reason: None,
                data: json!({ "version": v.version, "summary": report.summary }),
            },
        )?;
        Ok(report)
    }

    /// The records of `ids` (`object/id`) from the live store, as a dataset to try a rule
    /// on (its triggers' record events on each).
    pub fn sample_dataset(&self, ids: &[String]) -> Result<Dataset, Error> {
        let mut records = Vec::new();
        for id in ids.iter().take(100) {
            let (object, rid) = id.split_once('/').ok_or_else(|| {
                Error::InvalidRequest(format!("sample `{id}` is not `object/id`"))
            })?;
            let record = self
                .shared
                .store
                .get_record(object, rid)?
                .ok_or_else(|| Error::NotFound(format!("no record {id}")))?;
            records.push(record);
        }
        Ok(Dataset {
            records,
            events: Vec::new(),
        })
    }

    /// Deploys a version of a saved rule (the newest when `None`) once it is ready: the
    /// rules worker installed (or re-granted) under the rule's name, with the grant
    /// computed from the rule, its triggers, conditions and approval holds. Returns the
    /// rule as it is now.
    pub fn deploy_rule(
        &self,
        name: &str,
        version: Option<u32>,
        by: &str,
        reason: &str,
    ) -> Result<RuleView, Error> {
        let rule = self.saved_rule(name)?;
        let v = match version {
            Some(n) => rule.version(n),
            None => rule.latest(),
        }
        .ok_or_else(|| Error::NotFound(format!("rule `{name}` has no such version")))?
        .clone();
        let not_ready: Vec<String> = self
            .rule_readiness(&rule, &v)
            .into_iter()
            .filter(|i| !i.ok)
            .map(|i| format!("{}: {}", i.item, i.detail))
            .collect();
        if !not_ready.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "rule `{name}` version {} is not ready to deploy: {}",
                v.version,
                not_ready.join("; ")
            )));
        }
        self.install_rule(&rule, &v, by, reason, false)
    }

    /// Deploys the version that ran before the one deployed now.
    pub fn rollback_rule(&self, name: &str, by: &str, reason: &str) -> Result<RuleView, Error> {
        let rule = self.saved_rule(name)?;
        let Some(previous) = rule.history.last().copied() else {
            return Err(Error::InvalidRequest(format!(
                "rule `{name}` has no earlier deployed version to roll back to"
            )));
        };
        let v = rule
            .version(previous)
            .ok_or_else(|| Error::NotFound(format!("rule `{name}` has no version {previous}")))?
            .clone();
        self.install_rule(&rule, &v, by, reason, true)
    }

    fn install_rule(
        &self,
        rule: &RuleSet,
        v: &RuleVersion,
        by: &str,
        reason: &str,
        rollback: bool,
    ) -> Result<RuleView, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "give a reason for the deployment".into(),
            ));
        }
        let verified = self.rules_plugin()?;
        let c = self.compile_rule(&v.text, false)?;
        let (settings, sections) = self.rule_install(&c)?;
        let options = InstallOptions {
            name: Some(rule.name.clone()),
            grant: Some(GrantChoice::File(self.rule_grant_text(&c))),
            principal: Some(c.principal.clone()),
            allow_downgrade: true,
            settings,
            by: by.to_string(),
            rule: Some(sections),
        };
        let plan = install::plan(&self.current_config(), verified, &options)?;
        self.install(plan)?;
        let event = GovernanceEvent {
            action: if rollback {
                "rule.rollback"
            } else {
                "rule.deploy"
            }
            .into(),
            by: by.to_string(),
            worker: Some(rule.name.clone()),
            subject: Some(v.digest.clone()),
            reason: Some(reason.to_string()),
            data: json!({
                "version": v.version,
                "previous": rule.deployed,
                "grant": self.rule_grant(&c).digest(),
            }),
        };
        self.shared
            .store
            .set_rule_deployed(&rule.name, v.version, rollback, event)?;
        self.rule_view(&rule.name)
    }
}

/// What a rule needs beyond what the rules worker's manifest requests, each problem
/// naming its step where one step is the cause.
fn beyond_reach(
    file: &RuleFile,
    checked: &Checked,
    manifest: &crate::sandbox::manifest::Manifest,
) -> Vec<String> {
    let caps = &manifest.capabilities;
    let mut problems = Vec::new();
    let channels: Vec<&str> = caps
        .notify
        .iter()
        .flat_map(|n| n.channels.iter().map(|c| c.as_str()))
        .collect();
    for (i, step) in file.steps.iter().enumerate() {
        match step {
            roster_rules::Step::Notify { channel, .. } if !channels.contains(&channel.as_str()) => {
                problems.push(format!(
                    "{}: channel `{channel}` is not granted to the rules worker (its manifest allows {})",
                    step.place(i + 1),
                    if channels.is_empty() { "none".to_string() } else { channels.join(", ") }
                ));
            }
            roster_rules::Step::Emit { topic, .. }
                if !caps.signals.as_ref().is_some_and(|s| s.may_emit(topic)) =>
            {
                problems.push(format!(
                    "{}: topic `{topic}` is not granted to the rules worker",
                    step.place(i + 1)
                ));
            }
            _ => {}
        }
    }
    let objects = caps.records.as_ref().map(|r| &r.objects);
    let touched: BTreeSet<&String> = checked
        .reads
        .keys()
        .chain(checked.writes.keys())
        .chain(checked.creates.iter())
        .collect();
    for o in touched {
        match objects.and_then(|objects| objects.get(o)) {
            None => problems.push(format!(
                "the rules worker does not reach `{o}` records (its manifest lists the objects it may)"
            )),
            Some(scope) if checked.creates.contains(o) && !scope.create => problems.push(format!(
                "the rules worker may not create `{o}` records"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// What a rule touches, line by line.
fn touches(c: &Checked) -> Vec<String> {
    let mut lines = Vec::new();
    let join = |s: &BTreeSet<String>| s.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
    for (object, fields) in c.reads.iter().filter(|(_, f)| !f.is_empty()) {
        lines.push(format!("reads {object}: {}", join(fields)));
    }
    for (object, fields) in &c.writes {
        lines.push(format!("writes {object}: {}", join(fields)));
    }
    for object in &c.creates {
        lines.push(format!("creates {object} records"));
    }
    for channel in &c.channels {
        let to = match &c.recipients {
            Some(r) => r.iter().cloned().collect::<Vec<_>>().join(", "),
            None => "recipients from merge fields (any)".into(),
        };
        lines.push(format!("sends on {} to {to}", channel.as_str()));
    }
    for topic in &c.topics {
        lines.push(format!("emits {topic}"));
    }
    if let Some(a) = &c.approval {
        lines.push(format!(
            "holds for approval: {}",
            a.holds
                .iter()
                .map(|(action, o)| match o {
                    Some(o) => format!("{action} {o}"),
                    None => action.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines
}
