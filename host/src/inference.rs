//! Inference: the providers behind `roster:inference`.
//!
//! Two kinds of provider answer a worker's `classify`, `learn` and `draft`:
//!
//! - `offline`, built in and the embedded default: the classifier of [`crate::classifier`], one
//!   model per plugin and model name, kept in the store, learning from the examples a worker
//!   teaches it and from reviewers' decisions on the actions its predictions led to
//!   ([`crate::store::models`]). It does not draft.
//! - OpenAI-compatible chat/completions services configured by the admin under
//!   `[inference.providers.NAME]` in `roster.toml` (URL, model, key from the environment or
//!   the secrets file); see `inference/openai.rs`.
//!
//! Which provider a worker's models run on is the grant's choice (`provider`), else the
//! host's `[inference] default-provider`.

mod openai;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Deserialize;

use crate::classifier::{OFFLINE, Prediction};

use crate::net::HttpClient;
use crate::secrets::Secrets;

/// The fewest and most labels one classification may name.
pub const LABELS: std::ops::RangeInclusive<usize> = 2..=50;

/// The longest text classified or drafted from, in bytes.
pub const MAX_TEXT: usize = 32 * 1024;

/// `[inference]` in `roster.toml`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InferenceSettings {
    /// The provider of grants that name none (`offline` when absent).
    #[serde(default)]
    pub default_provider: Option<String>,
    /// The configured OpenAI-compatible providers, by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
}

/// One `[inference.providers.NAME]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderSettings {
    /// The chat/completions endpoint, for example
    /// `https://api.openai.com/v1/chat/completions`.
    pub url: String,
    /// The model the service runs, for example `gpt-4o-mini`.
    pub model: String,
    /// The environment variable holding the API key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The secrets-file entry holding the API key.
    #[serde(default)]
    pub key_secret: Option<String>,
    /// The longest a call may take, in milliseconds (never past the execution's deadline).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// A configured OpenAI-compatible provider, its key resolved.
#[derive(Clone)]
pub struct Provider {
    /// The endpoint.
    pub url: String,
    /// The model.
    pub model: String,
    /// The API key, if the service needs one.
    pub key: Option<String>,
    /// The longest a call may take, in milliseconds.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The providers of a host.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    /// The provider of grants that name none.
    pub default_provider: String,
    /// The OpenAI-compatible providers, by name.
    pub providers: BTreeMap<String, Provider>,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            default_provider: OFFLINE.to_string(),
            providers: BTreeMap::new(),
        }
    }
}

impl InferenceConfig {
    /// Checks the settings and resolves each provider's key; every problem is named.
    pub fn from_settings(
        settings: &InferenceSettings,
        secrets: &Secrets,
    ) -> Result<InferenceConfig, Vec<String>> {
        let mut problems = Vec::new();
        let mut providers = BTreeMap::new();
        for (name, p) in &settings.providers {
            let what = format!("inference.providers.{name}");
            if name == OFFLINE {
                problems.push(format!("{what}: `offline` is the built-in provider's name"));
                continue;
            }
            match url::Url::parse(&p.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                Ok(_) => problems.push(format!("{what}.url `{}`: use http or https", p.url)),
                Err(e) => problems.push(format!("{what}.url `{}`: {e}", p.url)),
            }
            if p.model.trim().is_empty() {
                problems.push(format!("{what}.model: name the model"));
            }
            if p.timeout_ms == 0 {
                problems.push(format!("{what}.timeout-ms: at least 1"));
            }
            let key = secrets
                .resolve(
                    &format!("{what} key"),
                    p.key_env.as_deref(),
                    p.key_secret.as_deref(),
                )
                .unwrap_or_else(|e| {
                    problems.push(e);
                    None
                });
            providers.insert(
                name.clone(),
                Provider {
                    url: p.url.clone(),
                    model: p.model.clone(),
                    key,
                    timeout_ms: p.timeout_ms,
                },
            );
        }
        let default_provider = settings
            .default_provider
            .clone()
            .unwrap_or_else(|| OFFLINE.to_string());
        if default_provider != OFFLINE && !providers.contains_key(&default_provider) {
            problems.push(format!(
                "inference.default-provider `{default_provider}` is not configured"
            ));
        }
        if problems.is_empty() {
            Ok(InferenceConfig {
                default_provider,
                providers,
            })
        } else {
            Err(problems)
        }
    }

    /// Whether a provider of this name exists.
    pub fn knows(&self, provider: &str) -> bool {
        provider == OFFLINE || self.providers.contains_key(provider)
    }
}

/// Why an inference call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum InferenceError {
    /// The arguments break a rule of the call.
    Invalid(String),
    /// The provider cannot do this (the offline provider does not draft).
    Unsupported(String),
    /// The provider could not be reached or answered badly.
    Unavailable(String),
}

