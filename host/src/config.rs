//! Configuration: `roster.toml` for the host, and one file per installed worker.
//!
//! ```toml
//! # roster.toml
//! data-dir = ".roster"
//! listen = "127.0.0.1:7878"
//! plan = "professional"          # starter, professional, enterprise, or one defined below
//! api-token-env = "ROSTER_API_TOKEN"
//! webhook-secret-env = "ROSTER_WEBHOOK_SECRET"
//! workers = ["workers/lead-triage.toml"]
//!
//! [capacity-alert]
//! hits = 3                       # alert when the cap was hit in 3...
//! windows = 6                    # ...of the last 6 hourly windows
//!
//! [[principals]]
//! id = "ann"
//! teams = ["emea"]
//! roles = ["ae", "admin"]
//!
//! [objects.subscription]         # custom objects (or extra fields on standard ones)
//! plan = { type = "text", indexed = true }
//! ```
//!
//! ```toml
//! # workers/lead-triage.toml
//! [worker]
//! name = "lead-triage"
//! component = "../target/guests/wasm32-wasip2/release/lead_triage.wasm"
//! manifest = "../examples/lead-triage/worker.toml"
//! grant = "../examples/lead-triage/grant.toml"
//! principal = "svc-revops"       # overrides the grant's principal
//!
//! [[triggers]]
//! on = "record-created"
//! object = "lead"
//!
//! [conditions]
//! all = [{ field = "status", op = "equals", value = "new" }]
//!
//! [limits]
//! timeout-ms = 2000
//! ```
//!
//! Every problem is reported with the file, line and reason, and a configuration with any
//! problem is rejected whole: nothing is started and nothing is written.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config_file;
use crate::delivery::{AuditWebhook, AuditWebhookSettings, Connectors, Smtp, SmtpSettings};
use crate::error::Error;
use crate::failure::{Breaker, BreakerSpec, Escalation, EscalationSpec, RetryPolicy, RetrySpec};
use crate::governance::directory::{Directory, Principal};
use crate::sandbox::grant::Grant;
use crate::sandbox::limits::{Limits, LimitsOverride};
use crate::sandbox::manifest::Manifest;
use crate::schema::{FieldDef, Schema};
use crate::trigger::condition::{Condition, ConditionSpec};
use crate::trigger::{Trigger, TriggerSpec};

/// Failed authentications a client may make in a row, unless roster.toml says otherwise.
pub const DEFAULT_FAILED_AUTH_BURST: u32 = 20;

/// A capacity plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Plan {
    /// The most installed workers (unlimited when absent).
    pub workers: Option<u32>,
    /// The most executions per worker in any rolling hour.
    pub executions_per_hour: u32,
    /// The most actions in one execution.
    pub actions_per_execution: u32,
}

/// The built-in plans: starter, professional and enterprise.
pub fn builtin_plans() -> BTreeMap<String, Plan> {
    BTreeMap::from([
        (
            "starter".to_string(),
            Plan {
                workers: Some(10),
                executions_per_hour: 500,
                actions_per_execution: 5,
            },
        ),
        (
            "professional".to_string(),
            Plan {
                workers: Some(50),
                executions_per_hour: 5_000,
                actions_per_execution: 10,
            },
        ),
        (
            "enterprise".to_string(),
            Plan {
                workers: None,
                executions_per_hour: 50_000,
                actions_per_execution: 25,
            },
        ),
    ])
}

/// When to alert admins about a worker that keeps hitting its hourly cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CapacityAlert {
    /// In how many of the last `windows` hourly windows the cap was hit.
    pub hits: u32,
    /// How many hourly windows to look back over.
    pub windows: u32,
    /// The role whose holders are alerted (in-app); `admin` by default.
    #[serde(default = "admin")]
    pub role: String,
}

fn admin() -> String {
    "admin".into()
}

impl Default for CapacityAlert {
    fn default() -> Self {
        CapacityAlert {
            hits: 3,
            windows: 6,
            role: admin(),
        }
    }
}

