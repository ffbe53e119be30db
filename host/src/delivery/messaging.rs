//! Messaging connectors: Slack and Microsoft Teams incoming webhooks, and SMS through a
//! configurable HTTP provider.
//!
//! ```toml
//! # roster.toml
//! [[connectors.slack]]
//! channel = "#deals"                  # the channel this webhook posts to; "*" for any other
//! url-env = "SLACK_DEALS_WEBHOOK"     # the webhook URL is a secret: env or secrets file
//!
//! [[connectors.teams]]
//! channel = "*"
//! url-secret = "teams-sales"
//!
//! [connectors.sms]
//! url = "https://sms.example.com/v1/messages"
//! format = "json"                     # or "form" (application/x-www-form-urlencoded)
//! from = "+15550100"
//! auth = "bearer"                     # bearer, basic (username + key) or header
//! key-env = "SMS_API_KEY"
//! [connectors.sms.fields]             # the provider's parameter names
//! to = "to"
//! from = "from"
//! body = "text"
//! ```
//!
//! Webhook URLs and keys come from the environment or the secrets file, never from a
//! manifest or from `roster.toml` itself. Every request carries the notification's id (and
//! recipient) as its idempotency key.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::net::HttpClient;
use crate::secrets::Secrets;
use crate::store::OutboxEntry;

/// `[connectors]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConnectorSettings {
    /// Slack incoming webhooks, one per channel.
    #[serde(default)]
    pub slack: Vec<WebhookRoute>,
    /// Teams incoming webhooks, one per channel.
    #[serde(default)]
    pub teams: Vec<WebhookRoute>,
    /// The SMS provider.
    #[serde(default)]
    pub sms: Option<SmsSettings>,
}

/// One incoming webhook as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookRoute {
    /// The channel it posts to (`#deals`, `Sales`), or `*` for any other channel.
    pub channel: String,
    /// The environment variable holding the webhook URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The secrets-file entry holding the webhook URL.
    #[serde(default)]
    pub url_secret: Option<String>,
}

/// How a request to the SMS provider is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmsFormat {
    /// A JSON object.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// How the SMS provider authenticates requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmsAuth {
    /// `Authorization: Bearer <key>`.
    #[default]
    Bearer,
    /// HTTP Basic with `username` and the key as password.
    Basic,
    /// The key in the header named by `header`.
    Header,
}

/// The SMS provider's parameter names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmsFields {
    /// The recipient's number.
    #[serde(default = "to_field")]
    pub to: String,
    /// The sender.
    #[serde(default = "from_field")]
    pub from: String,
    /// The text.
    #[serde(default = "body_field")]
    pub body: String,
}

fn to_field() -> String {
    "to".into()
}
fn from_field() -> String {
    "from".into()
}
fn body_field() -> String {
    "body".into()
}

impl Default for SmsFields {
    fn default() -> Self {
        SmsFields {
            to: to_field(),
            from: from_field(),
            body: body_field(),
        }
    }
}

/// `[connectors.sms]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmsSettings {
    /// The provider's send endpoint.
    pub url: String,
    /// How requests are encoded.
    #[serde(default)]
    pub format: SmsFormat,
    /// The sender number or name.
    pub from: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: SmsAuth,
    /// The header carrying the key (`auth = "header"`).
    #[serde(default)]
    pub header: Option<String>,
    /// The user name (`auth = "basic"`).
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The secrets-file entry holding the key.
    #[serde(default)]
    pub key_secret: Option<String>,
    /// The parameter names.
    #[serde(default)]
    pub fields: SmsFields,
}

/// A webhook route with its URL resolved.
#[derive(Clone)]
pub struct Route {
    channel: String,
    url: String,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is a credential.
        f.debug_struct("Route")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// The SMS provider with its key resolved.
#[derive(Clone)]
pub struct Sms {
    settings: SmsSettings,
    key: Option<String>,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

/// The messaging connectors of a host, secrets resolved.
#[derive(Debug, Clone, Default)]
pub struct Messaging {
    slack: Vec<Route>,
    teams: Vec<Route>,
    sms: Option<Sms>,
}

fn routes(
    kind: &str,
    written: &[WebhookRoute],
    secrets: &Secrets,
    problems: &mut Vec<String>,
) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for r in written {
        let what = format!("connectors.{kind} `{}`", r.channel);
        if r.channel.trim().is_empty() {
            problems.push(format!("connectors.{kind}: name the channel (or `*`)"));
            continue;
        }
        if out.iter().any(|o| o.channel == r.channel) {
            problems.push(format!("{what}: configured twice"));
        }
        match secrets.resolve(
            &format!("{what} url"),
            r.url_env.as_deref(),
            r.url_secret.as_deref(),
        ) {
            Ok(Some(url)) => match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "https" | "http") => out.push(Route {
                    channel: r.channel.clone(),
                    url,
                }),
                _ => problems.push(format!("{what}: the webhook URL is not an http(s) URL")),
            },
            Ok(None) => problems.push(format!("{what}: give url-env or url-secret")),
            Err(e) => problems.push(e),
        }
    }
    out
}

