//! How a command reaches the API.
//!
//! Every command that reads or changes state is a request to the HTTP API, answered by:
//! 1. the host `--remote URL` names;
//! 2. otherwise the service running on the data directory, found by the discovery file
//!    it writes there ([`Discovery`]: its address, its pid, and where its token is);
//! 3. otherwise the same API answered in this process over the data directory, as the
//!    local operator who holds it (`local:<user>`, with the bootstrap token's rights) —
//!    nothing is triggered or dispatched then.
//!
//! Each command prints from the API's answer, so it prints the same whichever answered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};

use super::Paths;
use crate::clock::SystemClock;
use crate::service::Service;

/// The discovery file's name, in the data directory.
pub const DISCOVERY_FILE: &str = "service.json";

/// The environment variable with a personal or service token; it takes precedence over
/// every other way of finding one.
pub const TOKEN_ENV: &str = "ROSTER_TOKEN";

/// What a running service tells commands on the same machine about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Discovery {
    /// Where its API listens (`127.0.0.1:7878`).
    pub address: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its version.
    pub version: String,
    /// A file holding a token for its API, if it made one (`roster up`'s admin token).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The environment variable its bootstrap token is read from, if any.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl Discovery {
    /// Writes the file (replacing it whole) in `data_dir`; returns its path.
    pub fn write(&self, data_dir: &Path) -> anyhow::Result<PathBuf> {
        let path = data_dir.join(DISCOVERY_FILE);
        let partial = data_dir.join(format!(".{DISCOVERY_FILE}.{}", self.pid));
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The file in `data_dir`, if there is one that reads.
    pub fn read(data_dir: &Path) -> Option<Discovery> {
        let text = std::fs::read(data_dir.join(DISCOVERY_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Removes the file in `data_dir` if it is this process's.
    pub fn remove(data_dir: &Path) {
        if Discovery::read(data_dir).is_some_and(|d| d.pid == std::process::id()) {
            let _ = std::fs::remove_file(data_dir.join(DISCOVERY_FILE));
        }
    }

    /// Whether the service it describes runs: its process exists and its address answers.
    fn alive(&self) -> bool {
        let process = Path::new("/proc");
        if process.is_dir() && !process.join(self.pid.to_string()).exists() {
            return false;
        }
        let Ok(address) = self.address.parse::<std::net::SocketAddr>() else {
            return false;
        };
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
    }

    /// A token for its API: `ROSTER_TOKEN`, its token file, or its token variable.
    fn token(&self) -> Option<String> {
        env_token()
            .or_else(|| {
                self.token_file
                    .as_ref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            })
            .or_else(|| {
                self.token_env
                    .as_ref()
                    .and_then(|v| std::env::var(v).ok())
                    .filter(|t| !t.trim().is_empty())
            })
    }
}

/// Who the local operator is, for the audit trail.
pub(super) fn local_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("local:{user}")
}

fn env_token() -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Who answers this command's requests.
enum Target {
    /// A service over HTTP.
    Remote {
        address: String,
        token: Option<String>,
    },
    /// The API in this process, over the data directory.
    Local { router: axum::Router, token: String },
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")
}

/// The service `--remote` names, or the one running on the data directory.
fn service_target(paths: &Paths) -> anyhow::Result<Option<Target>> {
    if let Some(url) = &paths.remote {
        let address = remote_address(url)?;
        let token = env_token().or_else(|| {
            super::host_config(paths)
                .ok()
                .and_then(|c| c.api_token.clone())
        });
        return Ok(Some(Target::Remote { address, token }));
    }
    let config = super::host_config(paths)?;
    Ok(Discovery::read(&config.data_dir)
        .filter(Discovery::alive)
        .map(|found| {
            let token = found.token().or_else(|| config.api_token.clone());
            Target::Remote {
                address: found.address,
                token,
            }
        }))
}

/// A connection to the API, whichever answers it.
pub(super) struct Client {
    target: Target,
    runtime: tokio::runtime::Runtime,
}

/// An answer that was not a success: its status and the problem's detail.
#[derive(Debug)]
pub(super) struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.status)
    }
}

