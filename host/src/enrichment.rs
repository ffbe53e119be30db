//! Enrichment providers behind `roster:enrichment`: external data services configured by
//! the admin, each a URL template and a generic JSON mapping onto fields, within a rate
//! limit and the organisation's monthly credit budget.
//!
//! ```toml
//! # roster.toml
//! [enrichment.providers.company-data]
//! url = "https://api.company-data.example/v2/companies?domain={key}"   # {key} is encoded
//! auth = "bearer"                  # bearer, header (with `header`) or none
//! key-env = "COMPANY_DATA_KEY"     # or key-secret
//! rate-per-minute = 60             # requests to the provider, host-wide
//! credits-per-month = 1000         # the organisation's budget, UTC calendar month
//! cost = 1                         # credits one found answer costs
//! [enrichment.providers.company-data.map]   # field = JSON pointer into the answer
//! employees = "/metrics/employees"
//! industry = "/category/industry"
//! annual_revenue = "/metrics/estimatedAnnualRevenue"
//! ```
//!
//! A 404 is `not-found` and costs nothing; a 429 or a rate limit reached here is
//! `unavailable` (the worker's retry policy tries again later); a spent budget is
//! `budget-exceeded`. Credits are counted in the store, so the budget holds across restarts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::net::HttpClient;
use crate::scope::HttpScope;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::value::FieldValue;

/// `[enrichment]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnrichmentSettings {
    /// The providers, by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
}

/// How a provider authenticates requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    #[default]
    Bearer,
    /// The key in the header named by `header`.
    Header,
    /// No key.
    None,
}

/// One `[enrichment.providers.NAME]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderSettings {
    /// The lookup URL, with `{key}` where the looked-up key goes.
    pub url: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// The header carrying the key (`auth = "header"`).
    #[serde(default)]
    pub header: Option<String>,
    /// The environment variable holding the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The secrets-file entry holding the key.
    #[serde(default)]
    pub key_secret: Option<String>,
    /// Requests a minute, host-wide.
    #[serde(default = "default_rate")]
    pub rate_per_minute: u32,
    /// Credits a calendar month (UTC).
    pub credits_per_month: u32,
    /// Credits one found answer costs.
    #[serde(default = "default_cost")]
    pub cost: u32,
    /// Field name → JSON pointer into the answer.
    pub map: BTreeMap<String, String>,
}

fn default_rate() -> u32 {
    60
}
fn default_cost() -> u32 {
    1
}

