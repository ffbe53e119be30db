//! The registry's HTTP API: the subset of the OCI distribution spec that real clients use.
//!
//! - `GET /v2/` — the version check (and the auth challenge when pushes need a token).
//! - `POST /v2/<name>/blobs/uploads/` — start an upload (or a monolithic one with
//!   `?digest=`); `PATCH` a chunk (with or without `Content-Range`); `PUT ?digest=` to
//!   finish; `GET` its progress; `DELETE` to cancel.
//! - `GET`/`HEAD /v2/<name>/blobs/<digest>`.
//! - `GET`/`HEAD`/`PUT /v2/<name>/manifests/<tag or digest>`.
//! - `GET /v2/<name>/tags/list` and `GET /v2/_catalog` (with `n` and `last` pages).
//! - `GET /.well-known/wasm-pkg/registry.json` — where wasm package tools find the OCI
//!   registry.
//!
//! Pushes need a token (as the password of Basic auth, or a Bearer token); pulls are
//! anonymous unless the registry is private. Errors use the spec's JSON envelope.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::artifact::MANIFEST_MEDIA_TYPE;
use crate::storage::{Storage, StorageError, digest_of};

/// The largest request body (a component pushed in one piece).
pub const MAX_BODY: usize = 512 << 20;

/// How the registry runs.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// SHA-256 digests of the tokens that may push (and pull, when private).
    pub token_digests: Vec<[u8; 32]>,
    /// Whether pulls need a token too.
    pub private: bool,
    /// The namespace prefix announced to wasm package tools (`""` or `"team/"`).
    pub namespace_prefix: String,
}

impl RegistryConfig {
    /// A configuration accepting `tokens` for pushes.
    pub fn with_tokens(tokens: &[String], private: bool) -> RegistryConfig {
        RegistryConfig {
            token_digests: tokens
                .iter()
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
            private,
            namespace_prefix: String::new(),
        }
    }
}

#[derive(Clone)]
struct Registry {
    storage: Storage,
    config: Arc<RegistryConfig>,
}

/// The router over a storage directory.
pub fn router(storage: Storage, config: RegistryConfig) -> Router {
    let state = Registry {
        storage,
        config: Arc::new(config),
    };
    Router::new()
        .route("/v2/", axum::routing::get(ping))
        .route("/v2", axum::routing::get(ping))
        .route("/v2/{*rest}", axum::routing::any(dispatch))
        .route(
            "/.well-known/wasm-pkg/registry.json",
            axum::routing::get(well_known),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// An error in the spec's envelope.
struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<StorageError> for OciError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::Invalid(m) if m.contains("repository name") => {
                OciError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", e.to_string())
            }
            StorageError::Invalid(m) if m.contains("tag") => {
                OciError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e.to_string())
            }
            StorageError::Invalid(m) if m.contains("chunk starts") => OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                e.to_string(),
            ),
            StorageError::Invalid(_) | StorageError::DigestMismatch { .. } => {
                OciError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string())
            }
            StorageError::NotFound(m) if m.starts_with("upload") => {
                OciError::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", e.to_string())
            }
            StorageError::NotFound(m) if m.starts_with("manifest") => {
                OciError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", e.to_string())
            }
            StorageError::NotFound(m) if m.starts_with("repository") => {
                OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", e.to_string())
            }
            StorageError::NotFound(_) => {
                OciError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", e.to_string())
            }
            StorageError::Io { .. } => {
                tracing::error!("registry storage: {e}");
                OciError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "storage failure; see the registry's log",
                )
            }
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body =
            json!({ "errors": [{ "code": self.code, "message": self.message, "detail": null }] });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"roster\""),
            );
        }
        response
    }
}

type OciResult = Result<Response, OciError>;

/// The token a request carries: a Bearer token, or a Basic password (any user name).
/// Empty Basic credentials are anonymous.
fn token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_string()).filter(|p| !p.is_empty())
}

