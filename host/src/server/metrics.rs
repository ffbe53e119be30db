//! `GET /metrics`: the host's metrics in the Prometheus text format, for a scraper with a
//! token of any role that may view executions.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiResult;
use crate::governance::access::Operation;
use crate::metrics::{CONTENT_TYPE, metrics};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    operation_id = "metrics_scrape",
    responses((status = 200, description = "the host's metrics in the Prometheus text format", body = String, content_type = "text/plain")),
    security(("bearer" = [])),
    extensions(("x-roster-action" = json!("executions.view")))
)]
pub(super) async fn scrape(caller: Caller) -> ApiResult<Response> {
    caller.may(Operation::ExecutionsView)?;
    let mut gauges = caller
        .run(|service, _| {
            let now = service.store().clock().now_ms();
            Ok(service.store().metric_gauges(now)?)
        })
        .await?;
    // Every installed worker has a queue depth, 0 when nothing waits.
    for name in caller.service().workers().keys() {
        if !gauges.queue.iter().any(|(w, _, _)| w == name) {
            gauges.queue.push((name.clone(), 0, 0));
        }
    }
    let controls = caller.service().controls();
    gauges.workers = caller
        .service()
        .workers()
        .keys()
        .map(|name| {
            let control = controls.get(name).filter(|c| c.paused);
            let breaker = control.is_some_and(|c| c.by == "circuit-breaker");
            (name.clone(), control.is_some(), breaker)
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics().scrape(&gauges),
    )
        .into_response())
}
