//! The host configuration: `roster.toml` read and checked whole into a [`HostConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::problem;
use super::settings::*;
use super::worker::*;
use crate::config_file;
use crate::delivery::{AuditWebhook, Connectors, Smtp};
use crate::error::Error;
use crate::failure::Escalation;
use crate::governance::directory::Directory;
use crate::sandbox::limits::Limits;
use crate::schema::Schema;

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
    /// The environment variable `api_token` is read from, if any.
    pub api_token_env: Option<String>,
    /// Whom the bootstrap token acts as, when not `root`: the command line names the
    /// local operator (`local:<user>`) when it answers requests on the data directory.
    pub operator: Option<String>,
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
    /// The reference rules deploy the rules worker from (`[registry] rules-plugin`).
    pub rules_plugin: Option<String>,
    /// The registries (`host[:port]`) the API installs from.
    pub registry_sources: Vec<String>,
    /// Where spans are exported (OTLP/HTTP), if anywhere.
    pub otlp_endpoint: Option<String>,
    /// `[value]`: minutes saved per side effect, prices of fuel and time.
    pub value: ValueSettings,
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
            api_token_env: None,
            operator: None,
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
            rules_plugin: None,
            registry_sources: Vec::new(),
            otlp_endpoint: None,
            value: Default::default(),
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
        schema
            .extend_events(&file.events)
            .map_err(|e| bad(format!("events: {e}")))?;
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
        problems.extend(file.value.validate());
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
            rules_plugin: file.registry.rules_plugin.clone(),
            registry_sources: file.registry.sources.clone(),
            otlp_endpoint: file
                .telemetry
                .otlp_endpoint
                .as_deref()
                .map(|e| crate::telemetry::traces_url(e).map(|_| e.to_string()))
                .transpose()
                .map_err(bad)?,
            review_rules: file.review_rules.clone(),
            value: file.value.clone(),
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
            api_token_env: file.api_token_env.clone(),
            operator: None,
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

pub(super) fn default_executors() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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