/// A provider, its key resolved.
#[derive(Clone)]
pub struct Provider {
    settings: ProviderSettings,
    key: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

/// The providers of a host.
#[derive(Debug, Clone, Default)]
pub struct EnrichmentConfig {
    /// By name.
    pub providers: BTreeMap<String, Provider>,
}

impl EnrichmentConfig {
    /// Checks the settings and resolves keys; every problem is named.
    pub fn from_settings(
        settings: &EnrichmentSettings,
        secrets: &Secrets,
    ) -> Result<EnrichmentConfig, Vec<String>> {
        let mut problems = Vec::new();
        let mut providers = BTreeMap::new();
        for (name, p) in &settings.providers {
            let at = format!("enrichment.providers.{name}");
            if !p.url.contains("{key}") {
                problems.push(format!("{at}.url: put `{{key}}` where the key goes"));
            }
            if !url::Url::parse(&p.url.replace("{key}", "k"))
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                problems.push(format!("{at}.url `{}`: use http or https", p.url));
            }
            if p.auth == Auth::Header && p.header.is_none() {
                problems.push(format!("{at}: auth = \"header\" needs `header`"));
            }
            if p.rate_per_minute == 0 || p.credits_per_month == 0 {
                problems.push(format!(
                    "{at}: rate-per-minute and credits-per-month are at least 1"
                ));
            }
            if p.map.is_empty() {
                problems.push(format!("{at}.map: map at least one field"));
            }
            for (field, pointer) in &p.map {
                if !pointer.starts_with('/') {
                    problems.push(format!(
                        "{at}.map.{field}: `{pointer}` is not a JSON pointer (it starts with `/`)"
                    ));
                }
            }
            let key = secrets
                .resolve(
                    &format!("{at} key"),
                    p.key_env.as_deref(),
                    p.key_secret.as_deref(),
                )
                .unwrap_or_else(|e| {
                    problems.push(e);
                    None
                });
            if key.is_none() && p.auth != Auth::None {
                problems.push(format!(
                    "{at}: give key-env or key-secret (or auth = \"none\")"
                ));
            }
            providers.insert(
                name.clone(),
                Provider {
                    settings: p.clone(),
                    key,
                },
            );
        }
        if problems.is_empty() {
            Ok(EnrichmentConfig { providers })
        } else {
            Err(problems)
        }
    }
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupError {
    /// The provider is not configured.
    Unknown(String),
    /// The key is malformed.
    Invalid(String),
    /// The provider does not know the key.
    NotFound(String),
    /// The month's credits are spent.
    Budget(String),
    /// Rate limited, or the provider failed.
    Unavailable(String),
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Field → value.
    pub fields: Vec<(String, FieldValue)>,
    /// Credits left this month.
    pub credits_left: u32,
}

/// The enrichment backend of a host.
#[derive(Clone, Debug)]
pub struct Enrichment {
    config: Arc<EnrichmentConfig>,
    store: Store,
    http: Arc<HttpClient>,
    /// Request times in the last minute, per provider.
    recent: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

/// `YYYY-MM` of a time in milliseconds (UTC).
fn month(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m")
        .to_string()
}

fn value(v: &serde_json::Value) -> Option<FieldValue> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(FieldValue::Text(s.clone())),
        serde_json::Value::Number(n) => Some(match n.as_i64() {
            Some(i) => FieldValue::Integer(i),
            None => FieldValue::Number(n.as_f64()?),
        }),
        serde_json::Value::Bool(b) => Some(FieldValue::Boolean(*b)),
        serde_json::Value::Array(items) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect();
            texts.filter(|t| !t.is_empty()).map(FieldValue::TextList)
        }
        _ => None,
    }
}

impl Enrichment {
    /// The backend over a store and an HTTP client.
    pub fn new(config: EnrichmentConfig, store: Store, http: Arc<HttpClient>) -> Enrichment {
        Enrichment {
            config: Arc::new(config),
            store,
            http,
            recent: Arc::default(),
        }
    }

    /// The same providers over another store (a staging dataset's).
    pub fn with_store(&self, store: Store) -> Enrichment {
        Enrichment {
            store,
            ..self.clone()
        }
    }

    /// Whether a provider of this name is configured.
    pub fn knows(&self, provider: &str) -> bool {
        self.config.providers.contains_key(provider)
    }

