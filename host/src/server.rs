//! The HTTP API of `roster serve` (axum).
//!
//! - `POST /v1/events/{name}` — the webhook for named business events. The caller signs
//!   `"{timestamp}.{body}"` with HMAC-SHA256 under the shared webhook secret and sends
//!   `x-roster-timestamp` (Unix seconds) and `x-roster-signature: sha256=<hex>`. Requests
//!   older than the tolerance, unsigned or wrongly signed are refused and change nothing.
//! - Everything else needs `authorization: Bearer <api token>`: records (get, query,
//!   create, update, delete), workers, executions, alerts and the queue's status.
//!
//! Client mistakes are answered with their reason (4xx); internal faults are logged and
//! answered with a generic message (5xx).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::Mac;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

mod approvals;
pub mod people;
pub mod throttle;
mod versions;

use crate::error::Error;
use crate::filter::{Filter, Op};
use crate::governance::access::{Operation, Resource};
use crate::service::{EventSubmission, Service};
use crate::store::{Account, RecordQuery, StoreError};
use crate::value::{FieldValue, Record};
use crate::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, mac};

/// The largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// An API error: a status and a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Schema(_) | StoreError::BadKey(_) | StoreError::Invalid(_) => {
                ApiError::bad_request(e.to_string())
            }
            StoreError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidEvent(_) | Error::InvalidRequest(_) | Error::Config { .. } => {
                ApiError::bad_request(e.to_string())
            }
            Error::UnknownWorker(_) | Error::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            Error::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's state.
#[derive(Clone)]
pub struct Api {
    service: Arc<Service>,
}

/// Builds the router over a running service. Serve it with the peer's address
/// (`into_make_service_with_connect_info::<SocketAddr>()`) so that failed authentication
/// is throttled per client ([`throttle`]).
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/events/{name}", post(receive_event))
        .route("/v1/whoami", get(people::whoami))
        .route("/v1/people", get(people::list).post(people::create))
        .route("/v1/people/{id}", axum::routing::patch(people::change))
        .route("/v1/people/{id}/tokens", post(people::issue_token))
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(people::revoke_token),
        )
        .route("/v1/grants", get(people::grants))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/decide", post(approvals::decide))
        .route("/v1/workers/{name}/trust", get(approvals::trust))
        .route("/v1/workers/{name}/stage", post(approvals::stage))
        .route("/v1/workers/{name}/reversals", post(approvals::reversal))
        .route("/v1/workers/{name}/dry-run", post(versions::dry_run))
        .route("/v1/workers/{name}/versions", get(versions::versions))
        .route("/v1/workers/{name}/readiness", get(versions::readiness))
        .route("/v1/workers/{name}/deploy", post(versions::deploy))
        .route("/v1/workers/{name}/rollback", post(versions::rollback))
        .route("/v1/workers/{name}/shadow", get(versions::shadow))
        .route("/v1/queue", get(queue))
        .route("/v1/workers", get(workers))
        .route("/v1/inventory", get(inventory))
        .route("/v1/models", get(models))
        .route("/v1/workers/{name}/pause", post(pause_worker))
        .route("/v1/workers/{name}/resume", post(resume_worker))
        .route("/v1/kill", post(kill))
        .route("/v1/executions", get(executions))
        .route("/v1/alerts", get(alerts))
        .route("/v1/audit", get(search_audit))
        .route("/v1/audit/export", get(export_audit))
        .route("/v1/audit/verify", post(verify_audit))
        .route("/v1/audit/checkpoint", post(audit_checkpoint))
        .route("/v1/audit/checkpoints", get(audit_checkpoints))
        .route("/v1/audit/grants", get(people::audit_grants))
        .route(
            "/v1/records/{object}",
            get(query_records).post(create_record),
        )
        .route(
            "/v1/records/{object}/{id}",
            get(get_record).patch(update_record).delete(delete_record),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .layer(axum::middleware::from_fn_with_state(
            throttle::Throttle::new(service.config().failed_auth_burst),
            throttle::limit,
        ))
        .with_state(Api { service })
}

