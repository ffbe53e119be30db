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

use super::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiResult;
use super::extract::{Body, json_requests};
use super::page::{Listed, PageParams, time_key};
use crate::governance::access::{Operation, Resource};
use crate::governance::trust::TrustReport;
use crate::service::DecisionRequest;
use crate::store::{Approval, ApprovalFilter, Stage};

/// Held actions.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Approvals {
    approvals: Vec<Approval>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/approvals",
    tag = "approvals",
    operation_id = "approvals_list",
    params(ApprovalFilter, PageParams),
    responses((status = 200, description = "the held actions", body = Approvals)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("approvals.list")))
)]
pub(super) async fn list(
    Listed { filter, page }: Listed<ApprovalFilter>,
    caller: Caller,
) -> ApiResult<Json<Approvals>> {
    let resource = match (&filter.worker, &filter.domain) {
        (Some(worker), _) => caller.found(
            Operation::WorkersList,
            caller.service().worker_resource(worker),
        )?,
        (None, Some(domain)) => Resource::Domain(domain.clone()),
        (None, None) => Resource::Host,
    };
    // A worker is in a domain: ask about the domain, which is what a scoped role names.
    let resource = match resource {
        Resource::Worker { domain, .. } => Resource::Domain(domain),
        other => other,
    };
    caller.may_on(Operation::ApprovalsList, &resource)?;
    let (approvals, next) = caller
        .run(move |service, _| {
            // Oldest first, as the store lists them.
            page.cut("approvals", service.approvals(&filter)?, |a| {
                time_key(a.created_at, &a.id)
            })
        })
        .await?;
    Ok(Json(Approvals { approvals, next }))
}

/// One held action.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OneApproval {
    approval: Option<Approval>,
}

#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    tag = "approvals",
    operation_id = "approvals_show",
    params(("id" = String, Path, description = "the held action")),
    responses((status = 200, description = "the held action", body = OneApproval)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("approval.view")))
)]
pub(super) async fn show(Path(id): Path<String>, caller: Caller) -> ApiResult<Json<OneApproval>> {
    caller.may_on_approval(Operation::ApprovalView, &id)?;
    let approval = caller
        .run(move |service, _| Ok(service.store().approval(&id)?))
        .await?;
    Ok(Json(OneApproval { approval }))
}

/// A decided held action.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Decided {
    approval: Approval,
}

/// A move on the trust curve.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StageRequest {
    to: Stage,
    reason: String,
}

/// A reversed action.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReversalRequest {
    action: String,
    reason: String,
}

json_requests!(DecisionRequest, StageRequest, ReversalRequest);

#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/decide",
    tag = "approvals",
    operation_id = "approvals_decide",
    params(("id" = String, Path, description = "the held action")),
    request_body = DecisionRequest,
    responses((status = 200, description = "the held action as decided", body = Decided)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("approval.decide")))
)]
pub(super) async fn decide(
    Path(id): Path<String>,
    caller: Caller,
    body: Body<DecisionRequest>,
) -> ApiResult<Json<Decided>> {
    caller.may_on_approval(Operation::ApprovalDecide, &id)?;
    let request = body.read()?;
    let approval = caller
        .run(move |service, account| Ok(service.decide(&id, &account.id, request)?))
        .await?;
    Ok(Json(Decided { approval }))
}

/// A worker's place on the trust curve.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Trust {
    trust: TrustReport,
}

#[utoipa::path(
    get,
    path = "/v1/workers/{name}/trust",
    tag = "trust",
    operation_id = "approvals_trust",
    params(("name" = String, Path, description = "the installed worker")),
    responses((status = 200, description = "the worker's stage, metrics and next promotion", body = Trust)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("trust.view")))
)]
pub(super) async fn trust(Path(name): Path<String>, caller: Caller) -> ApiResult<Json<Trust>> {
    caller.may_on_worker(Operation::TrustView, &name)?;
    let trust = caller
        .run(move |service, _| Ok(service.trust(&name)?))
        .await?;
    Ok(Json(Trust { trust }))
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/stage",
    tag = "trust",
    operation_id = "approvals_stage",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = StageRequest,
    responses((status = 200, description = "the trust report after the move", body = Trust)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("trust.promote")))
)]
pub(super) async fn stage(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<StageRequest>,
) -> ApiResult<Json<Trust>> {
    caller.may_on_worker(Operation::TrustPromote, &name)?;
    let request = body.read()?;
    let trust = caller
        .run(move |service, account| {
            Ok(service.set_stage(&name, request.to, &account.id, &request.reason)?)
        })
        .await?;
    Ok(Json(Trust { trust }))
}

/// The audit entry that records a reversal.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Recorded {
    recorded: u64,
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/reversals",
    tag = "trust",
    operation_id = "approvals_reversal",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = ReversalRequest,
    responses((status = 200, description = "the audit entry's position", body = Recorded)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("action.reverse")))
)]
pub(super) async fn reversal(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<ReversalRequest>,
) -> ApiResult<Json<Recorded>> {
    caller.may_on_worker(Operation::ActionReverse, &name)?;
    let request = body.read()?;
    let recorded = caller
        .run(move |service, account| {
            Ok(service.report_reversal(&name, &request.action, &account.id, &request.reason)?)
        })
        .await?;
    Ok(Json(Recorded { recorded }))
}