impl Registry {
    fn authenticated(&self, headers: &HeaderMap) -> Result<bool, OciError> {
        let Some(given) = token(headers) else {
            return Ok(false);
        };
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if self.config.token_digests.contains(&digest) {
            Ok(true)
        } else {
            Err(OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "the token is not valid",
            ))
        }
    }

    fn allow_pull(&self, headers: &HeaderMap) -> Result<(), OciError> {
        if self.authenticated(headers)? || !self.config.private {
            Ok(())
        } else {
            Err(OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "this registry needs a token to pull",
            ))
        }
    }

    fn allow_push(&self, headers: &HeaderMap) -> Result<(), OciError> {
        if self.config.token_digests.is_empty() {
            return Err(OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                "this registry takes no pushes (start it with a push token)",
            ));
        }
        if self.authenticated(headers)? {
            Ok(())
        } else {
            Err(OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "pushing needs a token",
            ))
        }
    }
}

async fn ping(State(r): State<Registry>, headers: HeaderMap) -> OciResult {
    // Clients read the auth challenge from here only: a registry that takes pushes asks
    // for credentials, so a client that has some sends them.
    let needs_auth = r.config.private || !r.config.token_digests.is_empty();
    if needs_auth && !r.authenticated(&headers)? {
        return Err(OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        ));
    }
    Ok((
        [("Docker-Distribution-API-Version", "registry/2.0")],
        axum::Json(json!({})),
    )
        .into_response())
}

async fn well_known(State(r): State<Registry>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    axum::Json(json!({
        "preferredProtocol": "oci",
        "oci": { "registry": host, "namespacePrefix": r.config.namespace_prefix },
    }))
    .into_response()
}

/// `n` and `last` of the list endpoints, and `digest`, `mount`, `from` of uploads.
#[derive(Deserialize, Default)]
struct Params {
    n: Option<usize>,
    last: Option<String>,
    digest: Option<String>,
}

/// What a `/v2/...` path names.
enum Target<'a> {
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
}

fn target(rest: &str) -> Option<Target<'_>> {
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(if id.is_empty() {
            Target::Uploads(name)
        } else {
            Target::Upload(name, id)
        });
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Target::Uploads(name));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Target::Manifest(name, reference));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Target::Blob(name, digest));
    }
    None
}

async fn dispatch(
    State(r): State<Registry>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> OciResult {
    let rest = uri
        .path()
        .strip_prefix("/v2/")
        .unwrap_or_default()
        .to_string();
    let not_found = || OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no such endpoint");
    let target = target(&rest).ok_or_else(not_found)?;
    let storage = r.storage.clone();
    match (method, target) {
        (Method::GET, Target::Catalog) => {
            r.allow_pull(&headers)?;
            let all = storage.catalog()?;
            Ok(page(all, &params, "/v2/_catalog", "repositories", None))
        }
        (Method::GET, Target::Tags(name)) => {
            r.allow_pull(&headers)?;
            let tags = storage.tags(name)?;
            Ok(page(
                tags,
                &params,
                &format!("/v2/{name}/tags/list"),
                "tags",
                Some(name),
            ))
        }
        (method @ (Method::GET | Method::HEAD), Target::Manifest(name, reference)) => {
            r.allow_pull(&headers)?;
            let (digest, media_type) = storage.resolve(name, reference)?;
            let bytes = storage.blob(&digest)?;
            respond(method, &media_type, &digest, bytes)
        }
        (Method::PUT, Target::Manifest(name, reference)) => {
            r.allow_push(&headers)?;
            put_manifest(&storage, name, reference, &headers, &body)
        }
        (method @ (Method::GET | Method::HEAD), Target::Blob(name, digest)) => {
            r.allow_pull(&headers)?;
            crate::storage::check_name(name)?;
            let bytes = storage.blob(digest)?;
            respond(method, "application/octet-stream", digest, bytes)
        }
        (Method::POST, Target::Uploads(name)) => {
            r.allow_push(&headers)?;
            crate::storage::check_name(name)?;
            if let Some(digest) = &params.digest {
                // A monolithic upload: the whole blob in the POST.
                storage.put_blob(digest, &body)?;
                return Ok(created(&format!("/v2/{name}/blobs/{digest}"), digest));
            }
            let id = storage.start_upload()?;
            Ok(upload_state(StatusCode::ACCEPTED, name, &id, 0))
        }
        (Method::PATCH, Target::Upload(name, id)) => {
            r.allow_push(&headers)?;
            let start = match headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
            {
                Some(range) => Some(parse_range_start(range)?),
                None => None,
            };
            let size = storage.append_upload(id, start, &body)?;
            Ok(upload_state(StatusCode::ACCEPTED, name, id, size))
        }
        (Method::PUT, Target::Upload(name, id)) => {
            r.allow_push(&headers)?;
            let digest = params.digest.as_deref().ok_or_else(|| {
                OciError::new(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "finishing an upload needs ?digest=",
                )
            })?;
            storage.finish_upload(id, &body, digest)?;
            Ok(created(&format!("/v2/{name}/blobs/{digest}"), digest))
        }
        (Method::GET, Target::Upload(name, id)) => {
            r.allow_push(&headers)?;
            let size = storage.upload_size(id)?;
            Ok(upload_state(StatusCode::NO_CONTENT, name, id, size))
        }
        (Method::DELETE, Target::Upload(_, id)) => {
            r.allow_push(&headers)?;
            storage.cancel_upload(id)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry does not support that",
        )),
    }
}