/// Refuses a request whose declared body is larger than the API accepts before reading it
/// (the body limit itself stops bodies without a declared length).
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Checks a webhook's signature; returns the signature's bytes, which name the delivery.
fn verify_signature(api: &Api, headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<u8>> {
    let config = api.service.config();
    let Some(secret) = &config.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are not configured (set webhook-secret-env in roster.toml)",
        ));
    };
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let timestamp: i64 = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unauthorized("missing or malformed x-roster-timestamp"))?;
    let now_s = api.service.runtime().store().clock().now_ms() / 1000;
    let skew = now_s.checked_sub(timestamp).map(i64::unsigned_abs);
    if skew.is_none_or(|s| s > config.webhook_tolerance_s) {
        return Err(unauthorized("the signature is too old or from the future"));
    }
    let given = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
        .ok_or_else(|| unauthorized("missing or malformed x-roster-signature"))?;
    mac(secret, timestamp, body)
        .ok_or_else(|| ApiError::internal("bad webhook secret"))?
        .verify_slice(&given)
        .map_err(|_| unauthorized("the signature does not match"))?;
    Ok(given)
}

/// The account a request acts as: the holder of a stored token, or `root` for the
/// bootstrap token. A request without a valid token is refused with 401.
fn authenticate(api: &Api, headers: &HeaderMap) -> ApiResult<Account> {
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong API token");
    if given.is_empty() {
        return Err(refused());
    }
    if let Some(token) = &api.service.config().api_token {
        // Compare digests so the comparison takes the same time wherever the tokens differ.
        use sha2::Digest;
        if Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()) {
            return Ok(crate::governance::access::bootstrap_account());
        }
    }
    match api.service.store().authenticate(given) {
        Ok(Some((account, _))) => Ok(account),
        Ok(None) => Err(refused()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Authenticates the request and asks the policies whether its account may perform
/// `operation` on `resource`; refused with 403, naming the deciding policies.
fn authorize(
    api: &Api,
    headers: &HeaderMap,
    operation: Operation,
    resource: &Resource,
) -> ApiResult<Account> {
    let account = authenticate(api, headers)?;
    permit(api, &account, operation, resource)?;
    Ok(account)
}

/// Asks the policies whether an authenticated account may perform `operation` on
/// `resource` (for handlers that must authenticate before they can name the resource).
fn permit(
    api: &Api,
    account: &Account,
    operation: Operation,
    resource: &Resource,
) -> ApiResult<()> {
    let verdict = api
        .service
        .config()
        .access
        .decide(account, operation, resource);
    if verdict.allowed {
        return Ok(());
    }
    tracing::warn!(
        account = %account.id,
        operation = operation.as_str(),
        "refused by the access policies"
    );
    let because = if verdict.policies.is_empty() {
        "no policy permits it".to_string()
    } else {
        format!("forbidden by {}", verdict.policies.join(", "))
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "`{}` may not {} here: {because}",
            account.id,
            operation.as_str()
        ),
    ))
}

/// [`authorize`] on the host as a whole.
fn authorize_host(api: &Api, headers: &HeaderMap, operation: Operation) -> ApiResult<Account> {
    authorize(api, headers, operation, &Resource::Host)
}

/// [`authorize`] on an installed worker (401 before 404: the token is checked first).
fn authorize_worker(
    api: &Api,
    headers: &HeaderMap,
    operation: Operation,
    worker: &str,
) -> ApiResult<Account> {
    let account = authenticate(api, headers)?;
    let resource = found(
        api,
        &account,
        Operation::WorkersList,
        api.service.worker_resource(worker),
    )?;
    permit(api, &account, operation, &resource)?;
    Ok(account)
}

/// The resource a request names, or why not: an unknown worker or held action is a 404
/// only for an account that may list them; anyone else gets the same 403 as for one that
/// exists, so a request cannot learn what exists by its answer.
fn found(
    api: &Api,
    account: &Account,
    list: Operation,
    resource: Result<Resource, Error>,
) -> ApiResult<Resource> {
    match resource {
        Ok(resource) => Ok(resource),
        Err(e @ (Error::UnknownWorker(_) | Error::NotFound(_))) => {
            permit(api, account, list, &Resource::Host)?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A JSON request body, or a 400 saying what is wrong with it.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

async fn receive_event(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let signature = verify_signature(&api, &headers, &body)?;
    let mut event: EventSubmission = if body.is_empty() {
        EventSubmission::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid event: {e}")))?
    };
    // A delivery without an id is named by its signature (over its timestamp and body),
    // so the same signed delivery sent again within the tolerance is a duplicate.
    if event.id.is_none() {
        event.id = Some(format!("sig-{}", hex::encode(&signature[..16])));
    }
    let (accepted, duplicate) =
        blocking(move || Ok(api.service.accept_event(&name, event)?)).await?;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({ "accepted": accepted, "duplicate": duplicate })),
    ))
}

/// Audit search parameters; times are RFC 3339, `YYYY-MM-DD` or ms since the epoch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    worker: Option<String>,
    record: Option<String>,
    principal: Option<String>,
    status: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