/// Where alerts to workers' owners go besides the in-app notification centre.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertRouting {
    /// Also email the owners (their principal's `email`, or the owner itself when it is an
    /// address); needs `[smtp]`.
    #[serde(default)]
    pub email: bool,
    /// Also POST each alert as JSON to this URL (HMAC-signed when a secret is set).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The environment variable holding the webhook's signing secret.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
}

/// `[audit]`: how long the audit trail is kept and where it is pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditSettings {
    /// Entries older than this are pruned (the remaining chain stays verifiable).
    #[serde(default = "ninety")]
    pub retention_days: u32,
    /// Receivers of every audit entry, in order.
    #[serde(default)]
    pub webhooks: Vec<AuditWebhookSettings>,
}

fn ninety() -> u32 {
    90
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            retention_days: ninety(),
            webhooks: Vec::new(),
        }
    }
}

/// `[access]`: the authorization policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AccessSettings {
    /// A directory with a `.cedarschema` file and `.cedar` policy files that replace the
    /// shipped ones (relative to the configuration file).
    #[serde(default)]
    pub policies: Option<PathBuf>,
}

/// `[registry]`: where workers are installed from and whose signatures are trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistrySettings {
    /// Publisher public keys whose signatures `roster install` accepts: files holding a
    /// hex ed25519 key (relative to the configuration file), as `roster plugin keygen`
    /// writes them.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// The environment variable holding the token sent to registries that ask for one.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// `roster.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HostFile {
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_plan")]
    plan: String,
    #[serde(default)]
    plans: BTreeMap<String, Plan>,
    #[serde(default)]
    capacity_alert: Option<CapacityAlert>,
    #[serde(default)]
    api_token_env: Option<String>,
    #[serde(default)]
    webhook_secret_env: Option<String>,
    #[serde(default)]
    webhook_tolerance_s: Option<u64>,
    #[serde(default)]
    failed_auth_burst: Option<u32>,
    #[serde(default)]
    executors: Option<usize>,
    #[serde(default)]
    limits: LimitsOverride,
    #[serde(default)]
    principals: Vec<Principal>,
    #[serde(default)]
    alerts: AlertRouting,
    #[serde(default)]
    smtp: Option<SmtpSettings>,
    #[serde(default)]
    retention_days: Option<u32>,
    #[serde(default)]
    audit: AuditSettings,
    #[serde(default)]
    access: AccessSettings,
    #[serde(default)]
    registry: RegistrySettings,
    #[serde(default)]
    review_rules: Vec<crate::governance::review::Rule>,
    #[serde(default)]
    trust: crate::governance::trust::TrustSettings,
    #[serde(default)]
    objects: BTreeMap<String, BTreeMap<String, FieldDef>>,
    #[serde(default)]
    workers: Vec<Spanned<String>>,
    #[serde(default)]
    secrets_file: Option<PathBuf>,
    #[serde(default)]
    escalation_paths: Vec<crate::governance::escalation::EscalationPath>,
    #[serde(default)]
    connectors: crate::delivery::messaging::ConnectorSettings,
    #[serde(default)]
    enrichment: crate::enrichment::EnrichmentSettings,
    #[serde(default)]
    inference: crate::inference::InferenceSettings,
}

/// The shipped policies; they are validated by a unit test, so loading them cannot fail.
fn builtin_access() -> crate::governance::access::Access {
    crate::governance::access::Access::builtin()
        .unwrap_or_else(|e| unreachable!("shipped policies: {e}"))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".roster")
}
fn default_listen() -> String {
    "127.0.0.1:7878".into()
}
fn default_plan() -> String {
    "professional".into()
}

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
}

