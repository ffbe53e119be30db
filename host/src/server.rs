//! The HTTP API of `roster serve` (axum): the router, and the limits every request
//! passes. Handlers live by resource, each taking its extractors — the path, the query,
//! the `Caller` of `auth.rs` and the typed `Body` of `extract.rs` — and answering a
//! typed body or an [`ApiError`]:
//!
//! - `events.rs` — `POST /v1/events/{name}`, the webhook for named business events. The
//!   caller signs `"{timestamp}.{body}"` with HMAC-SHA256 under the shared webhook secret
//!   and sends `x-roster-timestamp` (Unix seconds) and `x-roster-signature: sha256=<hex>`.
//!   Requests older than the tolerance, unsigned or wrongly signed are refused and change
//!   nothing.
//! - Everything else needs `authorization: Bearer <api token>`: `records.rs` (get, query,
//!   create, update, delete), `workers.rs` (workers, inventory, models, queue, executions,
//!   alerts, pause, resume, the kill switch), `audit.rs` (search, export, verify,
//!   checkpoints), `people.rs` (accounts, tokens, grants), `approvals.rs` (held actions,
//!   the trust curve), `versions.rs` (dry runs, versions, readiness, deploy, rollback).
//!
//! `auth.rs` holds the caller, `extract.rs` the body, query and path extractors, `error.rs`
//! the one error shape (RFC 9457 problems), `request.rs` the request id and the bounds
//! every request passes, `throttle.rs` the throttling of failed authentication.

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, patch, post};

mod approvals;
mod audit;
mod auth;
mod current;
mod error;
mod events;
mod extract;
pub mod people;
mod records;
mod request;
pub mod throttle;
mod versions;
mod workers;

pub use error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
pub use records::parse_where;
pub use request::REQUEST_ID;

use crate::service::Service;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// The API's state.
#[derive(Clone)]
pub struct Api {
    service: Arc<Service>,
}

impl Api {
    /// Runs store work on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Service) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let service = self.service.clone();
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(ApiError::internal)?
    }
}

/// Builds the router over a running service. Serve it with the peer's address
/// (`into_make_service_with_connect_info::<SocketAddr>()`) so that failed authentication
/// is throttled per client ([`throttle`]).
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/events/{name}", post(events::receive))
        .route("/v1/whoami", get(people::whoami))
        .route("/v1/people", get(people::list).post(people::create))
        .route("/v1/people/{id}", patch(people::change))
        .route("/v1/people/{id}/tokens", post(people::issue_token))
        .route("/v1/tokens/{id}", delete(people::revoke_token))
        .route("/v1/grants", get(people::grants))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/decide", post(approvals::decide))
        .route("/v1/workers/{name}/trust", get(approvals::trust))
        .route("/v1/workers/{name}/stage", post(approvals::stage))
        .route("/v1/workers/{name}/reversals", post(approvals::reversal))
        .route("/v1/workers/{name}/dry-run", post(versions::dry_run))
        .route("/v1/workers/{name}/versions", get(versions::versions))
        .route("/v1/workers/{name}/readiness", get(versions::readiness))
        .route("/v1/workers/{name}/deploy", post(versions::deploy))
        .route("/v1/workers/{name}/rollback", post(versions::rollback))
        .route("/v1/workers/{name}/shadow", get(versions::shadow))
        .route("/v1/queue", get(workers::queue))
        .route("/v1/workers", get(workers::list))
        .route("/v1/inventory", get(workers::inventory))
        .route("/v1/models", get(workers::models))
        .route("/v1/workers/{name}/pause", post(workers::pause))
        .route("/v1/workers/{name}/resume", post(workers::resume))
        .route("/v1/kill", post(workers::kill))
        .route("/v1/executions", get(workers::executions))
        .route("/v1/alerts", get(workers::alerts))
        .route("/v1/audit", get(audit::search))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/audit/verify", post(audit::verify))
        .route("/v1/audit/checkpoint", post(audit::checkpoint))
        .route("/v1/audit/checkpoints", get(audit::checkpoints))
        .route("/v1/audit/grants", get(people::audit_grants))
        .route(
            "/v1/records/{object}",
            get(records::query).post(records::create),
        )
        .route(
            "/v1/records/{object}/{id}",
            get(records::get)
                .patch(records::update)
                .delete(records::delete),
        )
        .fallback(request::no_route)
        .method_not_allowed_fallback(request::no_method)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(request::bound))
        .layer(axum::middleware::from_fn_with_state(
            throttle::Throttle::new(service.config().failed_auth_burst),
            throttle::limit,
        ))
        .layer(axum::middleware::from_fn(request::identify))
        .with_state(Api { service })
}