impl AuditParams {
    fn query(&self) -> Result<crate::store::AuditQuery, ApiError> {
        let time = |t: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
            t.as_ref()
                .map(|t| {
                    t.parse::<i64>()
                        .ok()
                        .or_else(|| crate::schema::parse_time(t))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "{name} `{t}`: use RFC 3339, YYYY-MM-DD or milliseconds"
                            ))
                        })
                })
                .transpose()
        };
        Ok(crate::store::AuditQuery {
            worker: self.worker.clone(),
            record: self.record.clone(),
            principal: self.principal.clone(),
            status: self.status.clone(),
            action: self.action.clone(),
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            after: self.after,
        })
    }
}

async fn search_audit(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::AuditRead)?;
    let query = params.query()?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let entries = blocking(move || {
        let mut out = Vec::new();
        api.service.store().audit_scan(&query, |e, raw, hash| {
            out.push(crate::store::export_item(e.seq, raw, hash));
            out.len() < limit
        })?;
        Ok(out)
    })
    .await?;
    Ok(Json(json!({ "entries": entries })))
}

/// A piece of a streamed response.
enum Piece {
    /// More of the body.
    Data(Bytes),
    /// The body is complete.
    End,
    /// The body cannot be completed; why.
    Failed(String),
}

/// A response body fed from a channel, so a long export streams as it is read. Unless
/// the producer says the body is complete, the response ends without its last chunk (a
/// failure, or a producer that stopped), so the client sees a cut transfer instead of a
/// complete-looking export.
struct ChannelBody(tokio::sync::mpsc::Receiver<Piece>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        match self.0.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => Poll::Ready(None),
            Poll::Ready(Some(Piece::Failed(why))) => {
                Poll::Ready(Some(Err(std::io::Error::other(why))))
            }
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::other(
                "the export stopped before it was complete",
            )))),
        }
    }
}

async fn export_audit(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    authorize_host(&api, &headers, Operation::AuditRead)?;
    let query = params.query()?;
    let csv = match params.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "format `{other}`: use jsonl or csv"
            )));
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(64);
    tokio::task::spawn_blocking(move || {
        let store = api.service.store();
        let line = |fields: Vec<String>| -> Bytes {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(&fields);
            Bytes::from(w.into_inner().unwrap_or_default())
        };
        if csv {
            let header = crate::store::CSV_COLUMNS
                .iter()
                .map(|c| c.to_string())
                .collect();
            if tx.blocking_send(Piece::Data(line(header))).is_err() {
                return;
            }
        }
        let result = store.audit_scan(&query, |e, raw, hash| {
            let chunk = if csv {
                line(crate::store::csv_row(e, hash))
            } else {
                Bytes::from(format!("{}\n", crate::store::export_item(e.seq, raw, hash)))
            };
            tx.blocking_send(Piece::Data(chunk)).is_ok()
        });
        let last = match result {
            Ok(()) => Piece::End,
            Err(e) => {
                tracing::error!("exporting the audit trail: {e}");
                Piece::Failed(format!("the export stopped: {e}"))
            }
        };
        let _ = tx.blocking_send(last);
    });
    let content_type = if csv {
        "text/csv"
    } else {
        "application/x-ndjson"
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::new(ChannelBody(rx)),
    )
        .into_response())
}

/// Checkpoints held elsewhere to verify the chain against.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    #[serde(default)]
    checkpoints: Vec<crate::store::Checkpoint>,
}

async fn verify_audit(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::AuditRead)?;
    let request: VerifyRequest = if body.is_empty() {
        VerifyRequest::default()
    } else {
        json_body(&body)?
    };
    let outcome =
        blocking(move || Ok(api.service.store().verify_audit(&request.checkpoints)?)).await?;
    Ok(Json(match outcome {
        Ok(summary) => json!({ "ok": true, "summary": summary }),
        Err(problem) => json!({ "ok": false, "problem": problem, "message": problem.to_string() }),
    }))
}

async fn audit_checkpoint(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::AuditCheckpoint)?;
    let checkpoint = blocking(move || Ok(api.service.store().audit_checkpoint()?)).await?;
    Ok(Json(json!({ "checkpoint": checkpoint })))
}

async fn audit_checkpoints(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::AuditRead)?;
    let key = api.service.store().audit_public_key();
    let checkpoints = blocking(move || Ok(api.service.store().audit_checkpoints()?)).await?;
    Ok(Json(
        json!({ "public-key": key, "checkpoints": checkpoints }),
    ))
}

