//! Worker files: one per installed worker, read into a [`WorkerConfig`] with its
//! manifest, grant, triggers and conditions; the component is checked against its pinned
//! digest and its publisher's signature at every load.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::problem;
use crate::config_file;
use crate::error::Error;
use crate::failure::{Breaker, BreakerSpec, Escalation, EscalationSpec, RetryPolicy, RetrySpec};
use crate::governance::directory::Directory;
use crate::sandbox::grant::Grant;
use crate::sandbox::limits::LimitsOverride;
use crate::sandbox::manifest::Manifest;
use crate::schema::Schema;
use crate::trigger::condition::{Condition, ConditionSpec};
use crate::trigger::{Trigger, TriggerSpec};

/// A worker's file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WorkerFile {
    worker: WorkerSection,
    #[serde(default)]
    triggers: Vec<Spanned<TriggerSpec>>,
    #[serde(default)]
    conditions: Option<Spanned<ConditionSpec>>,
    #[serde(default)]
    limits: LimitsOverride,
    #[serde(default)]
    retry: Option<Spanned<RetrySpec>>,
    #[serde(default)]
    escalation: Option<Spanned<EscalationSpec>>,
    #[serde(default)]
    circuit_breaker: Option<Spanned<BreakerSpec>>,
    #[serde(default)]
    review: Option<Spanned<crate::governance::review::ReviewSettings>>,
    #[serde(default)]
    shadow: Option<ShadowSpec>,
    #[serde(default)]
    source: Option<InstallSource>,
    #[serde(default)]
    settings: Option<Spanned<toml::Table>>,
    #[serde(default)]
    value: Option<Spanned<WorkerValue>>,
    #[serde(default)]
    step_conditions: Option<Spanned<std::collections::BTreeMap<String, ConditionSpec>>>,
}

/// `[value]` of a worker's file: what its side effects save, overriding `roster.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WorkerValue {
    #[serde(default)]
    minutes_saved: super::settings::MinutesSaved,
}

/// `[source]` of a worker installed from a registry: where it came from and who signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstallSource {
    /// The reference it was pulled by.
    pub reference: String,
    /// The OCI manifest's digest.
    pub manifest_digest: String,
    /// The publisher key that signed it (its id), or `None` when installed unsigned.
    pub signer: Option<String>,
    /// The publisher's signature (key and signature, hex), checked again at every load.
    #[serde(default)]
    pub signature: Option<roster_registry::artifact::Signature>,
    /// When it was installed (milliseconds since the Unix epoch).
    pub installed_at: i64,
    /// Who installed it.
    pub installed_by: String,
}

/// `[shadow]` as written: a new version to run beside the live one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ShadowSpec {
    component: PathBuf,
    manifest: PathBuf,
}

/// A new version of a worker that runs in dry-run beside the live one, on the same
/// triggers, so that their proposed actions can be compared.
#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// The new version's component.
    pub component: PathBuf,
    /// Its manifest (the same plugin id, another version).
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WorkerSection {
    name: String,
    component: PathBuf,
    manifest: PathBuf,
    grant: PathBuf,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    owners: Option<Vec<String>>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    deployment: Option<crate::store::DeployStatus>,
    #[serde(default)]
    pinned_digest: Option<String>,
    /// The business domain it works in, when not the plugin's (a rule's installation of
    /// the rules worker works in the rule's domain).
    #[serde(default)]
    domain: Option<crate::sandbox::manifest::Domain>,
}

fn yes() -> bool {
    true
}

