//! The audit trail over the API: `GET /v1/audit` (search), `GET /v1/audit/export` (CSV or
//! JSON Lines, streamed), `POST /v1/audit/verify`, `POST /v1/audit/checkpoint` and `GET
//! /v1/audit/checkpoints`.

use super::extract::Query;
use axum::Json;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, RequestBody, json};
use super::page::{Listed, PageParams};
use crate::governance::access::Operation;
use crate::store::{AuditProblem, AuditQuery, AuditSummary, Checkpoint};

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
    if let Some(c) = page.after_seq("audit")? {
        query.after = Some(query.after.map_or(c, |a| a.max(c)));
    }
    let (entries, next) = caller
        .run(move |service, _| {
            let mut found = Vec::new();
            service.store().audit_scan(&query, |e, raw, hash| {
                let item = crate::store::export_item(e.seq, raw, hash);
                found.push((e.seq.to_be_bytes().to_vec(), item));
                found.len() <= page.limit
            })?;
            Ok(page.finish("audit", found))
        })
        .await?;
    Ok(Json(Entries { entries, next }))
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(64);
    // The export streams while it is read: its producer outlives the handler.
    let store = caller.service().store().clone();
    tokio::task::spawn_blocking(move || produce(&store, &query, csv, &tx));
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

/// Writes the export's pieces into the channel until the scan ends or the client leaves.
fn produce(
    store: &crate::store::Store,
    query: &AuditQuery,
    csv: bool,
    tx: &tokio::sync::mpsc::Sender<Piece>,
) {
    let line = |fields: Vec<String>| -> Bytes {
        let mut w = ::csv::Writer::from_writer(Vec::new());
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
    let result = store.audit_scan(query, |e, raw, hash| {
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

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
