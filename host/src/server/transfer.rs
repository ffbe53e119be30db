//! Records in bulk: `POST /v1/imports/records` (a CSV or JSON Lines body, streamed) and
//! `GET /v1/exports/records/{object}` (streamed while it is read).
//!
//! An import's body is written to a file in the data directory as it arrives (up to
//! [`MAX_IMPORT`] bytes), then imported from there: every row checked before any is
//! written, so one bad row imports nothing, and no import is held in memory.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::io::Write as _;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Path, Query};
use super::stream::streamed;
use crate::governance::access::Operation;
use crate::store::{ImportSummary, RecordFormat};

/// The largest import body accepted.
pub const MAX_IMPORT: u64 = 4 << 30;

/// The path imports are posted to (its bodies are bounded by [`MAX_IMPORT`]).
pub const IMPORT_PATH: &str = "/v1/imports/records";

/// `?object=&format=` of an import.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportParams {
    /// The object type of every CSV row, and of JSON lines that name none.
    object: Option<String>,
    /// `csv` or `jsonl`.
    #[param(inline)]
    format: RecordFormat,
}

/// Removes a spooled import when the request ends, however it ends.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether the declared content type, if any, is one an import reads.
fn importable(headers: &HeaderMap) -> bool {
    let Some(declared) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let media = declared
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    [
        "text/csv",
        "application/x-ndjson",
        "application/jsonl",
        "application/json",
        "text/plain",
    ]
    .contains(&media.as_str())
}

#[utoipa::path(
    post,
    path = "/v1/imports/records",
    tag = "records",
    operation_id = "records_import",
    params(ImportParams),
    request_body(
        description = "the records: CSV with a header row (id, owner, field names) or JSON Lines",
        content((String = "application/x-ndjson"), (String = "text/csv"))
    ),
    responses((status = 200, description = "every row was imported", body = ImportSummary)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.write")))
)]
pub(super) async fn import(
    Query(params): Query<ImportParams>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<ImportSummary>> {
    caller.may(Operation::RecordsWrite)?;
    if !importable(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an import is CSV (text/csv) or JSON Lines (application/x-ndjson)",
        ));
    }
    let dir = caller.service().config().data_dir.join("imports");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let spool = Spool(dir.join(format!("{}.part", uuid::Uuid::now_v7())));
    let mut file = std::fs::File::create(&spool.0).map_err(ApiError::internal)?;
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!("the body did not arrive: {e}")).with_code("invalid-body")
        })?;
        if let Some(data) = frame.data_ref() {
            size = size.saturating_add(data.len() as u64);
            if size > MAX_IMPORT {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("an import is at most {MAX_IMPORT} bytes; split the file"),
                ));
            }
            file.write_all(data).map_err(ApiError::internal)?;
        }
    }
    file.sync_all().map_err(ApiError::internal)?;
    drop(file);
    caller
        .run(move |service, account| {
            let summary = service.store().import_file(
                &spool.0,
                params.format,
                params.object.as_deref(),
                &account.id,
            )?;
            drop(spool);
            Ok(summary)
        })
        .await
        .map(Json)
}

/// `?format=` of an export.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportParams {
    /// `jsonl` (the default) or `csv`.
    #[param(inline)]
    format: Option<RecordFormat>,
}

#[utoipa::path(
    get,
    path = "/v1/exports/records/{object}",
    tag = "records",
    operation_id = "records_export",
    params(("object" = String, Path, description = "the object type"), ExportParams),
    responses((status = 200, description = "every record of the object, one JSON object a line (or CSV with `format=csv`)", body = String, content_type = "application/x-ndjson")),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("records.read")))
)]
pub(super) async fn export(
    Path(object): Path<String>,
    Query(params): Query<ExportParams>,
    caller: Caller,
) -> ApiResult<Response> {
    caller.may(Operation::RecordsRead)?;
    let store = caller.service().store().clone();
    store
        .schema()
        .object(&object)
        .map_err(crate::store::StoreError::from)?;
    let format = params.format.unwrap_or(RecordFormat::Jsonl);
    Ok(streamed(format.media_type(), move |out| {
        store
            .export_records(&object, format, out)
            .map(|_| ())
            .map_err(|e| format!("the export stopped: {e}"))
    }))
}
