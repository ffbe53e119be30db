//! Commands that talk to a running `roster serve` over its HTTP API: `events send` (a
//! signed webhook call), `queue status` and `workers pause|resume` (with the API token).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::clock::{Clock, SystemClock};
use crate::config::HostConfig;
use crate::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// `roster events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Send a named event (email opened, form submitted, meeting booked, ...).
    Send {
        /// The event name.
        name: String,
        /// The object type of the record it is about.
        #[arg(long)]
        object: Option<String>,
        /// The record's id.
        #[arg(long)]
        record_id: Option<String>,
        /// Extra data, as JSON.
        #[arg(long)]
        payload: Option<String>,
        /// The event's id in the source system.
        #[arg(long)]
        id: Option<String>,
    },
}

/// `roster queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Show how many triggers are queued, running, delayed or waiting for capacity.
    Status,
}

fn config(path: &Path) -> anyhow::Result<HostConfig> {
    if !path.is_file() {
        bail!(
            "{} does not exist: these commands talk to the service it configures",
            path.display()
        );
    }
    Ok(HostConfig::load(path)?)
}

/// Sends one request to the service and returns the status and body.
fn request(
    config: &HostConfig,
    method: http::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(config.listen)
            .await
            .with_context(|| {
                format!(
                    "connecting to {} (is `roster serve` running?)",
                    config.listen
                )
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, config.listen.to_string())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let response = sender
            .send_request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    })
}

pub(super) fn events(config_path: &Path, command: EventsCommand) -> anyhow::Result<ExitCode> {
    let config = config(config_path)?;
    let EventsCommand::Send {
        name,
        object,
        record_id,
        payload,
        id,
    } = command;
    let payload: Option<serde_json::Value> = payload
        .map(|p| serde_json::from_str(&p).context("--payload is not JSON"))
        .transpose()?;
    let body = serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": object,
        "record-id": record_id,
        "payload": payload,
    }))?;
    let secret = config
        .webhook_secret
        .clone()
        .context("no webhook secret: set webhook-secret-env in roster.toml and that variable")?;
    let timestamp = SystemClock.now_ms() / 1000;
    let signature = sign(&secret, timestamp, &body);
    let (status, text) = request(
        &config,
        http::Method::POST,
        &format!("/v1/events/{name}"),
        &[
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ],
        body,
    )?;
    println!("{text}");
    if status == 202 || status == 200 {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("the service answered {status}")
    }
}

/// The environment variable with a personal or service token; it takes precedence over
/// the bootstrap token of `api-token-env`.
pub const TOKEN_ENV: &str = "ROSTER_TOKEN";

fn token(config: &HostConfig) -> anyhow::Result<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| config.api_token.clone())
        .with_context(|| {
            format!(
                "no API token: set {TOKEN_ENV}, or api-token-env in roster.toml and that variable"
            )
        })
}

/// Calls the running service's API with the token; returns the status and body.
pub(super) fn api(
    config_path: &Path,
    method: http::Method,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let config = config(config_path)?;
    let token = token(&config)?;
    request(
        &config,
        method,
        path,
        &[("authorization", format!("Bearer {token}"))],
        body,
    )
}

/// `roster workers pause|resume` and `roster kill`: POSTs a control request to the running
/// service and prints its answer.
pub(super) fn control(
    config_path: &Path,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    print_api(
        config_path,
        http::Method::POST,
        path,
        serde_json::to_vec(&body)?,
    )
}

pub(super) fn queue(config_path: &Path, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let QueueCommand::Status = command;
    print_api(config_path, http::Method::GET, "/v1/queue", Vec::new())
}

/// Calls the API and prints its JSON answer; anything but 2xx is an error.
pub(super) fn print_api(
    config_path: &Path,
    method: http::Method,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<ExitCode> {
    let (status, text) = api(config_path, method, path, body)?;
    if !(200..300).contains(&status) {
        bail!("the service answered {status}: {text}");
    }
    let value: serde_json::Value = serde_json::from_str(&text)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}
