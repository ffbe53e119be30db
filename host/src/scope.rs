//! Capability scopes: what a worker may touch inside each capability.
//!
//! The same types describe what a plugin's manifest *requests* and what an admin's grant
//! *grants*; [`Scopes::exceeding`] tells where a grant goes beyond a request. Each scope
//! answers the per-call questions its capability asks (may this field be written? may this
//! recipient be addressed?); the capability files do the asking.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The scopes of all capabilities. A capability that is `None` is not requested / not granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scopes {
    /// Records of the system of record.
    pub records: Option<RecordsScope>,
    /// Notifications.
    pub notify: Option<NotifyScope>,
    /// Outbound HTTP.
    pub http: Option<HttpScope>,
    /// Per-worker persistent memory.
    pub memory: Option<MemoryScope>,
    /// Signals to other workers.
    pub signals: Option<SignalsScope>,
    /// Models: classification, scoring, drafting.
    pub inference: Option<InferenceScope>,
    /// External data providers.
    pub enrichment: Option<EnrichmentScope>,
}

/// The capabilities a grant can cover, by the names used in manifests and grant files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapabilityName {
    /// `roster:records/records`
    Records,
    /// `roster:notify/notify`
    Notify,
    /// `roster:http/outbound`
    Http,
    /// `roster:memory/store`
    Memory,
    /// `roster:signals/signals`
    Signals,
    /// `roster:inference/inference`
    Inference,
    /// `roster:enrichment/lookup`
    Enrichment,
}

impl CapabilityName {
    /// Every capability, in a stable order.
    pub const ALL: [CapabilityName; 7] = [
        CapabilityName::Records,
        CapabilityName::Notify,
        CapabilityName::Http,
        CapabilityName::Memory,
        CapabilityName::Signals,
        CapabilityName::Inference,
        CapabilityName::Enrichment,
    ];

    /// The name used in manifests and grant files.
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityName::Records => "records",
            CapabilityName::Notify => "notify",
            CapabilityName::Http => "http",
            CapabilityName::Memory => "memory",
            CapabilityName::Signals => "signals",
            CapabilityName::Inference => "inference",
            CapabilityName::Enrichment => "enrichment",
        }
    }

    /// The WIT interface (without version) that a component imports to use it.
    pub fn interface(self) -> &'static str {
        match self {
            CapabilityName::Records => "roster:records/records",
            CapabilityName::Notify => "roster:notify/notify",
            CapabilityName::Http => "roster:http/outbound",
            CapabilityName::Memory => "roster:memory/store",
            CapabilityName::Signals => "roster:signals/signals",
            CapabilityName::Inference => "roster:inference/inference",
            CapabilityName::Enrichment => "roster:enrichment/lookup",
        }
    }
}

impl fmt::Display for CapabilityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Scopes {
    /// Whether a capability is present in these scopes.
    pub fn has(&self, cap: CapabilityName) -> bool {
        match cap {
            CapabilityName::Records => self.records.is_some(),
            CapabilityName::Notify => self.notify.is_some(),
            CapabilityName::Http => self.http.is_some(),
            CapabilityName::Memory => self.memory.is_some(),
            CapabilityName::Signals => self.signals.is_some(),
            CapabilityName::Inference => self.inference.is_some(),
            CapabilityName::Enrichment => self.enrichment.is_some(),
        }
    }

