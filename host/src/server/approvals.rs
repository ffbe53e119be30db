//! Held actions over the API.
//!
//! - `GET /v1/approvals?status=&worker=&domain=` — the approval queue.
//! - `GET /v1/approvals/{id}` — one held action: trigger, data used, proposed action,
//!   confidence and the reasons it was held.
//! - `POST /v1/approvals/{id}/decide` — `{"verdict": "approve" | "edit" | "reject",
//!   "reason": ..., "edited": {...}}`; the caller's account is recorded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::json;

use super::{Api, ApiResult, authorize, blocking, json_body};
use crate::access::{Operation, Resource};
use crate::service::DecisionRequest;
use crate::store::ApprovalFilter;

pub(super) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(filter): Query<ApprovalFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    let resource = match (&filter.worker, &filter.domain) {
        (Some(worker), _) => api.service.worker_resource(worker)?,
        (None, Some(domain)) => Resource::Domain(domain.clone()),
        (None, None) => Resource::Host,
    };
    // A worker is in a domain: ask about the domain, which is what a scoped role names.
    let resource = match resource {
        Resource::Worker { domain, .. } => Resource::Domain(domain),
        other => other,
    };
    authorize(&api, &headers, Operation::ApprovalsList, &resource)?;
    let approvals = blocking(move || Ok(api.service.approvals(&filter)?)).await?;
    Ok(Json(json!({ "approvals": approvals })))
}

pub(super) async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let resource = api.service.approval_resource(&id)?;
    authorize(&api, &headers, Operation::ApprovalView, &resource)?;
    let approval = blocking(move || Ok(api.service.store().approval(&id)?)).await?;
    Ok(Json(json!({ "approval": approval })))
}

pub(super) async fn decide(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let resource = api.service.approval_resource(&id)?;
    let account = authorize(&api, &headers, Operation::ApprovalDecide, &resource)?;
    let request: DecisionRequest = json_body(&body)?;
    let approval = blocking(move || Ok(api.service.decide(&id, &account.id, request)?)).await?;
    Ok(Json(json!({ "approval": approval })))
}
