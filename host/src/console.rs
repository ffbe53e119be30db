//! The web console: the dashboard, the value page, the approvals inbox, workers, the kill
//! switch, installs, the audit trail and people, served by `roster serve` on the API's
//! port, in HTML rendered on the server with a little JavaScript of its own.
//!
//! The console is a client of the API in the same process: a signed-in person's pages
//! read the API's answers and their buttons send API requests, acting as that person's
//! account ([`crate::server::ActingAs`]), so every check the API makes — the access
//! policies, the bounds of each body, the audit entries — holds in the browser too. The
//! console asks the same policies what to show: a control the person may not use is not
//! drawn, and a forged request is refused by the API anyway.
//!
//! - `visitor.rs` — the signed-in person and what the policies let them do.
//! - `session.rs` — sign-in (an API token or a one-time login link), the session cookie,
//!   the CSRF token every form carries, sign-out.
//! - `api.rs` — requests to the API as the signed-in account.
//! - `layout.rs` — the page around every page, the security headers, errors in words;
//!   `assets.rs` the stylesheet and script compiled into the binary; `chart.rs` SVG charts;
//!   `fmt.rs` numbers, times and durations in words.
//! - Pages: `dashboard.rs` (activity and value), `approvals.rs` (the inbox, live),
//!   `workers.rs` (inventory, one worker, the kill switch), `installs.rs` (the catalogue,
//!   the review page), `audit.rs` (search, one entry, verification, export), `people.rs`
//!   (accounts, tokens, login links).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::service::Service;

mod api;
mod approvals;
mod assets;
mod audit;
mod chart;
mod dashboard;
mod fmt;
mod installs;
mod layout;
mod people;
mod rules;
mod session;
mod visitor;
mod workers;

/// The largest form a page posts.
const MAX_FORM: usize = 64 * 1024;

/// The console's state: the service, and the API it is a client of.
#[derive(Clone)]
pub(crate) struct Console {
    service: Arc<Service>,
    api: Router,
}

/// The API and the console on one router: the API under `/v1/`, the console's pages
/// everywhere else.
pub fn app(service: Arc<Service>) -> Router {
    let api = crate::server::router(service.clone());
    let console = Router::new()
        .route("/", get(dashboard::activity))
        .route("/value", get(dashboard::value))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/events", get(approvals::events))
        .route("/approvals/bulk", post(approvals::bulk))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/card", get(approvals::card))
        .route("/approvals/{id}/decide", post(approvals::decide))
        .route("/workers", get(workers::list))
        .route("/workers/{name}", get(workers::show))
        .route("/workers/{name}/do", post(workers::act))
        .route("/kill", get(workers::kill_page).post(workers::kill))
        .route("/rules", get(rules::list))
        .route("/rules/new", get(rules::new))
        .route("/rules/check", post(rules::check))
        .route("/rules/draft", post(rules::act))
        .route("/rules/{name}", get(rules::show))
        .route("/rules/{name}/edit", get(rules::edit))
        .route("/rules/{name}/rollback", post(rules::rollback))
        .route("/install", get(installs::catalogue))
        .route(
            "/install/review",
            get(installs::review).post(installs::install),
        )
        .route("/audit", get(audit::search))
        .route("/audit/verify", post(audit::verify))
        .route("/audit/export", get(audit::export))
        .route("/audit/{seq}", get(audit::entry))
        .route("/people", get(people::list).post(people::act))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .layer(axum::middleware::from_fn(layout::headers))
        .with_state(Console {
            service,
            api: api.clone(),
        });
    api.merge(console)
}