    /// Checks every pattern and origin in the scopes; returns each problem found.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(http) = &self.http {
            for origin in &http.allow {
                if let Err(e) = origin.parsed() {
                    problems.push(format!("http.allow: {e}"));
                }
            }
        }
        if let Some(notify) = &self.notify
            && notify.channels.is_empty()
        {
            problems.push("notify.channels: list at least one channel".into());
        }
        if let Some(inference) = &self.inference {
            if inference.models.is_empty() {
                problems.push("inference.models: list at least one model".into());
            }
            for m in &inference.models {
                if !valid_model_name(m) {
                    problems.push(format!(
                        "inference.models: `{m}` is not a model name (letters, digits, `-`, `_`, `.`, up to 64)"
                    ));
                }
            }
        }
        problems
    }

    /// Describes everything in `self` (a grant) that `requested` (a manifest) does not ask for.
    pub fn exceeding(&self, requested: &Scopes) -> Vec<String> {
        self.beyond(requested, "granted", "requested")
    }

    /// Describes everything in `self` (a newer manifest) that `granted` (the grant in
    /// force) does not cover.
    pub fn asking_beyond(&self, granted: &Scopes) -> Vec<String> {
        self.beyond(granted, "requested", "granted")
    }

    /// Everything in `self` (`ours`) that `theirs` does not cover.
    fn beyond(&self, other: &Scopes, ours: &str, theirs: &str) -> Vec<String> {
        let requested = other;
        let mut out = Vec::new();
        for cap in CapabilityName::ALL {
            if self.has(cap) && !requested.has(cap) {
                out.push(format!("capability `{cap}` is {ours} but not {theirs}"));
            }
        }
        if let (Some(g), Some(r)) = (&self.records, &requested.records) {
            for (object, scope) in &g.objects {
                let Some(req) = r.objects.get(object) else {
                    out.push(format!("records: object `{object}` is not {theirs}"));
                    continue;
                };
                for f in &scope.read {
                    if !req.may_read(f) {
                        out.push(format!("records: reading `{object}.{f}` is not {theirs}"));
                    }
                }
                for f in &scope.write {
                    if !req.may_write(f) {
                        out.push(format!("records: writing `{object}.{f}` is not {theirs}"));
                    }
                }
                if scope.create && !req.create {
                    out.push(format!("records: creating `{object}` is not {theirs}"));
                }
                if scope.delete && !req.delete {
                    out.push(format!("records: deleting `{object}` is not {theirs}"));
                }
            }
        }
        if let (Some(g), Some(r)) = (&self.notify, &requested.notify) {
            for c in &g.channels {
                if !r.channels.contains(c) {
                    out.push(format!("notify: channel `{}` is not {theirs}", c.as_str()));
                }
            }
        }
        if let (Some(g), Some(r)) = (&self.http, &requested.http) {
            for o in &g.allow {
                let covered = r.allow.iter().any(|ro| {
                    ro.parsed().ok() == o.parsed().ok() && (ro.allow_private || !o.allow_private)
                });
                if !covered {
                    out.push(format!("http: origin `{}` is not {theirs}", o.url));
                }
            }
        }
        if let (Some(g), Some(r)) = (&self.inference, &requested.inference) {
            for m in &g.models {
                if !r.models.contains(m) {
                    out.push(format!("inference: model `{m}` is not {theirs}"));
                }
            }
            if g.learn && !r.learn {
                out.push(format!("inference: teaching models is not {theirs}"));
            }
            if g.calls_per_day > r.calls_per_day {
                out.push(format!(
                    "inference: {} calls a day exceeds the {theirs} {}",
                    g.calls_per_day, r.calls_per_day
                ));
            }
        }
        if let (Some(g), Some(r)) = (&self.enrichment, &requested.enrichment) {
            for p in &g.providers {
                if !r.providers.contains(p) {
                    out.push(format!("enrichment: provider `{p}` is not {theirs}"));
                }
            }
        }
        if let (Some(g), Some(r)) = (&self.memory, &requested.memory)
            && g.quota_bytes > r.quota_bytes
        {
            out.push(format!(
                "memory: quota {} bytes exceeds the {theirs} {}",
                g.quota_bytes, r.quota_bytes
            ));
        }
        out
    }
}

/// Access to records: per object type, the readable and writable fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordsScope {
    /// Object type (`lead`, `opportunity`, a custom object) → what may be done with it.
    #[serde(default)]
    pub objects: BTreeMap<String, ObjectScope>,
}

/// What a worker may do with one object type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectScope {
    /// Readable fields; `"*"` means every field.
    #[serde(default)]
    pub read: Vec<String>,
    /// Writable fields (on create and update); `"*"` means every field.
    #[serde(default)]
    pub write: Vec<String>,
    /// Whether records of this type may be created.
    #[serde(default)]
    pub create: bool,
    /// Whether records of this type may be deleted.
    #[serde(default)]
    pub delete: bool,
}

impl ObjectScope {
    /// Whether `field` may be read.
    pub fn may_read(&self, field: &str) -> bool {
        self.read.iter().any(|f| f == "*" || f == field)
    }