/// A validated installed worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The installation's name (unique on the host).
    pub name: String,
    /// Where its configuration file is.
    pub path: PathBuf,
    /// The component file.
    pub component: PathBuf,
    /// The plugin manifest.
    pub manifest: Manifest,
    /// Where the manifest is.
    pub manifest_path: PathBuf,
    /// Where the grant is.
    pub grant_path: PathBuf,
    /// The grant, with the principal from the worker file applied.
    pub grant: Grant,
    /// Whether it runs.
    pub enabled: bool,
    /// Its triggers.
    pub triggers: Vec<Trigger>,
    /// Its conditions (always true when absent).
    pub conditions: Condition,
    /// Limits set in the worker file.
    pub limits: LimitsOverride,
    /// Who is alerted about it: the worker file's `owners`, or the manifest's business
    /// and technical owners.
    pub owners: Vec<String>,
    /// When failed executions are retried.
    pub retry: RetryPolicy,
    /// What runs after a final failure.
    pub escalation: Escalation,
    /// When it is paused for failing too often.
    pub breaker: Breaker,
    /// Its human-in-the-loop checkpoints and starting stage on the trust curve.
    pub review: Option<crate::governance::review::ReviewSettings>,
    /// Where it starts: `live` (the default), or `staging` to go live only through the
    /// deployment-readiness checklist (`roster workers deploy`).
    pub deployment: crate::store::DeployStatus,
    /// A new version shadow-running beside this one.
    pub shadow: Option<ShadowConfig>,
    /// The component's digest as installed (`sha256:<hex>`): checked every time the
    /// component is read for loading.
    pub pinned: Option<String>,
    /// Where it was installed from, when it came from a registry.
    pub source: Option<InstallSource>,
    /// Its settings: the worker file's `[settings]` over the manifest's `[config]`
    /// defaults, checked against that schema.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The worker file's `[settings]` as written.
    pub settings_given: toml::Table,
    /// The worker file's `[value] minutes-saved`: minutes one performed side effect of
    /// each kind saves, over `roster.toml`'s.
    pub minutes_saved: super::settings::MinutesSaved,
    /// `[step-conditions]`: conditions the host evaluates for each step of a rule (by
    /// step number), passed to the worker in its settings as `when`.
    pub step_conditions: std::collections::BTreeMap<usize, Condition>,
}

impl WorkerConfig {
    /// The trust-curve stage its `[review]` section starts it at.
    pub fn starting_stage(&self) -> Option<crate::store::Stage> {
        self.review.as_ref().map(|r| r.stage)
    }

    /// The settings one execution runs with when the worker has step conditions: its
    /// settings plus `when`, each step's condition evaluated on `subject` (`{"2": true}`),
    /// each result logged as `step N: ...`. `None` when it has none.
    pub fn step_settings(
        &self,
        subject: crate::trigger::condition::Subject<'_>,
        ctx: &crate::trigger::condition::Context<'_>,
        results: &mut Vec<crate::store::ConditionResult>,
    ) -> Option<String> {
        if self.step_conditions.is_empty() {
            return None;
        }
        let mut when = serde_json::Map::new();
        for (step, condition) in &self.step_conditions {
            let mut own = Vec::new();
            let held = condition.evaluate(subject, ctx, &mut own);
            results.extend(own.into_iter().map(|mut r| {
                r.condition = format!("step {step}: {}", r.condition);
                r
            }));
            when.insert(step.to_string(), serde_json::Value::Bool(held));
        }
        let mut settings = self.settings.clone();
        settings.insert("when".into(), serde_json::Value::Object(when));
        Some(serde_json::Value::Object(settings).to_string())
    }

    /// Everyone who answers for the worker: its business and technical owners and those
    /// alerted about it, sorted, each once.
    pub fn accountable(&self) -> Vec<String> {
        let m = &self.manifest.owners;
        let mut owners = vec![m.business.clone(), m.technical.clone()];
        owners.extend(self.owners.iter().cloned());
        owners.sort();
        owners.dedup();
        owners
    }

    /// The settings another version of the plugin (its `manifest`) runs with: the worker
    /// file's `[settings]` checked against that version's `[config]` schema.
    pub fn settings_for(
        &self,
        manifest: &Manifest,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        if manifest.config == self.manifest.config {
            return Ok(self.settings.clone());
        }
        manifest
            .settings(&self.settings_given)
            .map_err(|problems| Error::Config {
                location: self.path.display().to_string(),
                reason: format!(
                    "worker `{}`: settings for version {}: {}",
                    self.name,
                    manifest.plugin.version,
                    problems.join("; ")
                ),
            })
    }

