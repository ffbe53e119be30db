//! Delivery of notifications from the outbox through connectors.
//!
//! A notification on any channel but `in-app` is queued for delivery in the same
//! transaction that puts it in the outbox. The deliverer takes due deliveries whose
//! channel has a connector, sends each, and records the result: delivered, or failed with
//! the next attempt scheduled by backoff (1 s, 5 s, 30 s, 2 min, 10 min, then hourly) until
//! [`MAX_ATTEMPTS`]. Every delivery carries the notification's id — derived from the
//! action's idempotency key — so a delivery repeated after a crash (sent, but not yet
//! recorded as sent) is recognisable by the receiver: as `Idempotency-Key` on webhooks and
//! as the `Message-ID` of email. Channels without a connector keep their deliveries queued
//! until one is configured.
//!
//! Connectors here: email over SMTP (`[smtp]`), Slack and Teams incoming webhooks and SMS
//! through an HTTP provider ([`messaging`], `[connectors]`), and webhooks (the `webhook`
//! channel, used for alerts, HMAC-signed like inbound webhooks). `in-app` notifications
//! stay in the outbox, which is the in-app notification centre.

pub mod messaging;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::governance::directory::Directory;
use crate::net::HttpClient;
use crate::scope::HttpScope;
use crate::store::{OutboxEntry, Store};

/// Attempts before a delivery is given up (and left failed in the delivery log).
pub const MAX_ATTEMPTS: u32 = 12;

/// The delay before the `n`th retry of a delivery (from 1).
pub fn backoff_ms(n: u32) -> i64 {
    match n {
        0 | 1 => 1_000,
        2 => 5_000,
        3 => 30_000,
        4 => 120_000,
        5 => 600_000,
        _ => 3_600_000,
    }
}

/// One audit webhook as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditWebhookSettings {
    /// Where entries are POSTed (JSON, in batches).
    pub url: String,
    /// The environment variable holding the HMAC secret that signs each push.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// An audit webhook with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditWebhook {
    /// Where entries go.
    pub url: String,
    /// The signing secret.
    pub secret: Option<String>,
}

/// How the host sends email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmtpSettings {
    /// The SMTP server.
    pub host: String,
    /// Its port (587 by default).
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// `starttls` (the default), `tls` (implicit TLS) or `none` (loopback relays only).
    #[serde(default = "starttls")]
    pub tls: String,
    /// The sender address.
    pub from: String,
    /// The environment variable holding the user name, if the server needs one.
    #[serde(default)]
    pub username_env: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

fn smtp_port() -> u16 {
    587
}
fn starttls() -> String {
    "starttls".into()
}

/// `[smtp]` with its secrets read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// The settings as written.
    pub settings: SmtpSettings,
    /// The credentials, when configured.
    pub credentials: Option<(String, String)>,
}

/// The connectors configured on this host.
pub struct Connectors {
    smtp: Option<Smtp>,
    messaging: messaging::Messaging,
    webhook_secret: Option<String>,
    http: Arc<HttpClient>,
    directory: Arc<Directory>,
}

impl Connectors {
    /// The connectors of a host: email (when `[smtp]` is set), the messaging channels,
    /// and webhooks signed with `webhook_secret`.
    pub fn new(
        smtp: Option<Smtp>,
        messaging: messaging::Messaging,
        webhook_secret: Option<String>,
        http: Arc<HttpClient>,
        directory: Arc<Directory>,
    ) -> Self {
        Connectors {
            smtp,
            messaging,
            webhook_secret,
            http,
            directory,
        }
    }

    /// Whether a channel has a connector.
    pub fn handles(&self, channel: &str) -> bool {
        match channel {
            "email" => self.smtp.is_some(),
            "webhook" => true,
            other => self.messaging.handles(other),
        }
    }