async fn inventory(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(filter): Query<crate::service::inventory::InventoryFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::InventoryView)?;
    let workers = blocking(move || Ok(api.service.inventory(&filter)?)).await?;
    Ok(Json(json!({ "workers": workers })))
}

/// The offline models: what reviewers taught them and how they judged their predictions
/// (part of the workers' accuracy record, so readable by whoever sees the inventory).
async fn models(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::InventoryView)?;
    let models = blocking(move || Ok(api.service.store().models()?)).await?;
    Ok(Json(json!({ "models": models })))
}

/// A pause or resume request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlRequest {
    /// Why.
    reason: String,
    /// On resume: restore a grant the kill switch revoked (after reviewing it).
    #[serde(default)]
    restore_grant: bool,
}

/// A kill-switch request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KillRequest {
    /// `{"worker": "name"}`, `{"domain": "revenue"}` or `"all"`.
    scope: crate::service::KillScope,
    /// Why (required).
    reason: String,
    /// Revoke the workers' grants until a person restores them.
    #[serde(default)]
    revoke_grants: bool,
}

async fn kill(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authenticate(&api, &headers)?;
    let request: KillRequest = json_body(&body)?;
    let resource = match &request.scope {
        crate::service::KillScope::Worker(name) => found(
            &api,
            &account,
            Operation::WorkersList,
            api.service.worker_resource(name),
        )?,
        crate::service::KillScope::Domain(name) => Resource::Domain(name.clone()),
        crate::service::KillScope::All => Resource::Host,
    };
    permit(&api, &account, Operation::Kill, &resource)?;
    if request.revoke_grants {
        permit(&api, &account, Operation::GrantsChange, &resource)?;
    }
    let report = blocking(move || {
        Ok(api.service.kill(
            &request.scope,
            &account.id,
            &request.reason,
            request.revoke_grants,
        )?)
    })
    .await?;
    Ok(Json(json!({ "report": report })))
}

async fn pause_worker(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::WorkerPause, &name)?;
    let request: ControlRequest = json_body(&body)?;
    let control =
        blocking(move || Ok(api.service.pause(&name, &account.id, &request.reason)?)).await?;
    Ok(Json(json!({ "control": control })))
}

async fn resume_worker(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::WorkerResume, &name)?;
    let request: ControlRequest = json_body(&body)?;
    if request.restore_grant {
        let resource = api.service.worker_resource(&name)?;
        permit(&api, &account, Operation::GrantsChange, &resource)?;
    }
    let control = blocking(move || {
        Ok(api
            .service
            .resume(&name, &account.id, &request.reason, request.restore_grant)?)
    })
    .await?;
    Ok(Json(json!({ "control": control })))
}

async fn queue(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::QueueView)?;
    let status = api.service.queue_status();
    let stored = blocking(move || Ok(api.service.store().queue_len()?)).await?;
    Ok(Json(json!({ "status": status, "stored": stored })))
}

async fn workers(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::WorkersList)?;
    let controls = api.service.controls();
    let list: Vec<serde_json::Value> = api
        .service
        .workers()
        .iter()
        .map(|(name, w)| {
            let m = &w.config.manifest;
            let control = controls.get(name);
            json!({
                "paused": control.is_some_and(|c| c.paused),
                "control": control,
                "alert-owners": w.config.owners,
                "retry": w.config.retry,
                "escalation": w.config.escalation,
                "circuit-breaker": w.config.breaker,
                "name": name,
                "plugin": m.plugin.id,
                "version": m.plugin.version,
                "domain": m.plugin.domain,
                "description": m.plugin.description,
                "owners": m.owners,
                "principal": w.config.grant.grant.principal,
                "enabled": w.config.enabled,
                "triggers": w.config.triggers.iter().map(|t| t.label.clone()).collect::<Vec<_>>(),
                "limits": w.loaded().limits(),
                "component-digest": w.loaded().component_digest(),
            })
        })
        .collect();
    Ok(Json(json!({ "workers": list })))
}

#[derive(Deserialize)]
struct ExecutionsQuery {
    worker: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn executions(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<ExecutionsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::ExecutionsView)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = blocking(move || {
        let all = api
            .service
            .store()
            .executions_after(q.after.unwrap_or(0), usize::MAX)?;
        Ok(all
            .into_iter()
            .filter(|e| q.worker.as_ref().is_none_or(|w| &e.worker == w))
            .take(limit)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "executions": entries })))
}