impl std::fmt::Display for InferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InferenceError::Invalid(r)
            | InferenceError::Unsupported(r)
            | InferenceError::Unavailable(r) => f.write_str(r),
        }
    }
}

/// The inference backend of a host: the providers, the store keeping offline models, the
/// HTTP client reaching the others.
#[derive(Clone, Debug)]
pub struct Inference {
    config: Arc<InferenceConfig>,
    store: crate::store::Store,
    http: Arc<HttpClient>,
}

/// Where a call must end: the execution's deadline, and the worker's pause flag.
#[derive(Clone, Copy)]
pub struct Bounds<'a> {
    /// When the execution's wall-clock limit ends.
    pub deadline: Instant,
    /// Set when the worker is paused.
    pub halt: Option<&'a AtomicBool>,
}

impl Inference {
    /// The backend over a store and an HTTP client.
    pub fn new(
        config: InferenceConfig,
        store: crate::store::Store,
        http: Arc<HttpClient>,
    ) -> Inference {
        Inference {
            config: Arc::new(config),
            store,
            http,
        }
    }

    /// The same providers over another store (a staging dataset's).
    pub fn with_store(&self, store: crate::store::Store) -> Inference {
        Inference {
            config: self.config.clone(),
            store,
            http: self.http.clone(),
        }
    }

    /// The providers.
    pub fn config(&self) -> &InferenceConfig {
        &self.config
    }

    /// The provider a grant's models run on.
    pub fn provider_for<'a>(&'a self, granted: Option<&'a str>) -> &'a str {
        granted.unwrap_or(&self.config.default_provider)
    }

    /// Classifies `text` into one of `labels` with `plugin`'s `model` on `provider`.
    pub fn classify(
        &self,
        provider: &str,
        plugin: &str,
        model: &str,
        text: &str,
        labels: &[String],
        bounds: Bounds<'_>,
    ) -> Result<Prediction, InferenceError> {
        check_labels(labels)?;
        check_text(text)?;
        if provider == OFFLINE {
            let model = self
                .store
                .model(plugin, model)
                .map_err(|e| InferenceError::Unavailable(e.to_string()))?
                .unwrap_or_default();
            return Ok(model.predict_among(text, labels));
        }
        let p = self.remote(provider)?;
        openai::classify(&self.http, p, text, labels, bounds)
    }

    /// Teaches `plugin`'s offline `model` that `text` is `label`.
    pub fn learn(
        &self,
        provider: &str,
        plugin: &str,
        model: &str,
        text: &str,
        label: &str,
    ) -> Result<(), InferenceError> {
        check_text(text)?;
        if label.trim().is_empty() || label.len() > 200 {
            return Err(InferenceError::Invalid(
                "a label is 1 to 200 bytes of text".into(),
            ));
        }
        if provider != OFFLINE {
            return Err(InferenceError::Unsupported(format!(
                "provider `{provider}` does not learn examples; only the offline provider does"
            )));
        }
        self.store
            .teach(plugin, model, text, label)
            .map_err(|e| InferenceError::Unavailable(e.to_string()))
    }

    /// Drafts text for `prompt`, at most `max_words` words.
    pub fn draft(
        &self,
        provider: &str,
        prompt: &str,
        max_words: u32,
        bounds: Bounds<'_>,
    ) -> Result<String, InferenceError> {
        check_text(prompt)?;
        if !(1..=2000).contains(&max_words) {
            return Err(InferenceError::Invalid(
                "max-words must be 1 to 2000".into(),
            ));
        }
        if provider == OFFLINE {
            return Err(InferenceError::Unsupported(
                "the offline provider classifies and scores but does not draft text; an admin can grant a generative provider".into(),
            ));
        }
        let p = self.remote(provider)?;
        openai::draft(&self.http, p, prompt, max_words, bounds)
    }

    fn remote(&self, provider: &str) -> Result<&Provider, InferenceError> {
        self.config.providers.get(provider).ok_or_else(|| {
            InferenceError::Unavailable(format!(
                "provider `{provider}` is not configured on this host"
            ))
        })
    }
}

fn check_labels(labels: &[String]) -> Result<(), InferenceError> {
    if !LABELS.contains(&labels.len()) {
        return Err(InferenceError::Invalid(format!(
            "give {} to {} labels ({} given)",
            LABELS.start(),
            LABELS.end(),
            labels.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for l in labels {
        if l.trim().is_empty() || l.len() > 200 {
            return Err(InferenceError::Invalid(
                "a label is 1 to 200 bytes of text".into(),
            ));
        }
        if !seen.insert(l.as_str()) {
            return Err(InferenceError::Invalid(format!(
                "label `{l}` is given twice"
            )));
        }
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), InferenceError> {
    if text.len() > MAX_TEXT {
        return Err(InferenceError::Invalid(format!(
            "the text exceeds {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}