    /// Whether `field` may be written.
    pub fn may_write(&self, field: &str) -> bool {
        // Handing a record to someone else is granted by name only, never by `*`.
        if field == OWNER {
            return self.write.iter().any(|f| f == OWNER);
        }
        self.write.iter().any(|f| f == "*" || f == field)
    }
}

/// The field of an update that hands the record to another principal (assignment and
/// routing). A scope's `write` must name it: `*` does not include it.
pub const OWNER: &str = "owner";

impl RecordsScope {
    /// The scope of one object type, if it is granted at all.
    pub fn object(&self, object: &str) -> Option<&ObjectScope> {
        self.objects.get(object)
    }
}

/// A notification channel, as named in manifests and grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Email.
    Email,
    /// Text message.
    Sms,
    /// Slack.
    Slack,
    /// Microsoft Teams.
    Teams,
    /// The in-app notification centre.
    InApp,
}

impl Channel {
    /// The channel's name in manifests and grants.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Slack => "slack",
            Channel::Teams => "teams",
            Channel::InApp => "in-app",
        }
    }
}

/// Access to notifications: channels and recipient patterns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifyScope {
    /// Channels that may be used.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Recipient patterns (`*` matches any run of characters, `?` one character), for
    /// example `*@example.com`, `#sales-*` or `+4420*`. Matching ignores ASCII case.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The most recipients one notification may address.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: u32,
}

fn default_max_recipients() -> u32 {
    20
}

impl NotifyScope {
    /// Whether `recipient` matches a granted pattern.
    pub fn may_address(&self, recipient: &str) -> bool {
        let lower = recipient.to_ascii_lowercase();
        self.recipients
            .iter()
            .any(|p| wildmatch::WildMatch::new(&p.to_ascii_lowercase()).matches(&lower))
    }
}

/// Access to outbound HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpScope {
    /// The origins that may be reached.
    #[serde(default)]
    pub allow: Vec<Origin>,
    /// The largest response body accepted, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The most redirects followed for one request.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// The default and maximum timeout of one request, in milliseconds.
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
}

impl HttpScope {
    /// A scope allowing exactly the origin of `url`, an address an admin configured (a
    /// connector, a provider), so private addresses included; returns it with the origin
    /// (`scheme://host:port`, for messages that must not show the URL's secrets).
    pub fn for_configured_url(
        url: &str,
        max_response_bytes: u64,
        max_redirects: u32,
        timeout_ms: u64,
    ) -> Result<(HttpScope, String), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
        let origin = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or(443)
        );
        let scope = HttpScope {
            allow: vec![Origin {
                url: origin.clone(),
                allow_private: true,
            }],
            max_response_bytes,
            max_redirects,
            timeout_ms,
        };
        Ok((scope, origin))
    }
}

fn default_max_response_bytes() -> u64 {
    1 << 20
}
fn default_max_redirects() -> u32 {
    5
}
fn default_http_timeout_ms() -> u64 {
    10_000
}

/// One allowed origin: a scheme, host and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Origin {
    /// `scheme://host[:port]`, for example `https://api.example.com` (port defaults to the
    /// scheme's). A host may start with `*.` to allow its subdomains.
    pub url: String,
    /// Whether private, loopback, link-local and metadata addresses may be reached through
    /// this origin. Off unless an admin turns it on for an internal service.
    #[serde(default)]
    pub allow_private: bool,
}

/// An origin split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host in lower case; may start with `*.`.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Origin {
    /// Parses the origin URL.
    pub fn parsed(&self) -> Result<ParsedOrigin, String> {
        let wildcard = self.url.contains("://*.");
        let probe = self.url.replacen("://*.", "://wildcard-placeholder.", 1);
        let url = url::Url::parse(&probe).map_err(|e| format!("`{}`: {e}", self.url))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("`{}`: only http and https are allowed", self.url));
        }
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(format!(
                "`{}`: give only scheme, host and port (no path, query or credentials)",
                self.url
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("`{}`: no host", self.url))?
            .to_ascii_lowercase();
        let host = if wildcard {
            host.replacen("wildcard-placeholder.", "*.", 1)
        } else {
            host
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("`{}`: no port", self.url))?;
        Ok(ParsedOrigin {
            scheme: url.scheme().to_string(),
            host,
            port,
        })
    }
}

