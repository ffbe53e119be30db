//! The audit trail over the API: `GET /v1/audit` (search), `GET /v1/audit/export` (CSV or
//! JSON Lines, streamed), `POST /v1/audit/verify`, `POST /v1/audit/checkpoint` and `GET
//! /v1/audit/checkpoints`.

use super::extract::Query;
use axum::Json;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, RequestBody, json};
use super::page::{Listed, PageParams};
use super::stream::{Sink, streamed};
use crate::governance::access::Operation;
use crate::store::{AuditProblem, AuditQuery, AuditSummary, Checkpoint};
use std::io::Write as _;

/// Audit search parameters; times are RFC 3339, `YYYY-MM-DD` or ms since the epoch.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    worker: Option<String>,
    record: Option<String>,
    principal: Option<String>,
    status: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
    format: Option<String>,
    /// `oldest` (the default) or `newest` first (search only).
    order: Option<String>,
}

impl AuditParams {
    fn query(&self) -> Result<AuditQuery, ApiError> {
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
        Ok(AuditQuery {
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

/// The entries a search found, each with its position and hash.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Entries {
    entries: Vec<serde_json::Value>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "audit_search",
    params(AuditParams, PageParams),
    responses((status = 200, description = "the matching entries with their positions and hashes", body = Entries)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("audit.read")))
)]
pub(super) async fn search(
    Listed {
        filter: params,
        page,
    }: Listed<AuditParams>,
    caller: Caller,
) -> ApiResult<Json<Entries>> {
    caller.may(Operation::AuditRead)?;
    let mut query = params.query()?;
    let newest = match params.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order `{other}`: use oldest or newest"
            )));
        }
    };
    // Newest first, the cursor is the position to read before.
    let kind = if newest { "audit-newest" } else { "audit" };
    let before = if newest {
        page.after_seq(kind)?
    } else {
        if let Some(c) = page.after_seq(kind)? {
            query.after = Some(query.after.map_or(c, |a| a.max(c)));
        }
        None
    };
    let (entries, next) = caller
        .run(move |service, _| {
            let mut found = Vec::new();
            let collect = |e: &crate::store::ExecutionEntry, raw: &[u8], hash: &str| {
                let item = crate::store::export_item(e.seq, raw, hash);
                found.push((e.seq.to_be_bytes().to_vec(), item));
                found.len() <= page.limit
            };
            if newest {
                service.store().audit_scan_back(&query, before, collect)?;
            } else {
                service.store().audit_scan(&query, collect)?;
            }
            Ok(page.finish(kind, found))
        })
        .await?;
    Ok(Json(Entries { entries, next }))
}

#[utoipa::path(
    get,
    path = "/v1/audit/export",
    tag = "audit",
    operation_id = "audit_export",
    params(AuditParams),
    responses((status = 200, description = "the entries, one JSON object a line (or CSV with `format=csv`)", body = String, content_type = "application/x-ndjson")),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("audit.read")))
)]
pub(super) async fn export(
    Query(params): Query<AuditParams>,
    caller: Caller,
) -> ApiResult<Response> {
    caller.may(Operation::AuditRead)?;
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
    let content_type = if csv {
        "text/csv"
    } else {
        "application/x-ndjson"
    };
    let store = caller.service().store().clone();
    Ok(streamed(content_type, move |out| {
        produce(&store, &query, csv, out)
    }))
}

/// Writes the export until the scan ends or the client leaves.
fn produce(
    store: &crate::store::Store,
    query: &AuditQuery,
    csv: bool,
    out: &mut Sink,
) -> Result<(), String> {
    let mut failure = None;
    let scanned = if csv {
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(crate::store::CSV_COLUMNS)
            .map_err(|e| e.to_string())?;
        let scanned = store.audit_scan(query, |e, _, hash| {
            w.write_record(crate::store::csv_row(e, hash))
                .map_err(|e| failure = Some(e.to_string()))
                .is_ok()
        });
        w.flush().map_err(|e| e.to_string())?;
        scanned
    } else {
        store.audit_scan(query, |e, raw, hash| {
            writeln!(out, "{}", crate::store::export_item(e.seq, raw, hash))
                .map_err(|e| failure = Some(e.to_string()))
                .is_ok()
        })
    };
    scanned.map_err(|e| format!("the export stopped: {e}"))?;
    failure.map_or(Ok(()), Err)
}

/// Checkpoints held elsewhere to verify the chain against.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyRequest {
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
}

impl RequestBody for VerifyRequest {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        if body.is_empty() {
            return Ok(VerifyRequest::default());
        }
        json(body, "invalid request")
    }
}

/// What verifying the chain found.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum Verified {
    /// Every link, the head and every checkpoint hold.
    Intact { ok: bool, summary: AuditSummary },
    /// The first problem found.
    Broken {
        ok: bool,
        problem: AuditProblem,
        message: String,
    },
}

#[utoipa::path(
    post,
    path = "/v1/audit/verify",
    tag = "audit",
    operation_id = "audit_verify",
    request_body = VerifyRequest,
    responses((status = 200, description = "whether the chain holds, or its first problem", body = Verified)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("audit.read")))
)]
pub(super) async fn verify(caller: Caller, body: Body<VerifyRequest>) -> ApiResult<Json<Verified>> {
    caller.may(Operation::AuditRead)?;
    let request = body.read()?;
    let outcome = caller
        .run(move |service, _| Ok(service.store().verify_audit(&request.checkpoints)?))
        .await?;
    Ok(Json(match outcome {
        Ok(summary) => Verified::Intact { ok: true, summary },
        Err(problem) => Verified::Broken {
            ok: false,
            message: problem.to_string(),
            problem,
        },
    }))
}

/// A signed checkpoint of the chain's head.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Signed {
    checkpoint: Option<Checkpoint>,
}

#[utoipa::path(
    post,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    operation_id = "audit_checkpoint",
    responses((status = 200, description = "the signed checkpoint of the chain's head", body = Signed)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("audit.checkpoint")))
)]
pub(super) async fn checkpoint(caller: Caller) -> ApiResult<Json<Signed>> {
    caller.may(Operation::AuditCheckpoint)?;
    let checkpoint = caller
        .run(|service, _| Ok(service.store().audit_checkpoint()?))
        .await?;
    Ok(Json(Signed { checkpoint }))
}

/// The host's audit key and the checkpoints it signed.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Checkpoints {
    #[serde(rename = "public-key")]
    public_key: String,
    checkpoints: Vec<Checkpoint>,
}

#[utoipa::path(
    get,
    path = "/v1/audit/checkpoints",
    tag = "audit",
    operation_id = "audit_checkpoints",
    responses((status = 200, description = "the host's audit key and its checkpoints", body = Checkpoints)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("audit.read")))
)]
pub(super) async fn checkpoints(caller: Caller) -> ApiResult<Json<Checkpoints>> {
    caller.may(Operation::AuditRead)?;
    let public_key = caller.service().store().audit_public_key();
    let checkpoints = caller
        .run(|service, _| Ok(service.store().audit_checkpoints()?))
        .await?;
    Ok(Json(Checkpoints {
        public_key,
        checkpoints,
    }))
}
