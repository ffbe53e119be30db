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
#[derive(Serialize)]
pub(super) struct DryRun {
    staging: StagingReport,
}

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
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Version {
    version: String,
    digest: String,
    first_seen: i64,
    running: bool,
}

/// The versions a worker ran, and the digest running now.
#[derive(Serialize)]
pub(super) struct Versions {
    versions: Vec<Version>,
    running: String,
}

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
#[derive(Serialize)]
pub(super) struct ReadinessAnswer {
    readiness: Readiness,
}

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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Reasoned {
    reason: String,
}

json_requests!(Reasoned);

/// The checklist of a version that went live.
#[derive(Serialize)]
pub(super) struct Deployed {
    deployed: Readiness,
}

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
#[derive(Serialize)]
pub(super) struct RolledBackTo {
    version: String,
    digest: String,
}

/// What a rollback did.
#[derive(Serialize)]
pub(super) struct RolledBack {
    #[serde(rename = "rolled-back-to")]
    rolled_back_to: RolledBackTo,
}

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
#[derive(Serialize)]
pub(super) struct Shadow {
    shadow: ShadowReport,
}

pub(super) async fn shadow(Path(name): Path<String>, caller: Caller) -> ApiResult<Json<Shadow>> {
    caller.may_on_worker(Operation::WorkerView, &name)?;
    let shadow = caller
        .run(move |service, _| Ok(service.shadow_report(&name)?))
        .await?;
    Ok(Json(Shadow { shadow }))
}