impl WorkerConfig {
    /// The trust-curve stage its `[review]` section starts it at.
    pub fn starting_stage(&self) -> Option<crate::store::Stage> {
        self.review.as_ref().map(|r| r.stage)
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

/// A validated host configuration.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where the configuration file is (`None` for the built-in defaults).
    pub path: Option<PathBuf>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The address the HTTP API listens on.
    pub listen: SocketAddr,
    /// The plan's name.
    pub plan_name: String,
    /// The plan in force.
    pub plan: Plan,
    /// When to alert about capped workers.
    pub capacity_alert: CapacityAlert,
    /// The bearer token of the HTTP API (from the environment), if set.
    pub api_token: Option<String>,
    /// The webhook signing secret (from the environment), if set.
    pub webhook_secret: Option<String>,
    /// How old a signed webhook may be, in seconds.
    pub webhook_tolerance_s: u64,
    /// Failed authentications a client may make in a row before the API throttles it.
    pub failed_auth_burst: u32,
    /// Threads that run executions.
    pub executors: usize,
    /// The host's maximum limits.
    pub max_limits: Limits,
    /// The principals.
    pub directory: Directory,
    /// The record schema.
    pub schema: Schema,
    /// The installed workers.
    pub workers: Vec<WorkerConfig>,
    /// Where owners' alerts go.
    pub alerts: AlertRouting,
    /// The alert webhook's signing secret.
    pub alert_webhook_secret: Option<String>,
    /// How email is sent, if it is.
    pub smtp: Option<Smtp>,
    /// How long accepted event ids and journalled effects are remembered, in days.
    pub retention_days: u32,
    /// How long the audit trail is kept, in days.
    pub audit_retention_days: u32,
    /// Where audit entries are pushed.
    pub audit_webhooks: Vec<AuditWebhook>,
    /// The authorization policies in force.
    pub access: std::sync::Arc<crate::governance::access::Access>,
    /// Review rules for every worker (or the workers of the domains they name).
    pub review_rules: Vec<crate::governance::review::Rule>,
    /// When the trust curve proposes a promotion.
    pub trust: crate::governance::trust::TrustSettings,
    /// Publisher keys whose signatures `roster install` accepts.
    pub trusted_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// The token sent to registries that ask for one.
    pub registry_token: Option<String>,
    /// The secrets file's entries (connectors' and providers' keys).
    pub secrets: crate::secrets::Secrets,
    /// The inference providers.
    pub inference: crate::inference::InferenceConfig,
    /// The declared cross-domain escalation paths.
    pub escalation_paths: Vec<crate::governance::escalation::EscalationPath>,
    /// Slack, Teams and SMS connectors.
    pub messaging: crate::delivery::messaging::Messaging,
    /// The enrichment providers.
    pub enrichment: crate::enrichment::EnrichmentConfig,
}

/// The publisher keys admins trusted on earlier installs, kept under the data directory
/// (`trusted-keys/<id>.pub`); unreadable files are skipped (and so not trusted).
pub(crate) fn remembered_keys(data_dir: &Path) -> Vec<ed25519_dalek::VerifyingKey> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("trusted-keys")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pub"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| roster_registry::artifact::public_key(&text).ok())
        .collect()
}

fn problem(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    reason: impl Into<String>,
) -> Error {
    let location = match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!("{}:{line}", path.display())
        }
        None => path.display().to_string(),
    };
    Error::Config {
        location,
        reason: reason.into(),
    }
}

impl HostConfig {
    /// The connectors this host delivers notifications with.
    pub fn connectors(
        &self,
        http: std::sync::Arc<crate::net::HttpClient>,
        directory: std::sync::Arc<Directory>,
    ) -> Connectors {
        Connectors::new(
            self.smtp.clone(),
            self.messaging.clone(),
            self.alert_webhook_secret.clone(),
            http,
            directory,
        )
    }

    /// The runtime settings this configuration implies (data directory, limits, schema,
    /// directory), with `clock`.
    pub fn runtime_config(
        &self,
        clock: crate::clock::SharedClock,
    ) -> crate::sandbox::runtime::RuntimeConfig {
        let mut config = crate::sandbox::runtime::RuntimeConfig::new(&self.data_dir);
        config.max_limits = self.max_limits;
        config.schema = self.schema.clone();
        config.directory = self.directory.clone();
        config.clock = clock;
        config.inference = self.inference.clone();
        config.enrichment = self.enrichment.clone();
        config
    }

