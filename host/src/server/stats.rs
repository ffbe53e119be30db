//! What the dashboard and the value page read, over the API.
//!
//! - `GET /v1/stats/activity?from=&to=&domain=&worker=&kind=&status=&bucket=` — executions,
//!   success and error rates, average and p95 duration, records affected, actions held;
//!   step by step and per worker.
//! - `GET /v1/stats/value?from=&to=&domain=&worker=&kind=` — work done without a person,
//!   people's decisions, escalations and reversals, minutes saved, cost, and the backlog
//!   of held actions.
//!
//! Both count whole hours from the statistics the store keeps as the log grows, so they
//! answer as fast for a year of executions as for a day.

use axum::Json;

use super::auth::Caller;
use super::error::ApiResult;
use super::extract::Query;
use crate::governance::access::Operation;
use crate::service::stats::{Dashboard, StatsFilter, ValueReport};

#[utoipa::path(
    get,
    path = "/v1/stats/activity",
    tag = "workers",
    operation_id = "stats_activity",
    params(StatsFilter),
    responses((status = 200, description = "the activity of the executions the filter selects", body = Dashboard)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("executions.view")))
)]
pub(super) async fn activity(
    caller: Caller,
    Query(filter): Query<StatsFilter>,
) -> ApiResult<Json<Dashboard>> {
    caller.may(Operation::ExecutionsView)?;
    let dashboard = caller
        .run(move |service, _| Ok(service.dashboard(&filter)?))
        .await?;
    Ok(Json(dashboard))
}

#[utoipa::path(
    get,
    path = "/v1/stats/value",
    tag = "workers",
    operation_id = "stats_value",
    params(StatsFilter),
    responses((status = 200, description = "what the executions the filter selects were worth and cost", body = ValueReport)),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("executions.view")))
)]
pub(super) async fn value(
    caller: Caller,
    Query(filter): Query<StatsFilter>,
) -> ApiResult<Json<ValueReport>> {
    caller.may(Operation::ExecutionsView)?;
    let report = caller
        .run(move |service, _| Ok(service.value_report(&filter)?))
        .await?;
    Ok(Json(report))
}