async fn alerts(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::AlertsView)?;
    let alerts = blocking(move || Ok(api.service.store().alerts()?)).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn get_record(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<Json<Record>> {
    authorize_host(&api, &headers, Operation::RecordsRead)?;
    let found = blocking(move || {
        api.service
            .store()
            .schema()
            .object(&object)
            .map_err(StoreError::from)?;
        Ok(api.service.store().get_record(&object, &id)?)
    })
    .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such record"))
}

#[derive(Deserialize)]
struct RecordsQuery {
    /// `field:op:value`, repeatable as a comma-free list separated by `;`.
    r#where: Option<String>,
    limit: Option<usize>,
}

/// Parses `field:op:value;field:op` into filters (values are read as JSON when they parse,
/// as text otherwise).
pub fn parse_where(text: &str) -> Result<Vec<Filter>, String> {
    text.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|clause| {
            let mut parts = clause.splitn(3, ':');
            let field = parts.next().unwrap_or_default().trim().to_string();
            let op_text = parts
                .next()
                .ok_or_else(|| format!("`{clause}`: expected field:op:value"))?;
            let op: Op = serde_json::from_value(json!(op_text.trim()))
                .map_err(|_| format!("`{clause}`: unknown operator `{op_text}`"))?;
            let value = match parts.next() {
                None if op.is_unary() => FieldValue::Null,
                None => return Err(format!("`{clause}`: `{op_text}` needs a value")),
                Some(v) => {
                    serde_json::from_str(v).unwrap_or_else(|_| FieldValue::Text(v.to_string()))
                }
            };
            Ok(Filter { field, op, value })
        })
        .collect()
}

async fn query_records(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(object): Path<String>,
    Query(q): Query<RecordsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_host(&api, &headers, Operation::RecordsRead)?;
    let filters = parse_where(q.r#where.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    let records = blocking(move || {
        Ok(api.service.store().query(&RecordQuery {
            object,
            filters,
            owners: None,
            limit: q.limit.unwrap_or(100).min(crate::store::MAX_QUERY),
        })?)
    })
    .await?;
    Ok(Json(json!({ "records": records })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    id: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    fields: std::collections::BTreeMap<String, FieldValue>,
}

async fn create_record(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(object): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Record>)> {
    let account = authorize_host(&api, &headers, Operation::RecordsWrite)?;
    let new: NewRecord = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid record: {e}")))?;
    let record = blocking(move || {
        Ok(api.service.store().create_record(
            &object,
            new.id,
            new.owner,
            new.fields,
            &format!("api:{}", account.id),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordUpdate {
    fields: std::collections::BTreeMap<String, FieldValue>,
}

async fn update_record(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Record>> {
    let account = authorize_host(&api, &headers, Operation::RecordsWrite)?;
    let update: RecordUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid update: {e}")))?;
    let updated = blocking(move || {
        Ok(api.service.store().update_record(
            &object,
            &id,
            &update.fields,
            &format!("api:{}", account.id),
        )?)
    })
    .await?;
    updated
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such record"))
}

async fn delete_record(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let account = authorize_host(&api, &headers, Operation::RecordsWrite)?;
    let existed = blocking(move || {
        api.service
            .store()
            .schema()
            .object(&object)
            .map_err(StoreError::from)?;
        Ok(api
            .service
            .store()
            .delete_record(&object, &id, &format!("api:{}", account.id))?)
    })
    .await?;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "no such record"))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn where_clauses_parse() {
        let f = parse_where("status:equals:open;amount:greater-than:1000;email:is-empty").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].value, FieldValue::Integer(1000));
        assert_eq!(f[0].value, FieldValue::Text("open".into()));
        assert!(parse_where("status:resembles:x").is_err());
        assert!(parse_where("status:equals").is_err());
    }

    fn collect(pieces: Vec<Piece>) -> Result<Bytes, std::io::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            for piece in pieces {
                tx.send(piece).await.unwrap();
            }
            drop(tx);
            ChannelBody(rx).collect().await.map(|c| c.to_bytes())
        })
    }

    #[test]
    fn a_streamed_export_is_complete_only_when_its_producer_says_so() {
        let line = || Piece::Data(Bytes::from_static(b"{\"seq\":1}\n"));
        assert_eq!(
            collect(vec![line(), Piece::End]).unwrap(),
            Bytes::from_static(b"{\"seq\":1}\n")
        );
        let failed = collect(vec![line(), Piece::Failed("the store failed".into())]);
        assert_eq!(failed.unwrap_err().to_string(), "the store failed");
        // A producer that stopped without a word (it panicked) cuts the transfer too.
        let stopped = collect(vec![line()]);
        assert!(
            stopped
                .unwrap_err()
                .to_string()
                .contains("before it was complete")
        );
    }
}