impl std::error::Error for Refused {}

impl Client {
    /// The service `--remote` names or the discovery file describes, or else the data
    /// directory itself.
    pub fn open(paths: &Paths) -> anyhow::Result<Client> {
        let runtime = client_runtime()?;
        match service_target(paths)? {
            Some(target) => Ok(Client { target, runtime }),
            None => Client::local(super::host_config(paths)?, runtime),
        }
    }

    /// A running service only (for what only a running service knows, like its queue).
    pub fn service(paths: &Paths) -> anyhow::Result<Client> {
        Client::running(paths)?.ok_or_else(|| {
            let dir = super::host_config(paths)
                .map(|c| c.data_dir.display().to_string())
                .unwrap_or_else(|_| paths.data_dir.display().to_string());
            anyhow::anyhow!(
                "no service runs on {dir} (start `roster serve` or `roster up`, or name one \
                 with --remote URL)"
            )
        })
    }

    /// The running service (`--remote`, or the one the discovery file names), if any.
    pub fn running(paths: &Paths) -> anyhow::Result<Option<Client>> {
        let runtime = client_runtime()?;
        Ok(service_target(paths)?.map(|target| Client { target, runtime }))
    }

    /// The API over the data directory, in this process, as the local operator with the
    /// bootstrap token's rights (whoever may open the data directory holds every record
    /// and key in it).
    fn local(
        mut config: crate::config::HostConfig,
        runtime: tokio::runtime::Runtime,
    ) -> anyhow::Result<Client> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let mut secret = [0u8; 24];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let token = hex::encode(secret);
        config.api_token = Some(token.clone());
        config.operator = Some(local_operator());
        let store = config.data_dir.join("roster.redb");
        let service = Service::open(config, Arc::new(SystemClock)).map_err(|e| match e {
            crate::error::Error::Store(crate::store::StoreError::Database(
                redb::Error::DatabaseAlreadyOpen,
            )) => anyhow::anyhow!(
                "{} is in use by a service that does not answer (its discovery file, {}, is \
                 missing or stale): wait for it to start, or stop it",
                store.display(),
                DISCOVERY_FILE
            ),
            other => other.into(),
        })?;
        Ok(Client {
            target: Target::Local {
                router: crate::server::router(Arc::new(service)),
                token,
            },
            runtime,
        })
    }

    /// Sends one request; the answer's status, content type and body.
    pub fn send(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Body,
    ) -> anyhow::Result<http::Response<Body>> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, content_type);
        let token = match &self.target {
            Target::Remote { address, token } => {
                request = request.header(http::header::HOST, address.as_str());
                token.clone()
            }
            Target::Local { token, .. } => Some(token.clone()),
        };
        if let Some(t) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let request = request.body(body).context("building the request")?;
        self.runtime.block_on(async {
            match &self.target {
                Target::Remote { address, .. } => {
                    let stream = tokio::net::TcpStream::connect(address.as_str())
                        .await
                        .with_context(|| format!("connecting to {address}"))?;
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                            .await
                            .with_context(|| format!("talking to {address}"))?;
                    tokio::spawn(conn);
                    let response = sender
                        .send_request(request)
                        .await
                        .with_context(|| format!("sending the request to {address}"))?;
                    Ok(response.map(Body::new))
                }
                Target::Local { router, .. } => {
                    use tower::ServiceExt as _;
                    let response = router.clone().oneshot(request).await;
                    Ok(response.unwrap_or_else(|never| match never {}))
                }
            }
        })
    }

    /// Sends a JSON request (no body when `body` is `None`) and reads the JSON answer;
    /// anything but a 2xx is a [`Refused`] error.
    pub fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let body = match body {
            Some(b) => Body::from(serde_json::to_vec(b)?),
            None => Body::empty(),
        };
        let response = self.send(method, path, "application/json", body)?;
        let status = response.status();
        let bytes = self.collect(response.into_body())?;
        if !status.is_success() {
            return Err(refused(status.as_u16(), &bytes).into());
        }
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("the answer to {path}"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.call(http::Method::GET, path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call(http::Method::POST, path, Some(body))
    }

    /// `POST path` and prints the JSON answer.
    pub fn print_post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<std::process::ExitCode> {
        print_json(&self.post(path, body)?)
    }

    /// `GET path` and prints the JSON answer.
    pub fn print_get(&self, path: &str) -> anyhow::Result<std::process::ExitCode> {
        print_json(&self.get(path)?)
    }

    /// Every item of a paged list (`key` names the items), following `next`, stopping
    /// once `most` items are read.
    pub fn list(
        &self,
        path: &str,
        key: &str,
        most: usize,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        while items.len() < most {
            let limit = (most - items.len()).min(1000);
            let mut url = format!("{path}{join}limit={limit}");
            if let Some(n) = &next {
                url.push_str(&format!("&next={}", encode(n)));
            }
            let mut page = self.get(&url)?;
            if let Some(found) = page.get_mut(key).and_then(|v| v.as_array_mut()) {
                items.append(found);
            }
            match page["next"].as_str() {
                Some(n) => next = Some(n.to_string()),
                None => break,
            }
        }
        Ok(items)
    }

    /// Reads a whole body.
    pub fn collect(&self, body: Body) -> anyhow::Result<Bytes> {
        self.runtime
            .block_on(body.collect())
            .map(|b| b.to_bytes())
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))
    }

    /// Reads a body piece by piece as it arrives, giving each to `f`.
    pub fn stream(
        &self,
        mut body: Body,
        mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| anyhow::anyhow!("the answer was cut: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    f(data)?;
                }
            }
            Ok(())
        })
    }

    /// `GET path`, written to `out` piece by piece as it arrives, `progress` counting its
    /// lines; returns how many lines arrived.
    pub fn download(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<u64> {
        let response = self.send(http::Method::GET, path, "application/json", Body::empty())?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let answer = self.collect(response.into_body())?;
            bail!("{}", refused(status, &answer).detail);
        }
        let mut lines = 0u64;
        self.stream(response.into_body(), |chunk| {
            out.write_all(chunk)?;
            let n = chunk.iter().filter(|b| **b == b'\n').count() as u64;
            lines += n;
            progress.inc(n);
            Ok(())
        })?;
        out.flush()?;
        progress.finish_and_clear();
        Ok(lines)
    }

    /// Runs `work` beside the client's runtime (to feed a streamed request body).
    pub fn spawn_blocking(&self, work: impl FnOnce() + Send + 'static) {
        self.runtime.spawn_blocking(work);
    }
}

/// Prints a JSON value, indented.
pub(super) fn print_json(value: &serde_json::Value) -> anyhow::Result<std::process::ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(std::process::ExitCode::SUCCESS)
}

/// A path segment, percent-encoded.
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error a refused answer's body describes.
pub(super) fn refused(status: u16, body: &[u8]) -> Refused {
    let problem: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let detail = problem["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    Refused {
        status,
        detail: if detail.is_empty() {
            format!("the service answered {status}")
        } else {
            detail
        },
    }
}

/// `host:port` of a `--remote` URL (`http://host:port`, or `host:port`).
fn remote_address(url: &str) -> anyhow::Result<String> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        bail!(
            "--remote {url}: this client speaks plain HTTP; reach a TLS endpoint through a \
             local tunnel or proxy and give its http:// address"
        );
    } else {
        url
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        bail!("--remote `{url}`: give http://HOST:PORT");
    }
    Ok(if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

/// A query-string value, percent-encoded.
pub(super) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A query string from the pairs whose value is given.
pub(super) fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let given: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect();
    if given.is_empty() {
        String::new()
    } else {
        format!("?{}", given.join("&"))
    }
}