    /// Reads the component for loading. A pinned component must still have the digest
    /// it was installed with; anything else is refused before it is compiled.
    pub fn component_bytes(&self) -> Result<Vec<u8>, Error> {
        let bytes = std::fs::read(&self.component).map_err(|source| Error::Io {
            path: self.component.clone(),
            source,
        })?;
        if let Some(pinned) = &self.pinned {
            use sha2::Digest as _;
            let found = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
            if &found != pinned {
                return Err(Error::Config {
                    location: self.path.display().to_string(),
                    reason: format!(
                        "worker `{}`: component {} is {found}, not the pinned {pinned}; it changed after installation and is not loaded",
                        self.name,
                        self.component.display()
                    ),
                });
            }
            // The publisher's signature covers the component and the manifest as installed.
            if let Some(signature) = self.source.as_ref().and_then(|s| s.signature.as_ref()) {
                let manifest = config_file::read_text(&self.manifest_path)?;
                let message = roster_registry::artifact::signed_message(
                    &self.manifest.plugin.id,
                    &self.manifest.plugin.version,
                    pinned,
                    &roster_registry::digest_of(manifest.as_bytes()),
                );
                let key = roster_registry::artifact::public_key(&signature.key)
                    .map_err(Error::InvalidRequest)?;
                roster_registry::artifact::verify(signature, &message, &[key]).map_err(|e| {
                    Error::Config {
                        location: self.path.display().to_string(),
                        reason: format!(
                            "worker `{}`: {e}; its manifest or component changed after installation and it is not loaded",
                            self.name
                        ),
                    }
                })?;
            }
        }
        Ok(bytes)
    }
}