impl Messaging {
    /// Checks the settings and resolves their secrets; every problem is named.
    pub fn from_settings(
        settings: &ConnectorSettings,
        secrets: &Secrets,
    ) -> Result<Messaging, Vec<String>> {
        let mut problems = Vec::new();
        let slack = routes("slack", &settings.slack, secrets, &mut problems);
        let teams = routes("teams", &settings.teams, secrets, &mut problems);
        let sms = match &settings.sms {
            None => None,
            Some(s) => {
                if !url::Url::parse(&s.url).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) {
                    problems.push(format!("connectors.sms.url `{}`: use http or https", s.url));
                }
                match s.auth {
                    SmsAuth::Header if s.header.is_none() => {
                        problems.push("connectors.sms: auth = \"header\" needs `header`".into())
                    }
                    SmsAuth::Basic if s.username.is_none() => {
                        problems.push("connectors.sms: auth = \"basic\" needs `username`".into())
                    }
                    _ => {}
                }
                let key = secrets
                    .resolve(
                        "connectors.sms key",
                        s.key_env.as_deref(),
                        s.key_secret.as_deref(),
                    )
                    .unwrap_or_else(|e| {
                        problems.push(e);
                        None
                    });
                Some(Sms {
                    settings: s.clone(),
                    key,
                })
            }
        };
        if problems.is_empty() {
            Ok(Messaging { slack, teams, sms })
        } else {
            Err(problems)
        }
    }

    /// Whether a channel has a connector here.
    pub fn handles(&self, channel: &str) -> bool {
        match channel {
            "slack" => !self.slack.is_empty(),
            "teams" => !self.teams.is_empty(),
            "sms" => self.sms.is_some(),
            _ => false,
        }
    }

    /// Delivers one notification on `slack`, `teams` or `sms`.
    pub fn deliver(&self, http: &HttpClient, entry: &OutboxEntry) -> Result<String, String> {
        match entry.channel.as_str() {
            "slack" => self.chat(http, entry, &self.slack, |subject, body| {
                let text = match subject {
                    Some(s) => format!("*{s}*\n{body}"),
                    None => body.to_string(),
                };
                serde_json::json!({ "text": text })
            }),
            "teams" => self.chat(http, entry, &self.teams, |subject, body| {
                serde_json::json!({
                    "@type": "MessageCard",
                    "@context": "https://schema.org/extensions",
                    "summary": subject.unwrap_or("Roster"),
                    "title": subject,
                    "text": body,
                })
            }),
            "sms" => self.sms(http, entry),
            other => Err(format!("no messaging connector for `{other}`")),
        }
    }

    fn chat(
        &self,
        http: &HttpClient,
        entry: &OutboxEntry,
        routes: &[Route],
        body: impl Fn(Option<&str>, &str) -> serde_json::Value,
    ) -> Result<String, String> {
        let mut done = Vec::new();
        for recipient in &entry.recipients {
            let route = routes
                .iter()
                .find(|r| r.channel.eq_ignore_ascii_case(recipient))
                .or_else(|| routes.iter().find(|r| r.channel == "*"))
                .ok_or_else(|| format!("{} has no webhook for `{recipient}`", entry.channel))?;
            let payload = body(entry.subject.as_deref(), &entry.body);
            let status = super::post(
                http,
                &route.url,
                payload.to_string().into_bytes(),
                vec![
                    ("content-type".into(), "application/json".into()),
                    (
                        crate::net::IDEMPOTENCY_HEADER.into(),
                        format!("{}/{recipient}", entry.id),
                    ),
                ],
            )?;
            if !(200..300).contains(&status) {
                return Err(format!(
                    "the {} webhook for `{recipient}` answered {status}",
                    entry.channel
                ));
            }
            done.push(recipient.as_str());
        }
        Ok(format!(
            "posted to {} on {}",
            done.join(", "),
            entry.channel
        ))
    }

    fn sms(&self, http: &HttpClient, entry: &OutboxEntry) -> Result<String, String> {
        let sms = self.sms.as_ref().ok_or("no [connectors.sms] configured")?;
        let s = &sms.settings;
        let mut sent = Vec::new();
        for to in &entry.recipients {
            if !is_phone_number(to) {
                return Err(format!(
                    "`{to}` is not a phone number in E.164 form (+4420...)"
                ));
            }
            let text = match &entry.subject {
                Some(subject) => format!("{subject}: {}", entry.body),
                None => entry.body.clone(),
            };
            let params: BTreeMap<&str, &str> = [
                (s.fields.to.as_str(), to.as_str()),
                (s.fields.from.as_str(), s.from.as_str()),
                (s.fields.body.as_str(), text.as_str()),
            ]
            .into();
            let (content_type, body) = match s.format {
                SmsFormat::Json => (
                    "application/json",
                    serde_json::to_vec(&params).unwrap_or_default(),
                ),
                SmsFormat::Form => (
                    "application/x-www-form-urlencoded",
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params.iter())
                        .finish()
                        .into_bytes(),
                ),
            };
            let mut headers = vec![
                ("content-type".to_string(), content_type.to_string()),
                (
                    crate::net::IDEMPOTENCY_HEADER.to_string(),
                    format!("{}/{to}", entry.id),
                ),
            ];
            if let Some(key) = &sms.key {
                match s.auth {
                    SmsAuth::Bearer => {
                        headers.push(("authorization".into(), format!("Bearer {key}")))
                    }
                    SmsAuth::Basic => {
                        use base64::Engine as _;
                        let user = s.username.clone().unwrap_or_default();
                        let token = base64::engine::general_purpose::STANDARD
                            .encode(format!("{user}:{key}"));
                        headers.push(("authorization".into(), format!("Basic {token}")));
                    }
                    SmsAuth::Header => headers.push((
                        s.header.clone().unwrap_or_default().to_ascii_lowercase(),
                        key.clone(),
                    )),
                }
            }
            let status = super::post(http, &s.url, body, headers)?;
            if !(200..300).contains(&status) {
                return Err(format!("the SMS provider answered {status} for {to}"));
            }
            sent.push(to.as_str());
        }
        Ok(format!("texted {}", sent.join(", ")))
    }
}

/// Whether `s` is a phone number in E.164 form: `+` and 8 to 15 digits.
pub fn is_phone_number(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}
