//! Commands only a running service answers: `events send` (a signed webhook call) and
//! `queue status` (with the API token).

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

pub(super) fn queue(paths: &super::Paths, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let QueueCommand::Status = command;
    super::client::Client::service(paths)?.print_get("/v1/queue")
}
