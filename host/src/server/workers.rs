//! The running workforce over the API: `GET /v1/workers`, `/v1/inventory`, `/v1/models`,
//! `/v1/queue`, `/v1/executions`, `/v1/alerts`; `POST /v1/workers/{name}/pause` and
//! `/resume`, and the kill switch, `POST /v1/kill`.

use super::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, json_requests};
use super::page::{Listed, NoFilter, PageParams};
use crate::failure::{Breaker, Escalation, RetryPolicy};
use crate::governance::access::{Operation, Resource};
use crate::sandbox::limits::Limits;
use crate::sandbox::manifest::{Domain, Owners};
use crate::service::inventory::{InventoryEntry, InventoryFilter};
use crate::service::{Installed, KillReport, KillScope, QueueStatus};
use crate::store::{Alert, AuditQuery, ExecutionEntry, ModelSummary, WorkerControl};

/// One installed worker as `GET /v1/workers` lists it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) struct WorkerSummary {
    paused: bool,
    control: Option<WorkerControl>,
    alert_owners: Vec<String>,
    #[schema(value_type = Object)]
    retry: RetryPolicy,
    #[schema(value_type = Object)]
    escalation: Escalation,
    #[schema(value_type = Object)]
    circuit_breaker: Breaker,
    name: String,
    plugin: String,
    version: String,
    domain: Domain,
    description: String,
    owners: Owners,
    principal: String,
    enabled: bool,
    triggers: Vec<String>,
    #[schema(value_type = Object)]
    limits: Limits,
    component_digest: String,
}

/// The installed workers, by name.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Workers {
    workers: Vec<WorkerSummary>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "workers",
    operation_id = "workers_list",
    params(PageParams),
    responses((status = 200, description = "the installed workers", body = Workers)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("workers.list")))
)]
pub(super) async fn list(
    Listed { page, .. }: Listed<NoFilter>,
    caller: Caller,
) -> ApiResult<Json<Workers>> {
    caller.may(Operation::WorkersList)?;
    let service = caller.service();
    let controls = service.controls();
    let installed = service.workers();
    let (names, next) = page.cut("workers", installed.iter(), |(name, _)| {
        name.as_bytes().to_vec()
    })?;
    let workers = names
        .into_iter()
        .map(|(name, w)| summary(name, w, controls.get(name).cloned()))
        .collect();
    Ok(Json(Workers { workers, next }))
}

/// How `GET /v1/workers` and `GET /v1/workers/{name}` describe a worker.
fn summary(name: &str, w: &Installed, control: Option<WorkerControl>) -> WorkerSummary {
    let m = &w.config.manifest;
    let loaded = w.loaded();
    WorkerSummary {
        paused: control.as_ref().is_some_and(|c| c.paused),
        control,
        alert_owners: w.config.owners.clone(),
        retry: w.config.retry.clone(),
        escalation: w.config.escalation.clone(),
        circuit_breaker: w.config.breaker.clone(),
        name: name.to_string(),
        plugin: m.plugin.id.clone(),
        version: m.plugin.version.clone(),
        domain: m.plugin.domain,
        description: m.plugin.description.clone(),
        owners: m.owners.clone(),
        principal: w.config.grant.grant.principal.clone(),
        enabled: w.config.enabled,
        triggers: w.config.triggers.iter().map(|t| t.label.clone()).collect(),
        limits: loaded.limits(),
        component_digest: loaded.component_digest().to_string(),
    }
}

/// One worker: what the list says, and its conditions, grant and latest executions.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) struct WorkerDetail {
    #[serde(flatten)]
    summary: WorkerSummary,
    /// Its configuration file.
    config: String,
    /// Its conditions, as written.
    conditions: String,
    /// The capabilities its grant gives.
    granted: Vec<String>,
    /// Its ten latest executions, newest first.
    recent: Vec<ExecutionEntry>,
}