impl ParsedOrigin {
    /// Whether a URL's scheme, host and port fall under this origin.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => self.host == host,
        }
    }
}

/// Access to the worker's persistent memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemoryScope {
    /// The most bytes (keys plus values) the worker may keep.
    #[serde(default = "default_memory_quota")]
    pub quota_bytes: u64,
}

fn default_memory_quota() -> u64 {
    64 * 1024
}

/// Access to signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignalsScope {
    /// Topic patterns that may be emitted, for example `revenue.*`.
    #[serde(default)]
    pub topics: Vec<String>,
}

impl SignalsScope {
    /// Whether `topic` matches a granted pattern.
    pub fn may_emit(&self, topic: &str) -> bool {
        self.topics
            .iter()
            .any(|p| wildmatch::WildMatch::new(p).matches(topic))
    }
}

/// Access to models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InferenceScope {
    /// The models the worker may use, by name (each plugin's models are its own).
    #[serde(default)]
    pub models: Vec<String>,
    /// The provider the models run on: `offline` (built in) or a provider configured in
    /// the host's `[inference.providers]`. An admin's choice: it decides where the text
    /// goes. Absent means the host's default.
    #[serde(default)]
    pub provider: Option<String>,
    /// Whether the worker may teach its models examples (`learn`).
    #[serde(default)]
    pub learn: bool,
    /// The most calls (classify, learn, draft) a day, UTC.
    #[serde(default = "default_inference_calls")]
    pub calls_per_day: u32,
}

fn default_inference_calls() -> u32 {
    10_000
}

/// Access to external data providers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnrichmentScope {
    /// The providers (configured in the host's `[enrichment.providers]`) that may be used.
    #[serde(default)]
    pub providers: Vec<String>,
}

/// Whether `name` can name a model: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> ParsedOrigin {
        Origin {
            url: url.into(),
            allow_private: false,
        }
        .parsed()
        .unwrap()
    }

    #[test]
    fn origins_match_scheme_host_and_port_exactly() {
        let o = origin("https://API.example.com");
        assert!(o.matches("https", "api.example.com", 443));
        assert!(!o.matches("http", "api.example.com", 80));
        assert!(!o.matches("https", "api.example.com", 8443));
        assert!(!o.matches("https", "api.example.com.evil.test", 443));
        let w = origin("https://*.example.com:8443");
        assert!(w.matches("https", "a.example.com", 8443));
        assert!(!w.matches("https", "example.com", 8443));
        assert!(!w.matches("https", "a.example.com.evil", 8443));
    }

    #[test]
    fn origins_with_paths_or_other_schemes_are_rejected() {
        for bad in [
            "ftp://x.test",
            "https://x.test/path",
            "https://u:p@x.test",
            "nonsense",
        ] {
            let err = Origin {
                url: bad.into(),
                allow_private: false,
            }
            .parsed();
            assert!(err.is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn recipients_match_patterns_case_insensitively() {
        let s = NotifyScope {
            channels: vec![Channel::Email],
            recipients: vec!["*@Example.com".into()],
            max_recipients: 5,
        };
        assert!(s.may_address("ann@example.COM"));
        assert!(!s.may_address("ann@example.com.evil.test"));
        assert!(!s.may_address("ann@other.test"));
    }

    #[test]
    fn grant_beyond_request_is_described() {
        let requested: Scopes = toml::from_str(
            "[records.objects.lead]\nread = [\"name\"]\nwrite = []\n[memory]\nquota-bytes = 10\n",
        )
        .unwrap();
        let granted: Scopes = toml::from_str(
            "[records.objects.lead]\nread = [\"name\", \"email\"]\ncreate = true\n[memory]\nquota-bytes = 99\n[signals]\ntopics = [\"x\"]\n",
        )
        .unwrap();
        let over = granted.exceeding(&requested);
        assert!(over.iter().any(|s| s.contains("lead.email")));
        assert!(over.iter().any(|s| s.contains("creating `lead`")));
        assert!(over.iter().any(|s| s.contains("quota 99")));
        assert!(over.iter().any(|s| s.contains("`signals`")));
        assert!(requested.exceeding(&requested).is_empty());
    }
}