    fn take_rate(&self, provider: &str, per_minute: u32) -> bool {
        let Ok(mut recent) = self.recent.lock() else {
            return false;
        };
        let now = Instant::now();
        let q = recent.entry(provider.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= per_minute as usize {
            return false;
        }
        q.push_back(now);
        true
    }

    /// Looks `key` up with `provider`, ending by `deadline`.
    pub fn lookup(
        &self,
        provider: &str,
        key: &str,
        deadline: Instant,
        halt: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<Found, LookupError> {
        let p = self.config.providers.get(provider).ok_or_else(|| {
            LookupError::Unknown(format!(
                "provider `{provider}` is not configured on this host"
            ))
        })?;
        let s = &p.settings;
        if key.trim().is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
            return Err(LookupError::Invalid(
                "a key is 1 to 256 characters without control characters".into(),
            ));
        }
        let budget_key = format!(
            "enrichment-credits\u{1f}{provider}\u{1f}{}",
            month(self.store.clock().now_ms())
        );
        let used = self
            .store
            .counter(&budget_key)
            .map_err(|e| LookupError::Unavailable(e.to_string()))?;
        if used + u64::from(s.cost) > u64::from(s.credits_per_month) {
            return Err(LookupError::Budget(format!(
                "the {} credits of `{provider}` for this month are spent",
                s.credits_per_month
            )));
        }
        if !self.take_rate(provider, s.rate_per_minute) {
            return Err(LookupError::Unavailable(format!(
                "`{provider}` allows {} requests a minute; try again later",
                s.rate_per_minute
            )));
        }
        let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let url = s.url.replace("{key}", &encoded);
        let (scope, origin) = HttpScope::for_configured_url(&url, 256 * 1024, 2, 10_000)
            .map_err(LookupError::Invalid)?;
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        match (s.auth, &p.key) {
            (Auth::Bearer, Some(k)) => {
                headers.push(("authorization".into(), format!("Bearer {k}")))
            }
            (Auth::Header, Some(k)) => headers.push((
                s.header.clone().unwrap_or_default().to_ascii_lowercase(),
                k.clone(),
            )),
            _ => {}
        }
        let fetched = self
            .http
            .send(
                &scope,
                &http::Method::GET,
                &url,
                &headers,
                None,
                deadline,
                halt,
            )
            .map_err(|e| LookupError::Unavailable(format!("{origin}: {e:?}")))?;
        match fetched.status {
            200..=299 => {}
            404 => {
                return Err(LookupError::NotFound(format!(
                    "`{provider}` does not know `{key}`"
                )));
            }
            429 => {
                return Err(LookupError::Unavailable(format!(
                    "`{provider}` is rate limiting; try again later"
                )));
            }
            status => {
                return Err(LookupError::Unavailable(format!(
                    "`{provider}` answered {status}"
                )));
            }
        }
        let answer: serde_json::Value = serde_json::from_slice(&fetched.body).map_err(|e| {
            LookupError::Unavailable(format!("`{provider}` answered with no JSON: {e}"))
        })?;
        let fields: Vec<(String, FieldValue)> = s
            .map
            .iter()
            .filter_map(|(field, pointer)| {
                answer
                    .pointer(pointer)
                    .and_then(value)
                    .map(|v| (field.clone(), v))
            })
            .collect();
        let spent = self
            .store
            .add_to_counter(&budget_key, u64::from(s.cost))
            .map_err(|e| LookupError::Unavailable(e.to_string()))?;
        Ok(Found {
            fields,
            credits_left: u64::from(s.credits_per_month).saturating_sub(spent) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_onto_fields_and_months_are_utc() {
        assert_eq!(
            value(&serde_json::json!(1200)),
            Some(FieldValue::Integer(1200))
        );
        assert_eq!(
            value(&serde_json::json!(2.5)),
            Some(FieldValue::Number(2.5))
        );
        assert_eq!(value(&serde_json::json!("")), None);
        assert_eq!(
            value(&serde_json::json!(["saas", "b2b"])),
            Some(FieldValue::TextList(vec!["saas".into(), "b2b".into()]))
        );
        assert_eq!(value(&serde_json::json!({"a": 1})), None);
        assert_eq!(month(1_800_000_000_000), "2027-01");
    }

    #[test]
    fn the_rate_limit_counts_requests_in_the_last_minute_per_provider() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("roster.redb")).unwrap();
        let e = Enrichment::new(
            EnrichmentConfig::default(),
            store,
            Arc::new(HttpClient::new().unwrap()),
        );
        assert!(e.take_rate("a", 2));
        assert!(e.take_rate("a", 2));
        assert!(
            !e.take_rate("a", 2),
            "the third request within the minute waits"
        );
        assert!(e.take_rate("b", 2), "each provider has its own limit");
    }

    #[test]
    fn provider_settings_are_checked_whole() {
        let settings: EnrichmentSettings = toml::from_str(
            "[providers.x]\nurl = \"ftp://x.example/{key}\"\nauth = \"header\"\ncredits-per-month = 0\n[providers.x.map]\nemployees = \"metrics/employees\"\n",
        )
        .unwrap();
        let problems = EnrichmentConfig::from_settings(&settings, &Secrets::none()).unwrap_err();
        for expected in [
            "use http or https",
            "needs `header`",
            "at least 1",
            "not a JSON pointer",
            "give key-env or key-secret",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
