//! Held actions over the API.
//!
//! - `GET /v1/approvals?status=&worker=&domain=` — the approval queue.
//! - `GET /v1/approvals/{id}` — one held action: trigger, data used, proposed action,
//!   confidence and the reasons it was held.
//! - `POST /v1/approvals/{id}/decide` — `{"verdict": "approve" | "edit" | "reject",
//!   "reason": ..., "edited": {...}}`; the caller's account is recorded.
//! - `GET /v1/workers/{name}/trust` — stage, metrics and the next promotion.
//! - `POST /v1/workers/{name}/stage` — `{"to": "supervised", "reason": ...}`.
//! - `POST /v1/workers/{name}/reversals` — `{"action": ..., "reason": ...}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::json;

use super::{Api, ApiResult, authenticate, authorize_worker, blocking, found, json_body, permit};
use crate::governance::access::{Operation, Resource};
use crate::service::DecisionRequest;
use crate::store::ApprovalFilter;

pub(super) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(filter): Query<ApprovalFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authenticate(&api, &headers)?;
    let resource = match (&filter.worker, &filter.domain) {
        (Some(worker), _) => found(
            &api,
            &account,
            Operation::WorkersList,
            api.service.worker_resource(worker),
        )?,
        (None, Some(domain)) => Resource::Domain(domain.clone()),
        (None, None) => Resource::Host,
    };
    // A worker is in a domain: ask about the domain, which is what a scoped role names.
    let resource = match resource {
        Resource::Worker { domain, .. } => Resource::Domain(domain),
        other => other,
    };
    permit(&api, &account, Operation::ApprovalsList, &resource)?;
    let approvals = blocking(move || Ok(api.service.approvals(&filter)?)).await?;
    Ok(Json(json!({ "approvals": approvals })))
}

/// [`super::authorize_worker`] for a held action.
fn authorize_approval(
    api: &Api,
    headers: &HeaderMap,
    operation: Operation,
    id: &str,
) -> ApiResult<crate::store::Account> {
    let account = authenticate(api, headers)?;
    let resource = found(
        api,
        &account,
        Operation::ApprovalsList,
        api.service.approval_resource(id),
    )?;
    permit(api, &account, operation, &resource)?;
    Ok(account)
}

pub(super) async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_approval(&api, &headers, Operation::ApprovalView, &id)?;
    let approval = blocking(move || Ok(api.service.store().approval(&id)?)).await?;
    Ok(Json(json!({ "approval": approval })))
}

pub(super) async fn decide(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_approval(&api, &headers, Operation::ApprovalDecide, &id)?;
    let request: DecisionRequest = json_body(&body)?;
    let approval = blocking(move || Ok(api.service.decide(&id, &account.id, request)?)).await?;
    Ok(Json(json!({ "approval": approval })))
}

pub(super) async fn trust(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize_worker(&api, &headers, Operation::TrustView, &name)?;
    let report = blocking(move || Ok(api.service.trust(&name)?)).await?;
    Ok(Json(json!({ "trust": report })))
}

/// A move on the trust curve.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StageRequest {
    to: crate::store::Stage,
    reason: String,
}

pub(super) async fn stage(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::TrustPromote, &name)?;
    let request: StageRequest = json_body(&body)?;
    let report = blocking(move || {
        Ok(api
            .service
            .set_stage(&name, request.to, &account.id, &request.reason)?)
    })
    .await?;
    Ok(Json(json!({ "trust": report })))
}

/// A reversed action.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReversalRequest {
    action: String,
    reason: String,
}

pub(super) async fn reversal(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let account = authorize_worker(&api, &headers, Operation::ActionReverse, &name)?;
    let request: ReversalRequest = json_body(&body)?;
    let seq = blocking(move || {
        Ok(api
            .service
            .report_reversal(&name, &request.action, &account.id, &request.reason)?)
    })
    .await?;
    Ok(Json(json!({ "recorded": seq })))
}