    /// The built-in defaults: no workers, an open directory, the professional plan.
    pub fn defaults() -> HostConfig {
        HostConfig {
            path: None,
            data_dir: default_data_dir(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            plan_name: default_plan(),
            plan: builtin_plans()["professional"],
            capacity_alert: CapacityAlert::default(),
            api_token: None,
            webhook_secret: None,
            webhook_tolerance_s: 300,
            failed_auth_burst: DEFAULT_FAILED_AUTH_BURST,
            executors: default_executors(),
            max_limits: Limits::default(),
            directory: Directory::open(),
            schema: Schema::standard(),
            workers: Vec::new(),
            alerts: AlertRouting::default(),
            alert_webhook_secret: None,
            smtp: None,
            retention_days: 7,
            audit_retention_days: ninety(),
            audit_webhooks: Vec::new(),
            access: std::sync::Arc::new(builtin_access()),
            review_rules: Vec::new(),
            trust: crate::governance::trust::TrustSettings::default(),
            trusted_keys: Vec::new(),
            registry_token: None,
            secrets: crate::secrets::Secrets::none(),
            inference: crate::inference::InferenceConfig::default(),
            escalation_paths: Vec::new(),
            messaging: Default::default(),
            enrichment: Default::default(),
        }
    }

    /// Where `roster install` keeps installed workers: one directory per worker, holding
    /// its worker file, manifest and grant.
    pub fn installed_dir(&self) -> PathBuf {
        self.data_dir.join("installed")
    }

    /// Adds the workers `roster install` put under the data directory (each
    /// `installed/<name>/worker.toml`, in name order).
    pub fn add_installed(&mut self) -> Result<(), Error> {
        let dir = self.installed_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        // `.NAME.partial` and `.NAME.old` are an installation being written or replaced.
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path().join("worker.toml"))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut trusted = self.trusted_keys.clone();
        trusted.extend(remembered_keys(&self.data_dir));
        for file in files {
            let worker = load_worker(&file, &self.schema, &self.directory)?;
            if let Some(signature) = worker.source.as_ref().and_then(|s| s.signature.as_ref()) {
                let key = roster_registry::artifact::public_key(&signature.key).map_err(|e| {
                    Error::Config {
                        location: file.display().to_string(),
                        reason: format!("source.signature: {e}"),
                    }
                })?;
                if !trusted.contains(&key) {
                    return Err(Error::Config {
                        location: file.display().to_string(),
                        reason: format!(
                            "worker `{}` is signed by key {}, which is no longer trusted; it is not loaded",
                            worker.name,
                            roster_registry::artifact::key_id(&key)
                        ),
                    });
                }
            }
            if self.workers.iter().any(|w| w.name == worker.name) {
                return Err(Error::Config {
                    location: file.display().to_string(),
                    reason: format!(
                        "worker `{}` is both configured in roster.toml and installed",
                        worker.name
                    ),
                });
            }
            self.workers.push(worker);
        }
        if let Some(max) = self.plan.workers
            && self.workers.len() > max as usize
        {
            return Err(Error::Config {
                location: dir.display().to_string(),
                reason: format!(
                    "{} workers installed; plan `{}` allows {max}",
                    self.workers.len(),
                    self.plan_name
                ),
            });
        }
        Ok(())
    }

