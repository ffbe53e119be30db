//! Configuration: `roster.toml` for the host, and one file per installed worker.
//!
//! ```toml
//! # roster.toml
//! data-dir = ".roster"
//! listen = "127.0.0.1:7878"
//! plan = "professional"          # starter, professional, enterprise, or one defined below
//! api-token-env = "ROSTER_API_TOKEN"
//! webhook-secret-env = "ROSTER_WEBHOOK_SECRET"
//! workers = ["workers/lead-triage.toml"]
//!
//! [capacity-alert]
//! hits = 3                       # alert when the cap was hit in 3...
//! windows = 6                    # ...of the last 6 hourly windows
//!
//! [[principals]]
//! id = "ann"
//! teams = ["emea"]
//! roles = ["ae", "admin"]
//!
//! [objects.subscription]         # custom objects (or extra fields on standard ones)
//! plan = { type = "text", indexed = true }
//! ```
//!
//! ```toml
//! # workers/lead-triage.toml
//! [worker]
//! name = "lead-triage"
//! component = "../target/guests/wasm32-wasip2/release/lead_triage.wasm"
//! manifest = "../examples/lead-triage/worker.toml"
//! grant = "../examples/lead-triage/grant.toml"
//! principal = "svc-revops"       # overrides the grant's principal
//!
//! [[triggers]]
//! on = "record-created"
//! object = "lead"
//!
//! [conditions]
//! all = [{ field = "status", op = "equals", value = "new" }]
//!
//! [limits]
//! timeout-ms = 2000
//! ```
//!
//! Every problem is reported with the file, line and reason, and a configuration with any
//! problem is rejected whole: nothing is started and nothing is written.

mod host;
mod settings;
mod worker;

use std::path::Path;

pub use host::HostConfig;
pub(crate) use host::remembered_keys;
pub use settings::{
    AccessSettings, AlertRouting, AuditSettings, CapacityAlert, DEFAULT_FAILED_AUTH_BURST, Plan,
    RegistrySettings, builtin_plans,
};
pub(crate) use worker::load_worker;
pub use worker::{InstallSource, ShadowConfig, WorkerConfig};

use crate::error::Error;

/// A configuration problem at `span` of `text` (the file at `path`), located by line.
fn problem(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    reason: impl Into<String>,
) -> Error {
    let location = match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!("{}:{line}", path.display())
        }
        None => path.display().to_string(),
    };
    Error::Config {
        location,
        reason: reason.into(),
    }
}
