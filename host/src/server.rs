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
//!   the trust curve), `versions.rs` (dry runs, versions, readiness, deploy, rollback),
//!   `stats.rs` (the dashboard's activity and the value page's worth).
//!
//! `auth.rs` holds the caller, `extract.rs` the body, query and path extractors, `error.rs`
//! the one error shape (RFC 9457 problems), `request.rs` the request id and the bounds
//! every request passes, `throttle.rs` the throttling of failed authentication.

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use spec::Conventions;

mod approvals;
mod audit;
mod auth;
mod current;
mod error;
mod events;
mod extract;
mod installs;
mod metrics;
mod page;
pub mod people;
mod records;
mod request;
mod rules;
mod spec;
mod stats;
pub(crate) mod stream;
pub mod throttle;
mod transfer;
mod versions;
mod workers;

pub use auth::{ActingAs, bootstrap_account};
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

/// The API's description: every route, with its parameters, bodies, answers, errors and
/// the access-policy action it needs (`x-roster-action`).
#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "Roster",
    description = "The API of a Roster host: records, workers, approvals, the audit trail, people and grants."
))]
struct ApiDoc;

/// The router and the API's description, built from the same handlers.
fn routes() -> (Router<Api>, utoipa::openapi::OpenApi) {
    let routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(events::receive))
        .routes(routes!(people::whoami))
        .routes(routes!(people::list, people::create))
        .routes(routes!(people::change))
        .routes(routes!(people::issue_token))
        .routes(routes!(people::revoke_token))
        .routes(routes!(people::login_link))
        .routes(routes!(people::grants))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::show))
        .routes(routes!(approvals::decide))
        .routes(routes!(approvals::trust))
        .routes(routes!(approvals::stage))
        .routes(routes!(approvals::reversal))
        .routes(routes!(versions::dry_run))
        .routes(routes!(versions::versions))
        .routes(routes!(versions::readiness))
        .routes(routes!(versions::deploy))
        .routes(routes!(versions::rollback))
        .routes(routes!(versions::shadow))
        .routes(routes!(rules::list, rules::save))
        .routes(routes!(rules::check))
        .routes(routes!(rules::show))
        .routes(routes!(rules::test))
        .routes(routes!(rules::deploy))
        .routes(routes!(rules::rollback))
        .routes(routes!(workers::queue))
        .routes(routes!(workers::list))
        .routes(routes!(workers::show))
        // An installation may carry its artifact: a larger body than elsewhere.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(installs::list, installs::create))
                .layer(axum::extract::DefaultBodyLimit::max(
                    installs::MAX_INSTALL_BODY,
                )),
        )
        .routes(routes!(installs::remove))
        .routes(routes!(installs::catalogue))
        .routes(routes!(workers::inventory))
        .routes(routes!(workers::models))
        .routes(routes!(workers::pause))
        .routes(routes!(workers::resume))
        .routes(routes!(workers::kill))
        .routes(routes!(workers::executions))
        .routes(routes!(workers::alerts))
        .routes(routes!(stats::activity))
        .routes(routes!(stats::value))
        .routes(routes!(audit::search))
        .routes(routes!(audit::export))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::checkpoints))
        .routes(routes!(people::audit_grants))
        .routes(routes!(records::query, records::create))
        .routes(routes!(transfer::import))
        .routes(routes!(transfer::export))
        .routes(routes!(records::get, records::update, records::delete))
        .routes(routes!(spec::health))
        .routes(routes!(spec::openapi))
        .routes(routes!(metrics::scrape));
    let (router, mut api) = routes.split_for_parts();
    // What every operation shares, once every operation is in.
    utoipa::Modify::modify(&Conventions, &mut api);
    (router, api)
}

/// The API's description, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// Builds the router over a running service. Serve it with the peer's address
/// (`into_make_service_with_connect_info::<SocketAddr>()`) so that failed authentication
/// is throttled per client ([`throttle`]).
pub fn router(service: Arc<Service>) -> Router {
    let (routes, _) = routes();
    routes
        .route_layer(axum::middleware::from_fn(request::count))
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