    /// Reads and validates `roster.toml` and every worker file it names.
    pub fn load(path: &Path) -> Result<HostConfig, Error> {
        let text = config_file::read_text(path)?;
        let file: HostFile = config_file::parse_toml(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let bad = |reason: String| problem(path, &text, None, reason);

        let mut plans = builtin_plans();
        plans.extend(file.plans.clone());
        let plan = *plans.get(&file.plan).ok_or_else(|| {
            bad(format!(
                "plan `{}` is not defined (known: {})",
                file.plan,
                plans.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if plan.executions_per_hour == 0 || plan.actions_per_execution == 0 {
            return Err(bad(format!("plan `{}` allows nothing", file.plan)));
        }
        let listen: SocketAddr = file
            .listen
            .parse()
            .map_err(|e| bad(format!("listen `{}`: {e}", file.listen)))?;
        let failed_auth_burst = match file.failed_auth_burst {
            None => DEFAULT_FAILED_AUTH_BURST,
            Some(0) => {
                return Err(bad(
                    "failed-auth-burst must be at least 1 (failed authentications in a row)".into(),
                ));
            }
            Some(n) => n,
        };
        let capacity_alert = file.capacity_alert.clone().unwrap_or_default();
        if capacity_alert.hits == 0 || capacity_alert.hits > capacity_alert.windows {
            return Err(bad("capacity-alert: need 1 <= hits <= windows".into()));
        }
        let problems = file.limits.validate();
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        let directory = Directory::new(file.principals.clone()).map_err(bad)?;
        let mut schema = Schema::standard();
        schema
            .extend(&file.objects)
            .map_err(|e| bad(e.to_string()))?;
        let env = |name: &Option<String>| -> Result<Option<String>, Error> {
            match name {
                None => Ok(None),
                Some(var) => std::env::var(var)
                    .map(Some)
                    .map_err(|_| bad(format!("environment variable `{var}` is not set"))),
            }
        };
        let mut max_limits = file.limits.apply(Limits::default());
        max_limits.actions = max_limits.actions.min(plan.actions_per_execution);

        let mut workers = Vec::new();
        for entry in &file.workers {
            let worker_path = base.join(entry.get_ref());
            if !worker_path.is_file() {
                return Err(problem(
                    path,
                    &text,
                    Some(entry.span()),
                    format!("worker file {} does not exist", worker_path.display()),
                ));
            }
            let worker = load_worker(&worker_path, &schema, &directory)?;
            if workers.iter().any(|w: &WorkerConfig| w.name == worker.name) {
                return Err(problem(
                    path,
                    &text,
                    Some(entry.span()),
                    format!("two workers are named `{}`", worker.name),
                ));
            }
            workers.push(worker);
        }
        for w in &workers {
            if let Escalation::Fallback {
                worker: Some(fallback),
                ..
            } = &w.escalation
            {
                let known = workers.iter().any(|o| &o.name == fallback && o.enabled);
                if fallback == &w.name || !known {
                    return Err(Error::Config {
                        location: w.path.display().to_string(),
                        reason: format!(
                            "escalation.fallback-worker `{fallback}` must be another enabled worker of this host"
                        ),
                    });
                }
            }
        }
        if let Some(max) = plan.workers
            && workers.len() > max as usize
        {
            return Err(bad(format!(
                "{} workers installed; plan `{}` allows {max}",
                workers.len(),
                file.plan
            )));
        }
        if file.alerts.email && file.smtp.is_none() {
            return Err(bad("alerts.email needs an [smtp] section".into()));
        }
        if let Some(url) = &file.alerts.webhook_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| bad(format!("alerts.webhook-url `{url}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "alerts.webhook-url `{url}`: use http or https"
                )));
            }
        }
        let smtp = match &file.smtp {
            None => None,
            Some(settings) => {
                if !matches!(settings.tls.as_str(), "starttls" | "tls" | "none") {
                    return Err(bad(format!(
                        "smtp.tls `{}`: use starttls, tls or none",
                        settings.tls
                    )));
                }
                if settings.from.parse::<lettre::Address>().is_err() {
                    return Err(bad(format!(
                        "smtp.from `{}` is not an address",
                        settings.from
                    )));
                }
                let credentials = match (&settings.username_env, &settings.password_env) {
                    (Some(u), Some(p)) => Some((
                        env(&Some(u.clone()))?.unwrap_or_default(),
                        env(&Some(p.clone()))?.unwrap_or_default(),
                    )),
                    (None, None) => None,
                    _ => {
                        return Err(bad(
                            "smtp: give both username-env and password-env, or neither".into(),
                        ));
                    }
                };
                Some(Smtp {
                    settings: settings.clone(),
                    credentials,
                })
            }
        };
        let retention_days = file.retention_days.unwrap_or(7);
        if retention_days == 0 {
            return Err(bad("retention-days: at least 1".into()));
        }
        if file.audit.retention_days == 0 {
            return Err(bad("audit.retention-days: at least 1".into()));
        }
        let mut audit_webhooks = Vec::new();
        for hook in &file.audit.webhooks {
            let parsed = url::Url::parse(&hook.url)
                .map_err(|e| bad(format!("audit.webhooks url `{}`: {e}", hook.url)))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "audit.webhooks url `{}`: use http or https",
                    hook.url
                )));
            }
            audit_webhooks.push(AuditWebhook {
                url: hook.url.clone(),
                secret: env(&hook.secret_env)?,
            });
        }
        let mut trusted_keys = Vec::new();
        for key_path in &file.registry.trusted_keys {
            let key_path = base.join(key_path);
            let text = config_file::read_text(&key_path)?;
            let key = roster_registry::artifact::public_key(&text)
                .map_err(|e| bad(format!("registry.trusted-keys {}: {e}", key_path.display())))?;
            trusted_keys.push(key);
        }
        let access = match &file.access.policies {
            Some(dir) => crate::governance::access::Access::load(&base.join(dir))?,
            None => builtin_access(),
        };
        let mut problems: Vec<String> = file
            .review_rules
            .iter()
            .flat_map(|r| r.validate())
            .map(|p| format!("review-rules: {p}"))
            .collect();
        problems.extend(file.trust.validate());
        problems.extend(file.escalation_paths.iter().flat_map(|p| p.validate()));
        let secrets = match &file.secrets_file {
            Some(f) => crate::secrets::Secrets::load(&base.join(f)).map_err(&bad)?,
            None => crate::secrets::Secrets::none(),
        };
        let inference = crate::inference::InferenceConfig::from_settings(&file.inference, &secrets)
            .unwrap_or_else(|p| {
                problems.extend(p);
                crate::inference::InferenceConfig::default()
            });
        let messaging =
            crate::delivery::messaging::Messaging::from_settings(&file.connectors, &secrets)
                .unwrap_or_else(|p| {
                    problems.extend(p);
                    Default::default()
                });
        let enrichment =
            crate::enrichment::EnrichmentConfig::from_settings(&file.enrichment, &secrets)
                .unwrap_or_else(|p| {
                    problems.extend(p);
                    Default::default()
                });
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        let mut config = HostConfig {
            enrichment,
            messaging,
            escalation_paths: file.escalation_paths.clone(),
            secrets,
            inference,
            trusted_keys,
            registry_token: env(&file.registry.token_env)?,
            review_rules: file.review_rules.clone(),
            trust: file.trust.clone(),
            access: std::sync::Arc::new(access),
            path: Some(path.to_path_buf()),
            alerts: file.alerts.clone(),
            alert_webhook_secret: env(&file.alerts.webhook_secret_env)?,
            smtp,
            retention_days,
            audit_retention_days: file.audit.retention_days,
            audit_webhooks,
            data_dir: base.join(&file.data_dir),
            listen,
            plan_name: file.plan.clone(),
            plan,
            capacity_alert,
            api_token: env(&file.api_token_env)?,
            webhook_secret: env(&file.webhook_secret_env)?,
            webhook_tolerance_s: file.webhook_tolerance_s.unwrap_or(300),
            failed_auth_burst,
            executors: file
                .executors
                .unwrap_or_else(default_executors)
                .clamp(1, 256),
            max_limits,
            directory,
            schema,
            workers,
        };
        config.add_installed()?;
        config.check_providers()?;
        Ok(config)
    }

    /// Checks each escalation path against the installed workers: the senders exist, the
    /// receiver exists and has a signal trigger on the path's topic. The service checks
    /// this when it starts (the paths may be written before their workers are installed).
    pub fn check_escalation_paths(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for p in &self.escalation_paths {
            let at = format!("escalation path `{}`", p.name);
            if !names.insert(p.name.as_str()) {
                problems.push(format!("{at}: two paths have this name"));
            }
            for from in &p.from {
                if !self.workers.iter().any(|w| &w.name == from) {
                    problems.push(format!("{at}: `from` worker `{from}` is not installed"));
                }
            }
            match self.workers.iter().find(|w| w.name == p.to) {
                None => problems.push(format!("{at}: `to` worker `{}` is not installed", p.to)),
                Some(w) => {
                    let listens = w.triggers.iter().any(|t| {
                        matches!(&t.kind, crate::trigger::TriggerKind::Signal { topic }
                            if topic == &p.signal || wildmatch::WildMatch::new(topic).matches(&p.signal))
                    });
                    if !listens {
                        problems.push(format!(
                            "{at}: worker `{}` has no trigger on signal `{}`",
                            p.to, p.signal
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                location: self
                    .path
                    .as_ref()
                    .map_or("roster.toml".into(), |p| p.display().to_string()),
                reason: problems.join("; "),
            })
        }
    }

    /// Refuses a worker whose grant runs its models on a provider this host does not have.
    fn check_providers(&self) -> Result<(), Error> {
        for w in &self.workers {
            if let Some(provider) = w
                .grant
                .capabilities
                .inference
                .as_ref()
                .and_then(|i| i.provider.as_deref())
                && !self.inference.knows(provider)
            {
                return Err(Error::Config {
                    location: w.path.display().to_string(),
                    reason: format!(
                        "the grant runs models on provider `{provider}`, which is not among this host's [inference.providers]"
                    ),
                });
            }
        }
        Ok(())
    }
}

fn default_executors() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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
    let manifest = Manifest::load(&manifest_path)?;
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
                .compile(object, schema)
                .map_err(|reason| problem(path, &text, Some(spec.span()), reason))?
        }
    };
    let section =
        |span: Option<std::ops::Range<usize>>, reason: String| problem(path, &text, span, reason);
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const MANIFEST: &str = "[plugin]\nid = \"t.w\"\nname = \"w\"\nversion = \"1.0.0\"\ndomain = \"revenue\"\ndescription = \"d\"\n[owners]\nbusiness = \"b\"\ntechnical = \"t\"\n[capabilities.records.objects.lead]\nread = [\"*\"]\n";
    const GRANT: &str =
        "[grant]\nplugin = \"t.w\"\n[capabilities.records.objects.lead]\nread = [\"*\"]\n";

    fn setup(worker: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "worker.toml", MANIFEST);
        write(dir.path(), "grant.toml", GRANT);
        write(dir.path(), "w.wasm", "not checked here");
        write(dir.path(), "w.toml", worker);
        let host = write(
            dir.path(),
            "roster.toml",
            "plan = \"starter\"\nworkers = [\"w.toml\"]\n[[principals]]\nid = \"svc\"\nsees = \"all\"\n",
        );
        (dir, host)
    }

    const WORKER: &str = "[worker]\nname = \"w\"\ncomponent = \"w.wasm\"\nmanifest = \"worker.toml\"\ngrant = \"grant.toml\"\nprincipal = \"svc\"\n\n[[triggers]]\non = \"record-created\"\nobject = \"lead\"\n\n[conditions]\nfield = \"status\"\nop = \"equals\"\nvalue = \"new\"\n";

    #[test]
    fn a_valid_configuration_loads() {
        let (_d, host) = setup(WORKER);
        let c = HostConfig::load(&host).unwrap();
        assert_eq!(c.plan.executions_per_hour, 500);
        assert_eq!(
            c.max_limits.actions, 5,
            "the plan caps actions per execution"
        );
        assert_eq!(c.workers[0].grant.grant.principal, "svc");
        assert_eq!(c.workers[0].triggers.len(), 1);
    }

    #[test]
    fn problems_name_the_file_line_and_reason() {
        let (_d, host) =
            setup(&WORKER.replace("object = \"lead\"", "object = \"lead\"\nfields = [\"x\"]"));
        let err = HostConfig::load(&host).unwrap_err().to_string();
        assert!(err.contains("w.toml:8"), "{err}");
        assert!(err.contains("does not apply"), "{err}");

        let (_d, host) = setup(&WORKER.replace("value = \"new\"", "value = 5\nextra = 1"));
        let err = HostConfig::load(&host).unwrap_err().to_string();
        assert!(err.contains("w.toml:"), "{err}");
        assert!(err.contains("unknown field `extra`"), "{err}");

        let (_d, host) = setup(&WORKER.replace("principal = \"svc\"", "principal = \"ghost\""));
        let err = HostConfig::load(&host).unwrap_err().to_string();
        assert!(err.contains("principal `ghost`"), "{err}");

        let (d, host) = setup(WORKER);
        std::fs::write(&host, "plan = \"platinum\"\n").unwrap();
        let err = HostConfig::load(&host).unwrap_err().to_string();
        assert!(err.contains("plan `platinum` is not defined"), "{err}");
        std::fs::write(&host, "listen = 7878\n").unwrap();
        let err = HostConfig::load(&host).unwrap_err().to_string();
        assert!(err.contains("roster.toml:1:"), "{err}");
        drop(d);
    }
}