#[utoipa::path(
    get,
    path = "/v1/workers/{name}",
    tag = "workers",
    operation_id = "workers_show",
    params(("name" = String, Path, description = "the installed worker")),
    responses((status = 200, description = "the worker", body = WorkerDetail)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.view")))
)]
pub(super) async fn show(
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<Json<WorkerDetail>> {
    caller.may_on_worker(Operation::WorkerView, &name)?;
    let detail = caller
        .run(move |service, _| {
            let installed = service.workers();
            let w = installed
                .get(&name)
                .ok_or_else(|| crate::error::Error::UnknownWorker(name.clone()))?;
            let granted = crate::scope::CapabilityName::ALL
                .iter()
                .filter(|c| w.config.grant.capabilities.has(**c))
                .map(|c| c.as_str().to_string())
                .collect();
            Ok(WorkerDetail {
                summary: summary(&name, w, service.controls().get(&name).cloned()),
                config: w.config.path.display().to_string(),
                conditions: format!("{:?}", w.config.conditions),
                granted,
                recent: service.store().recent_executions(&name, 10)?,
            })
        })
        .await?;
    Ok(Json(detail))
}

/// The worker inventory.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Inventory {
    workers: Vec<InventoryEntry>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/inventory",
    tag = "workers",
    operation_id = "workers_inventory",
    params(InventoryFilter, PageParams),
    responses((status = 200, description = "the worker inventory", body = Inventory)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("inventory.view")))
)]
pub(super) async fn inventory(
    Listed { filter, page }: Listed<InventoryFilter>,
    caller: Caller,
) -> ApiResult<Json<Inventory>> {
    caller.may(Operation::InventoryView)?;
    let (workers, next) = caller
        .run(move |service, _| {
            page.cut("inventory", service.inventory(&filter)?, |e| {
                e.name.as_bytes().to_vec()
            })
        })
        .await?;
    Ok(Json(Inventory { workers, next }))
}

/// The offline models.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Models {
    models: Vec<ModelSummary>,
}

/// The offline models: what reviewers taught them and how they judged their predictions
/// (part of the workers' accuracy record, so readable by whoever sees the inventory).
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "workers",
    operation_id = "workers_models",
    responses((status = 200, description = "the offline models", body = Models)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("inventory.view")))
)]
pub(super) async fn models(caller: Caller) -> ApiResult<Json<Models>> {
    caller.may(Operation::InventoryView)?;
    let models = caller
        .run(|service, _| Ok(service.store().models()?))
        .await?;
    Ok(Json(Models { models }))
}

/// The queue: what the dispatcher holds, and how many items are stored.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Queue {
    status: QueueStatus,
    stored: u64,
}

#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "workers",
    operation_id = "workers_queue",
    responses((status = 200, description = "the queue", body = Queue)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("queue.view")))
)]
pub(super) async fn queue(caller: Caller) -> ApiResult<Json<Queue>> {
    caller.may(Operation::QueueView)?;
    let status = caller.service().queue_status();
    let stored = caller
        .run(|service, _| Ok(service.store().queue_len()?))
        .await?;
    Ok(Json(Queue { status, stored }))
}

/// `?worker=&domain=&kind=&status=&since=&until=&after=` of the execution log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecutionsQuery {
    /// Only this worker's executions.
    worker: Option<String>,
    /// Only executions of workers of this domain.
    domain: Option<String>,
    /// Only executions of workers of this kind: `ai` (granted inference) or `rules`.
    kind: Option<String>,
    /// Only executions that ended with this status.
    status: Option<String>,
    /// Only executions started at or after (ms since the Unix epoch).
    since: Option<i64>,
    /// Only executions started before.
    until: Option<i64>,
    /// Only entries after this position of the log.
    after: Option<u64>,
}

/// Entries of the execution log.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Executions {
    executions: Vec<ExecutionEntry>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/executions",
    tag = "workers",
    operation_id = "workers_executions",
    params(ExecutionsQuery, PageParams),
    responses((status = 200, description = "entries of the execution log", body = Executions)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("executions.view")))
)]
pub(super) async fn executions(
    Listed { filter: q, page }: Listed<ExecutionsQuery>,
    caller: Caller,
) -> ApiResult<Json<Executions>> {
    caller.may(Operation::ExecutionsView)?;
    // Read from the later of `after` and the cursor, one entry past the page, in log
    // order: a page never reads more of the log than it needs.
    let after = match (q.after, page.after_seq("executions")?) {
        (Some(a), Some(c)) => Some(a.max(c)),
        (a, c) => a.or(c),
    };
    if let Some(kind) = q.kind.as_deref().filter(|k| !matches!(*k, "ai" | "rules")) {
        return Err(ApiError::bad_request(format!(
            "`kind` is `ai` or `rules`, not `{kind}`"
        )));
    }
    let (executions, next) = caller
        .run(move |service, _| {
            let allowed = service.workers_matching(
                q.domain.as_deref(),
                q.kind.as_deref(),
                q.worker.as_deref(),
            );
            let query = AuditQuery {
                worker: q.worker,
                status: q.status,
                since: q.since,
                until: q.until,
                after,
                ..AuditQuery::default()
            };
            let mut found = Vec::new();
            service.store().audit_scan(&query, |e, _, _| {
                if !e.is_governance() && allowed.as_ref().is_none_or(|a| a.contains(&e.worker)) {
                    found.push((e.seq.to_be_bytes().to_vec(), e.clone()));
                }
                found.len() <= page.limit
            })?;
            Ok(page.finish("executions", found))
        })
        .await?;
    Ok(Json(Executions { executions, next }))
}