    /// Delivers one notification.
    pub fn deliver(&self, entry: &OutboxEntry) -> Result<String, String> {
        match entry.channel.as_str() {
            "email" => self.email(entry),
            "webhook" => self.webhook(entry),
            other if self.messaging.handles(other) => self.messaging.deliver(&self.http, entry),
            other => Err(format!("no connector for channel `{other}`")),
        }
    }

    fn email(&self, entry: &OutboxEntry) -> Result<String, String> {
        use lettre::message::{Mailbox, header::ContentType};
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{Message, SmtpTransport, Transport};

        let smtp = self.smtp.as_ref().ok_or("no [smtp] configured")?;
        let s = &smtp.settings;
        let from: Mailbox = s.from.parse().map_err(|e| format!("smtp.from: {e}"))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(entry.subject.clone().unwrap_or_else(|| "Roster".into()))
            .message_id(Some(message_id(&entry.id)))
            .header(ContentType::TEXT_PLAIN);
        let mut to = Vec::new();
        for r in &entry.recipients {
            let address = self
                .directory
                .email_of(r)
                .ok_or_else(|| format!("`{r}` has no email address"))?;
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| format!("`{address}` is not an address: {e}"))?;
            builder = builder.to(mailbox);
            to.push(address);
        }
        let message = builder
            .body(entry.body.clone())
            .map_err(|e| format!("building the message: {e}"))?;
        let mut transport = match s.tls.as_str() {
            "none" => SmtpTransport::builder_dangerous(&s.host),
            "tls" => SmtpTransport::relay(&s.host).map_err(|e| e.to_string())?,
            _ => SmtpTransport::starttls_relay(&s.host).map_err(|e| e.to_string())?,
        }
        .port(s.port)
        .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = &smtp.credentials {
            transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
        }
        transport
            .build()
            .send(&message)
            .map_err(|e| format!("SMTP {}:{}: {e}", s.host, s.port))?;
        Ok(format!("emailed {}", to.join(", ")))
    }

    fn webhook(&self, entry: &OutboxEntry) -> Result<String, String> {
        let url = entry.recipients.first().ok_or("no webhook URL")?;
        post_signed(
            &self.http,
            url,
            entry.body.clone().into_bytes(),
            &entry.id,
            self.webhook_secret.as_deref(),
        )
    }
}

/// POSTs `body` with `headers` to an operator-configured URL (which may be an internal
/// address: an admin configured it) and returns the status; no redirects are followed.
pub fn post(
    http: &HttpClient,
    url: &str,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
) -> Result<u16, String> {
    let (scope, origin) = HttpScope::for_configured_url(url, 64 * 1024, 0, 10_000)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Errors name the origin only: webhook URLs carry credentials in their path.
    http.send(
        &scope,
        &http::Method::POST,
        url,
        &headers,
        Some(body),
        deadline,
        None,
    )
    .map(|fetched| fetched.status)
    .map_err(|e| format!("{origin}: {e:?}"))
}