fn parse_range_start(range: &str) -> Result<u64, OciError> {
    let bad = || {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("bad Content-Range `{range}`"),
        )
    };
    let range = range
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let (start, _) = range.split_once('-').ok_or_else(bad)?;
    start.trim().parse().map_err(|_| bad())
}

fn upload_state(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut response = status.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/{name}/blobs/uploads/{id}")) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1))) {
        h.insert(header::RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("Docker-Upload-UUID", v);
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn created(location: &str, digest: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(digest) {
        h.insert("Docker-Content-Digest", v);
    }
    response
}

fn respond(method: Method, media_type: &str, digest: &str, bytes: Vec<u8>) -> OciResult {
    let len = bytes.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(digest) {
        h.insert("Docker-Content-Digest", v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

fn put_manifest(
    storage: &Storage,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> OciResult {
    let invalid = |m: String| OciError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m);
    let manifest: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let media_type = manifest["mediaType"]
        .as_str()
        .or_else(|| {
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or(MANIFEST_MEDIA_TYPE)
        .to_string();
    if media_type != MANIFEST_MEDIA_TYPE {
        return Err(invalid(format!(
            "manifest type `{media_type}`: this registry stores OCI image manifests"
        )));
    }
    let mut referenced = vec![&manifest["config"]];
    referenced.extend(manifest["layers"].as_array().into_iter().flatten());
    for descriptor in referenced {
        let digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| invalid("a descriptor has no digest".into()))?;
        if storage.blob_size(digest)?.is_none() {
            return Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("blob {digest} was not pushed"),
            ));
        }
    }
    let tag = if reference.starts_with("sha256:") {
        if digest_of(body) != reference {
            return Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the manifest does not match the digest it was put under",
            ));
        }
        None
    } else {
        Some(reference)
    };
    let digest = storage.put_manifest(name, tag, &media_type, body)?;
    Ok(created(&format!("/v2/{name}/manifests/{digest}"), &digest))
}

/// A page of a sorted list, with a `Link` to the next one.
fn page(all: Vec<String>, params: &Params, path: &str, key: &str, name: Option<&str>) -> Response {
    let after: Vec<String> = match &params.last {
        Some(last) => all.into_iter().filter(|x| x > last).collect(),
        None => all,
    };
    let (items, more) = match params.n {
        Some(n) => (
            after.iter().take(n).cloned().collect::<Vec<_>>(),
            after.len() > n && n > 0,
        ),
        None => (after, false),
    };
    let mut body = json!({ key: items });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let mut response = axum::Json(body).into_response();
    if more
        && let (Some(n), Some(last)) = (params.n, items.last())
        && let Ok(v) = HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\""))
    {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

/// Serves the registry from a thread of its own on `127.0.0.1` and a free port (for tests
/// and for hosts that embed a registry); returns the address. The thread runs until the
/// process ends.
pub fn spawn_on_loopback(
    storage: Storage,
    config: RegistryConfig,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("roster-registry".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, router(storage, config)).await {
                            tracing::error!("registry on {address}: {e}");
                        }
                    }
                    Err(e) => tracing::error!("registry on {address}: {e}"),
                }
            });
        })?;
    Ok(address)
}