/// The host's alerts.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Alerts {
    alerts: Vec<Alert>,
    /// The cursor of the next page; `null` on the last.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "workers",
    operation_id = "workers_alerts",
    params(PageParams),
    responses((status = 200, description = "the alerts", body = Alerts)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("alerts.view")))
)]
pub(super) async fn alerts(
    Listed { page, .. }: Listed<NoFilter>,
    caller: Caller,
) -> ApiResult<Json<Alerts>> {
    caller.may(Operation::AlertsView)?;
    let (alerts, next) = caller
        .run(move |service, _| {
            page.cut("alerts", service.store().alerts()?, |a| {
                a.seq.to_be_bytes().to_vec()
            })
        })
        .await?;
    Ok(Json(Alerts { alerts, next }))
}

/// A pause or resume request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlRequest {
    /// Why.
    reason: String,
    /// On resume: restore a grant the kill switch revoked (after reviewing it).
    #[serde(default)]
    restore_grant: bool,
}

/// A kill-switch request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KillRequest {
    /// `{"worker": "name"}`, `{"domain": "revenue"}` or `"all"`.
    scope: KillScope,
    /// Why (required).
    reason: String,
    /// Revoke the workers' grants until a person restores them.
    #[serde(default)]
    revoke_grants: bool,
}

json_requests!(ControlRequest, KillRequest);

/// A worker's pause state after a pause or resume.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Control {
    control: WorkerControl,
}

/// What the kill switch did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Killed {
    report: KillReport,
}

#[utoipa::path(
    post,
    path = "/v1/kill",
    tag = "workers",
    operation_id = "workers_kill",
    request_body = KillRequest,
    responses((status = 200, description = "what the kill switch did", body = Killed)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("kill")))
)]
pub(super) async fn kill(caller: Caller, body: Body<KillRequest>) -> ApiResult<Json<Killed>> {
    // The scope is in the body: it is read before the policies are asked.
    let request = body.read()?;
    let resource = match &request.scope {
        KillScope::Worker(name) => caller.found(
            Operation::WorkersList,
            caller.service().worker_resource(name),
        )?,
        KillScope::Domain(name) => Resource::Domain(name.clone()),
        KillScope::All => Resource::Host,
    };
    caller.may_on(Operation::Kill, &resource)?;
    if request.revoke_grants {
        caller.may_on(Operation::GrantsChange, &resource)?;
    }
    let report = caller
        .run(move |service, account| {
            Ok(service.kill(
                &request.scope,
                &account.id,
                &request.reason,
                request.revoke_grants,
            )?)
        })
        .await?;
    Ok(Json(Killed { report }))
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/pause",
    tag = "workers",
    operation_id = "workers_pause",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = ControlRequest,
    responses((status = 200, description = "the worker's pause state", body = Control)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.pause")))
)]
pub(super) async fn pause(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<ControlRequest>,
) -> ApiResult<Json<Control>> {
    caller.may_on_worker(Operation::WorkerPause, &name)?;
    let request = body.read()?;
    let control = caller
        .run(move |service, account| Ok(service.pause(&name, &account.id, &request.reason)?))
        .await?;
    Ok(Json(Control { control }))
}

#[utoipa::path(
    post,
    path = "/v1/workers/{name}/resume",
    tag = "workers",
    operation_id = "workers_resume",
    params(("name" = String, Path, description = "the installed worker")),
    request_body = ControlRequest,
    responses((status = 200, description = "the worker's pause state", body = Control)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("worker.resume")))
)]
pub(super) async fn resume(
    Path(name): Path<String>,
    caller: Caller,
    body: Body<ControlRequest>,
) -> ApiResult<Json<Control>> {
    let resource = caller.may_on_worker(Operation::WorkerResume, &name)?;
    let request = body.read()?;
    if request.restore_grant {
        caller.may_on(Operation::GrantsChange, &resource)?;
    }
    let control = caller
        .run(move |service, account| {
            Ok(service.resume(&name, &account.id, &request.reason, request.restore_grant)?)
        })
        .await?;
    Ok(Json(Control { control }))
}