/// POSTs a JSON body to an operator-configured URL with an idempotency key, signed like
/// inbound webhooks (`x-roster-timestamp`, `x-roster-signature`) when a secret is given.
/// A 2xx is success.
pub fn post_signed(
    http: &HttpClient,
    url: &str,
    body: Vec<u8>,
    idempotency_key: &str,
    secret: Option<&str>,
) -> Result<String, String> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            crate::net::IDEMPOTENCY_HEADER.to_string(),
            idempotency_key.to_string(),
        ),
    ];
    if let Some(secret) = secret {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        headers.push((
            crate::webhook::TIMESTAMP_HEADER.to_string(),
            timestamp.to_string(),
        ));
        headers.push((
            crate::webhook::SIGNATURE_HEADER.to_string(),
            crate::webhook::sign(secret, timestamp, &body),
        ));
    }
    let status = post(http, url, body, headers)?;
    if (200..300).contains(&status) {
        Ok(format!("{url} answered {status}"))
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// A `Message-ID` made of a notification's id.
fn message_id(id: &str) -> String {
    let local: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{local}@roster.invalid>")
}

/// Delivers what is due, at most `limit` notifications; returns how many were attempted.
pub fn deliver_due(store: &Store, connectors: &Connectors, now: i64, limit: usize) -> usize {
    let due = match store.due_deliveries(now, limit, |c| connectors.handles(c)) {
        Ok(due) => due,
        Err(e) => {
            tracing::error!("reading deliveries: {e}");
            return 0;
        }
    };
    let count = due.len();
    for (entry, mut delivery) in due {
        delivery.attempts += 1;
        delivery.last_at = Some(now);
        match connectors.deliver(&entry) {
            Ok(result) => {
                delivery.delivered_at = Some(now);
                delivery.result = Some(result);
                delivery.error = None;
            }
            Err(error) => {
                tracing::warn!(
                    "delivering {} ({}) failed: {error}",
                    entry.id,
                    entry.channel
                );
                delivery.error = Some(error);
                if delivery.attempts >= MAX_ATTEMPTS {
                    delivery.gave_up = true;
                } else {
                    delivery.next_at = now + backoff_ms(delivery.attempts);
                }
            }
        }
        if let Err(e) = store.record_delivery(&entry.id, delivery) {
            tracing::error!("recording delivery of {}: {e}", entry.id);
        }
    }
    count
}

/// How many audit entries one push carries.
const AUDIT_BATCH: usize = 100;

/// Pushes audit entries after each webhook's cursor, one batch per call and webhook, and
/// advances the cursor only on a 2xx; returns how many entries were delivered. `retry_at`
/// holds each webhook's backoff (attempts, not before). Runs on its own thread: a slow or
/// failing receiver never holds up an execution.
pub fn push_audit(
    store: &Store,
    http: &HttpClient,
    hooks: &[AuditWebhook],
    retry_at: &mut std::collections::HashMap<String, (u32, i64)>,
    now: i64,
) -> usize {
    let mut delivered = 0;
    for hook in hooks {
        let cursor_name = format!("audit-push\u{1f}{}", hook.url);
        if retry_at.get(&hook.url).is_some_and(|(_, at)| *at > now) {
            continue;
        }
        let cursor = match store.counter(&cursor_name) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reading the audit push cursor: {e}");
                continue;
            }
        };
        let query = crate::store::AuditQuery {
            after: Some(cursor),
            ..Default::default()
        };
        let mut batch = Vec::new();
        let scanned = store.audit_scan(&query, |e, raw, hash| {
            batch.push((e.seq, crate::store::export_item(e.seq, raw, hash)));
            batch.len() < AUDIT_BATCH
        });
        if let Err(e) = scanned {
            tracing::error!("reading the audit trail: {e}");
            continue;
        }
        let (Some(first), Some(last)) = (batch.first().map(|b| b.0), batch.last().map(|b| b.0))
        else {
            continue;
        };
        let entries: Vec<serde_json::Value> = batch.into_iter().map(|(_, v)| v).collect();
        let count = entries.len();
        let body = serde_json::json!({ "entries": entries })
            .to_string()
            .into_bytes();
        let key = format!("audit/{first}-{last}");
        match post_signed(http, &hook.url, body, &key, hook.secret.as_deref()) {
            Ok(_) => {
                if let Err(e) = store.set_counter(&cursor_name, last) {
                    tracing::error!("advancing the audit push cursor: {e}");
                }
                retry_at.remove(&hook.url);
                delivered += count;
            }
            Err(error) => {
                let attempts = retry_at.get(&hook.url).map_or(0, |(n, _)| *n) + 1;
                tracing::warn!(
                    "pushing audit entries {first}..{last} to {}: {error}",
                    hook.url
                );
                retry_at.insert(hook.url.clone(), (attempts, now + backoff_ms(attempts)));
            }
        }
    }
    delivered
}
