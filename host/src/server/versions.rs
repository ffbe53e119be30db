//! Staging and versions over the API.
//!
//! - `POST /v1/workers/{name}/dry-run` — body: a staging dataset; the dry run's report.
//! - `GET /v1/workers/{name}/versions` — the versions it ran and the one running.
//! - `GET /v1/workers/{name}/readiness` — the deployment-readiness checklist.
//! - `POST /v1/workers/{name}/deploy` — `{"reason": ...}`: go live if ready.
//! - `POST /v1/workers/{name}/rollback` — `{"reason": ...}`: run the previous version.
//! - `GET /v1/workers/{name}/shadow` — where the shadow version's proposals differed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::json;

use super::{Api, ApiError, ApiResult, authorize_worker, blocking, json_body};
use crate::governance::access::Operation;
use crate::service::staging::Dataset;

pub(super) async fn dry_run(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::StagingRun, &name)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the dataset is not UTF-8"))?
        .to_string();
    let report = blocking(move || {
        let dataset = Dataset::parse("request body", &text)?;
        Ok(api.service.dry_run(&name, &dataset, &account.id)?)
    })
    .await?;
    Ok(Json(json!({ "staging": report })))
}

pub(super) async fn versions(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_worker(&api, &headers, Operation::WorkerView, &name)?;
    let (versions, running) = blocking(move || Ok(api.service.versions(&name)?)).await?;
    let list: Vec<serde_json::Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "digest": v.digest,
                "first-seen": v.first_seen,
                "running": v.digest == running,
            })
        })
        .collect();
    Ok(Json(json!({ "versions": list, "running": running })))
}

pub(super) async fn readiness(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_worker(&api, &headers, Operation::WorkerView, &name)?;
    let readiness = blocking(move || Ok(api.service.readiness(&name)?)).await?;
    Ok(Json(json!({ "readiness": readiness })))
}

/// A deployment or rollback request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Reasoned {
    reason: String,
}

pub(super) async fn deploy(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::WorkerDeploy, &name)?;
    let request: Reasoned = json_body(&body)?;
    let readiness =
        blocking(move || Ok(api.service.deploy(&name, &account.id, &request.reason)?)).await?;
    Ok(Json(json!({ "deployed": readiness })))
}

pub(super) async fn rollback(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::WorkerRollback, &name)?;
    let request: Reasoned = json_body(&body)?;
    let to =
        blocking(move || Ok(api.service.rollback(&name, &account.id, &request.reason)?)).await?;
    Ok(Json(
        json!({ "rolled-back-to": { "version": to.version, "digest": to.digest } }),
    ))
}

pub(super) async fn shadow(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_worker(&api, &headers, Operation::WorkerView, &name)?;
    let report = blocking(move || Ok(api.service.shadow_report(&name)?)).await?;
    Ok(Json(json!({ "shadow": report })))
}