/// Reads and validates one worker file.
pub(crate) fn load_worker(
    path: &Path,
    schema: &Schema,
    directory: &Directory,
) -> Result<WorkerConfig, Error> {
    let text = config_file::read_text(path)?;
    let file: WorkerFile = config_file::parse_toml(path, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let bad = |reason: String| problem(path, &text, None, reason);
    let name = &file.worker.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    {
        return Err(bad(format!(
            "worker.name `{name}`: use lower-case letters, digits, `-`, `_` or `.`"
        )));
    }
    let component = base.join(&file.worker.component);
    if !component.is_file() {
        return Err(bad(format!(
            "worker.component {} does not exist (build it with `roster build`)",
            component.display()
        )));
    }
    let manifest_path = base.join(&file.worker.manifest);
    let grant_path = base.join(&file.worker.grant);
    let mut manifest = Manifest::load(&manifest_path)?;
    if let Some(domain) = file.worker.domain {
        manifest.plugin.domain = domain;
    }
    let mut grant = Grant::load(&grant_path)?;
    if let Some(principal) = &file.worker.principal {
        grant.grant.principal = principal.clone();
    }
    grant.check_against(&manifest)?;
    let shadow = match &file.shadow {
        None => None,
        Some(spec) => {
            let component = base.join(&spec.component);
            if !component.is_file() {
                return Err(bad(format!(
                    "shadow.component {} does not exist",
                    component.display()
                )));
            }
            let shadow_manifest = Manifest::load(&base.join(&spec.manifest))?;
            if shadow_manifest.plugin.id != manifest.plugin.id {
                return Err(bad(format!(
                    "shadow.manifest is plugin `{}`; a shadow run compares versions of the same plugin `{}`",
                    shadow_manifest.plugin.id, manifest.plugin.id
                )));
            }
            grant.check_against(&shadow_manifest)?;
            Some(ShadowConfig {
                component,
                manifest: shadow_manifest,
            })
        }
    };
    if !directory.knows(&grant.grant.principal) {
        return Err(bad(format!(
            "principal `{}` is not in roster.toml's [[principals]]",
            grant.grant.principal
        )));
    }
    let problems = file.limits.validate();
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    if file.triggers.is_empty() {
        return Err(bad("a worker needs at least one [[triggers]] entry".into()));
    }
    let mut triggers = Vec::new();
    for spec in &file.triggers {
        let trigger = spec
            .get_ref()
            .compile(schema)
            .map_err(|reason| problem(path, &text, Some(spec.span()), reason))?;
        triggers.push(trigger);
    }
    // Field conditions are checked against the object the record triggers are about.
    let objects: Vec<&str> = triggers.iter().filter_map(|t| t.kind.object()).collect();
    let object = objects.first().copied();
    // Payload conditions are typed by the event the triggers name, if one.
    let mut events = triggers.iter().map(|t| match &t.kind {
        crate::trigger::TriggerKind::Event { name } => Some(name.as_str()),
        _ => None,
    });
    let first = events.next().flatten();
    let event = first.filter(|f| events.all(|e| e == Some(*f)));
    let conditions = match &file.conditions {
        None => Condition::All(Vec::new()),
        Some(spec) => {
            if objects.iter().any(|o| Some(*o) != object) {
                return Err(problem(
                    path,
                    &text,
                    Some(spec.span()),
                    "conditions need every trigger to be about the same object",
                ));
            }
            spec.get_ref()
                .compile_for(object, event, schema)
                .map_err(|reason| problem(path, &text, Some(spec.span()), reason))?
        }
    };
    let section =
        |span: Option<std::ops::Range<usize>>, reason: String| problem(path, &text, span, reason);
    let mut step_conditions = std::collections::BTreeMap::new();
    if let Some(given) = &file.step_conditions {
        for (step, spec) in given.get_ref() {
            let n = step.parse::<usize>().ok().filter(|n| (1..=64).contains(n));
            let Some(n) = n else {
                return Err(section(
                    Some(given.span()),
                    format!("step-conditions: `{step}` is not a step number (1 to 64)"),
                ));
            };
            let c = spec.compile_for(object, event, schema).map_err(|reason| {
                section(
                    Some(given.span()),
                    format!("step-conditions.{step}: {reason}"),
                )
            })?;
            step_conditions.insert(n, c);
        }
    }
    let retry = match &file.retry {
        None => RetryPolicy::default(),
        Some(spec) => spec
            .get_ref()
            .compile()
            .map_err(|r| section(Some(spec.span()), r))?,
    };
    let escalation = match &file.escalation {
        None => Escalation::LogAndContinue,
        Some(spec) => spec
            .get_ref()
            .compile()
            .map_err(|r| section(Some(spec.span()), r))?,
    };
    if let (Escalation::CreateTask { assignee }, Some(spec)) = (&escalation, &file.escalation) {
        let known = match assignee.strip_prefix("team:") {
            Some(team) => directory.has_team(team),
            None => directory.knows(assignee),
        };
        if !known {
            return Err(section(
                Some(spec.span()),
                format!(
                    "escalation.assignee `{assignee}` is not a principal or team in roster.toml"
                ),
            ));
        }
    }
    let breaker = match &file.circuit_breaker {
        None => Breaker::default(),
        Some(spec) => spec
            .get_ref()
            .compile()
            .map_err(|r| section(Some(spec.span()), r))?,
    };
    if let Some(review) = &file.review {
        let problems = review.get_ref().validate();
        if !problems.is_empty() {
            return Err(section(
                Some(review.span()),
                format!("review: {}", problems.join("; ")),
            ));
        }
    }
    let settings = match &file.settings {
        None => manifest.settings(&toml::Table::new()),
        Some(given) => manifest.settings(given.get_ref()),
    }
    .map_err(|problems| {
        problem(
            path,
            &text,
            file.settings.as_ref().map(|s| s.span()),
            format!("settings: {}", problems.join("; ")),
        )
    })?;
    let owners = match &file.worker.owners {
        Some(owners) if owners.is_empty() => {
            return Err(bad("worker.owners: name at least one owner".into()));
        }
        Some(owners) => owners.clone(),
        None => {
            let mut owners = vec![manifest.owners.business.clone()];
            if manifest.owners.technical != manifest.owners.business {
                owners.push(manifest.owners.technical.clone());
            }
            owners
        }
    };
    let review = file
        .review
        .as_ref()
        .map(|r| r.get_ref().clone())
        .or_else(|| manifest.review.clone());
    let minutes_saved = match &file.value {
        None => Default::default(),
        Some(value) => {
            let problems = super::settings::check_minutes_saved(&value.get_ref().minutes_saved);
            if !problems.is_empty() {
                return Err(section(Some(value.span()), problems.join("; ")));
            }
            value.get_ref().minutes_saved.clone()
        }
    };
    Ok(WorkerConfig {
        name: name.clone(),
        path: path.to_path_buf(),
        component,
        manifest,
        manifest_path,
        grant_path,
        grant,
        enabled: file.worker.enabled,
        triggers,
        conditions,
        limits: file.limits,
        owners,
        retry,
        escalation,
        breaker,
        review,
        deployment: file
            .worker
            .deployment
            .unwrap_or(crate::store::DeployStatus::Live),
        shadow,
        pinned: file.worker.pinned_digest.clone(),
        source: file.source.clone(),
        settings,
        settings_given: file
            .settings
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default(),
        minutes_saved,
        step_conditions,
    })
}
