//! Staging and versions over the API.
//!
//! - `POST /v1/workers/{name}/dry-run` — body: a staging dataset; the dry run's report.
//! - `GET /v1/workers/{name}/versions` — the versions it ran and the one running.
//! - `GET /v1/workers/{name}/readiness` — the deployment-readiness checklist.
//! - `POST /v1/workers/{name}/deploy` — `{"reason": ...}`: go live if ready.
//! - `POST /v1/workers/{name}/rollback` — `{"reason": ...}`: run the previous version.
//! - `GET /v1/workers/{name}/shadow` — where the shadow version's proposals differed.

use super::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, RequestBody, json_requests};
use crate::governance::access::Operation;
use crate::service::Readiness;
use crate::service::shadow::ShadowReport;
use crate::service::staging::{Dataset, StagingReport};

impl RequestBody for Dataset {
    fn parse(body: &[u8]) -> ApiResult<Self> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the dataset is not UTF-8"))?;
        Ok(Dataset::parse("request body", text)?)
    }
}

/// A dry run's report.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DryRun {
    #[schema(value_type = Object)]
    staging: StagingReport,
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/dry-run",
    tag = "versions",
    operation_id = "versions_dry_run",
    params(("name" = String, Path, description = "the installed worker")),
    request_body(content = Object, description = "a staging dataset: `records` to load and `events` to run"),
    responses((status = 200, description = "the dry run's report", body = DryRun)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("staging.run")))
)]
pub(super) async fn dry_run(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<Dataset>,
) -> ApiResult<Json<DryRun>> {
    caller.may_on_worker(Operation::StagingRun, &name)?;
    let staging = caller
        .run(move |service, account| {
            let dataset = body.read()?;
            Ok(service.dry_run(&name, &dataset, &account.id)?)
        })
        .await?;
    Ok(Json(DryRun { staging }))
}

/// One version a worker ran.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Version {
    version: String,
    digest: String,
    first_seen: i64,
    running: bool,
}

/// The versions a worker ran, and the digest running now.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Versions {
    versions: Vec<Version>,
    running: String,
}

#[utoipa::path(
    get,
    path = "/v1/workers/{name}/versions",
    tag = "versions",
    operation_id = "versions_versions",
    params(("name" = String, Path, description = "the installed worker")),
    responses((status = 200, description = "the versions it ran, and the one running", body = Versions)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.view")))
)]
pub(super) async fn versions(
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<Json<Versions>> {
    caller.may_on_worker(Operation::WorkerView, &name)?;
    let (kept, running) = caller
        .run(move |service, _| Ok(service.versions(&name)?))
        .await?;
    let versions = kept
        .into_iter()
        .map(|v| Version {
            running: v.digest == running,
            version: v.version,
            digest: v.digest,
            first_seen: v.first_seen,
        })
        .collect();
    Ok(Json(Versions { versions, running }))
}

/// The deployment-readiness checklist.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ReadinessAnswer {
    readiness: Readiness,
}

#[utoipa::path(
    get,
    path = "/v1/workers/{name}/readiness",
    tag = "versions",
    operation_id = "versions_readiness",
    params(("name" = String, Path, description = "the installed worker")),
    responses((status = 200, description = "the deployment-readiness checklist", body = ReadinessAnswer)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.view")))
)]
pub(super) async fn readiness(
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<Json<ReadinessAnswer>> {
    caller.may_on_worker(Operation::WorkerView, &name)?;
    let readiness = caller
        .run(move |service, _| Ok(service.readiness(&name)?))
        .await?;
    Ok(Json(ReadinessAnswer { readiness }))
}

/// A deployment or rollback request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Reasoned {
    reason: String,
}

json_requests!(Reasoned);

/// The checklist of a version that went live.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Deployed {
    deployed: Readiness,
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/deploy",
    tag = "versions",
    operation_id = "versions_deploy",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = Reasoned,
    responses((status = 200, description = "the checklist of the version now live", body = Deployed)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.deploy")))
)]
pub(super) async fn deploy(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<Reasoned>,
) -> ApiResult<Json<Deployed>> {
    caller.may_on_worker(Operation::WorkerDeploy, &name)?;
    let request = body.read()?;
    let deployed = caller
        .run(move |service, account| Ok(service.deploy(&name, &account.id, &request.reason)?))
        .await?;
    Ok(Json(Deployed { deployed }))
}

/// The version a rollback went back to.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RolledBackTo {
    version: String,
    digest: String,
}

/// What a rollback did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RolledBack {
    #[serde(rename = "rolled-back-to")]
    rolled_back_to: RolledBackTo,
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/rollback",
    tag = "versions",
    operation_id = "versions_rollback",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = Reasoned,
    responses((status = 200, description = "the version now running", body = RolledBack)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.rollback")))
)]
pub(super) async fn rollback(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<Reasoned>,
) -> ApiResult<Json<RolledBack>> {
    caller.may_on_worker(Operation::WorkerRollback, &name)?;
    let request = body.read()?;
    let to = caller
        .run(move |service, account| Ok(service.rollback(&name, &account.id, &request.reason)?))
        .await?;
    Ok(Json(RolledBack {
        rolled_back_to: RolledBackTo {
            version: to.version,
            digest: to.digest,
        },
    }))
}

/// Where the shadow version's proposals differed from the live one's.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Shadow {
    #[schema(value_type = Object)]
    shadow: ShadowReport,
}

#[utoipa::path(
    get,
    path = "/v1/workers/{name}/shadow",
    tag = "versions",
    operation_id = "versions_shadow",
    params(("name" = String, Path, description = "the installed worker")),
    responses((status = 200, description = "the shadow runs' comparison", body = Shadow)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.view")))
)]
pub(super) async fn shadow(Path(name): Path<String>, caller: Caller) -> ApiResult<Json<Shadow>> {
    caller.may_on_worker(Operation::WorkerView, &name)?;
    let shadow = caller
        .run(move |service, _| Ok(service.shadow_report(&name)?))
        .await?;
    Ok(Json(Shadow { shadow }))
}
