//! `roster.toml` as written: its sections, the built-in plans and their defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::delivery::{AuditWebhookSettings, SmtpSettings};
use crate::governance::directory::Principal;
use crate::sandbox::limits::LimitsOverride;
use crate::schema::FieldDef;

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

pub(super) fn ninety() -> u32 {
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

/// `[telemetry]`: where the host's spans go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TelemetrySettings {
    /// An OpenTelemetry collector's OTLP/HTTP receiver (`http://host:4318`); spans are
    /// exported only when it is set.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

/// Minutes of a person's work that one performed side effect saves, by
/// `capability.operation` (`records.update`, `notify.send`, ...): `[value] minutes-saved` in
/// `roster.toml` for every worker, and in a worker's file for that worker.
pub type MinutesSaved = BTreeMap<String, f64>;

/// The most minutes one side effect may be counted as saving.
pub const MAX_MINUTES_SAVED: f64 = 10_000.0;

/// Checks a minutes-saved table: keys `capability.operation`, values finite and in range.
pub fn check_minutes_saved(table: &MinutesSaved) -> Vec<String> {
    let mut problems = Vec::new();
    for (kind, minutes) in table {
        let well_formed = kind.split_once('.').is_some_and(|(c, o)| {
            let word = |w: &str| {
                !w.is_empty()
                    && w.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    })
            };
            word(c) && word(o)
        });
        if !well_formed {
            problems.push(format!(
                "value: minutes-saved `{kind}` is not `capability.operation` (like `records.update`)"
            ));
        }
        if !minutes.is_finite() || *minutes < 0.0 || *minutes > MAX_MINUTES_SAVED {
            problems.push(format!(
                "value: minutes-saved `{kind}` = {minutes} is not between 0 and {MAX_MINUTES_SAVED}"
            ));
        }
    }
    problems
}

/// `[value]`: what the value page counts the work of workers as worth and as costing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValueSettings {
    /// Minutes saved per performed side effect, by kind; a worker's file may override
    /// each kind for that worker.
    #[serde(default)]
    pub minutes_saved: MinutesSaved,
    /// The price of a million units of fuel.
    #[serde(default)]
    pub fuel_price: f64,
    /// The price of an hour of execution (wall) time.
    #[serde(default)]
    pub hour_price: f64,
    /// The currency both prices are in.
    #[serde(default = "default_currency")]
    pub currency: String,
}

impl Default for ValueSettings {
    fn default() -> ValueSettings {
        ValueSettings {
            minutes_saved: MinutesSaved::new(),
            fuel_price: 0.0,
            hour_price: 0.0,
            currency: default_currency(),
        }
    }
}

fn default_currency() -> String {
    "USD".into()
}

impl ValueSettings {
    /// What is wrong with the settings, if anything.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = check_minutes_saved(&self.minutes_saved);
        for (name, price) in [
            ("fuel-price", self.fuel_price),
            ("hour-price", self.hour_price),
        ] {
            if !price.is_finite() || !(0.0..=1e9).contains(&price) {
                problems.push(format!("value: {name} = {price} is not between 0 and 1e9"));
            }
        }
        let currency = self.currency.trim();
        if currency.is_empty()
            || currency.chars().count() > 8
            || currency.chars().any(char::is_control)
        {
            problems.push(format!(
                "value: currency `{}` is not a short currency name (like `USD`)",
                self.currency
            ));
        }
        problems
    }
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
    /// The registries (`host[:port]`) the API installs from; `roster install` on the data
    /// directory takes any reference.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The reference each rule's installation of the rules worker comes from; when
    /// absent, the newest tag of a repository named `rules` among the sources.
    #[serde(default)]
    pub rules_plugin: Option<String>,
}

/// `roster.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct HostFile {
    #[serde(default = "default_data_dir")]
    pub(super) data_dir: PathBuf,
    #[serde(default = "default_listen")]
    pub(super) listen: String,
    #[serde(default = "default_plan")]
    pub(super) plan: String,
    #[serde(default)]
    pub(super) plans: BTreeMap<String, Plan>,
    #[serde(default)]
    pub(super) capacity_alert: Option<CapacityAlert>,
    #[serde(default)]
    pub(super) api_token_env: Option<String>,
    #[serde(default)]
    pub(super) webhook_secret_env: Option<String>,
    #[serde(default)]
    pub(super) webhook_tolerance_s: Option<u64>,
    #[serde(default)]
    pub(super) failed_auth_burst: Option<u32>,
    #[serde(default)]
    pub(super) executors: Option<usize>,
    #[serde(default)]
    pub(super) limits: LimitsOverride,
    #[serde(default)]
    pub(super) principals: Vec<Principal>,
    #[serde(default)]
    pub(super) alerts: AlertRouting,
    #[serde(default)]
    pub(super) smtp: Option<SmtpSettings>,
    #[serde(default)]
    pub(super) retention_days: Option<u32>,
    #[serde(default)]
    pub(super) audit: AuditSettings,
    #[serde(default)]
    pub(super) access: AccessSettings,
    #[serde(default)]
    pub(super) registry: RegistrySettings,
    #[serde(default)]
    pub(super) telemetry: TelemetrySettings,
    #[serde(default)]
    pub(super) value: ValueSettings,
    #[serde(default)]
    pub(super) review_rules: Vec<crate::governance::review::Rule>,
    #[serde(default)]
    pub(super) trust: crate::governance::trust::TrustSettings,
    #[serde(default)]
    pub(super) objects: BTreeMap<String, BTreeMap<String, FieldDef>>,
    #[serde(default)]
    pub(super) events: BTreeMap<String, BTreeMap<String, crate::schema::FieldType>>,
    #[serde(default)]
    pub(super) workers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) escalation_paths: Vec<crate::governance::escalation::EscalationPath>,
    #[serde(default)]
    pub(super) connectors: crate::delivery::messaging::ConnectorSettings,
    #[serde(default)]
    pub(super) enrichment: crate::enrichment::EnrichmentSettings,
    #[serde(default)]
    pub(super) inference: crate::inference::InferenceSettings,
}

/// The shipped policies; they are validated by a unit test, so loading them cannot fail.
pub(super) fn builtin_access() -> crate::governance::access::Access {
    crate::governance::access::Access::builtin()
        .unwrap_or_else(|e| unreachable!("shipped policies: {e}"))
}

pub(super) fn default_data_dir() -> PathBuf {
    PathBuf::from(".roster")
}
pub(super) fn default_listen() -> String {
    "127.0.0.1:7878".into()
}
pub(super) fn default_plan() -> String {
    "professional".into()
}
