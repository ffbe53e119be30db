//! `roster-host`: loads third-party worker components into a sandbox with exactly the
//! capabilities an admin granted, within hard limits, and records everything they attempt.
//!
//! The folders follow the pipeline — signal → trigger → queue → executor → component →
//! action gate → audit — from the ground up; a module imports only from its own layer and
//! those below it (see `ARCHITECTURE.md`):
//!
//! 1. the vocabulary every layer speaks: [`clock`], [`value`] (field values, records,
//!    events), [`schema`], [`filter`], [`scope`], [`secrets`], [`net`] (the checked
//!    outbound HTTP client), [`webhook`] (signatures), [`classifier`], [`metrics`];
//! 2. [`store`]: the embedded redb store, with the system of record, the durable queue and
//!    the hash-chained execution log; then [`error`] and [`config_file`];
//! 3. [`governance`] (access, visibility, review, trust, escalation) and the providers
//!    ([`inference`], [`enrichment`]);
//! 4. [`trigger`]: triggers, schedules and conditions;
//! 5. [`sandbox`]: manifests and grants, loading, the engine, one execution, the action
//!    gate and the capabilities;
//! 6. [`failure`] (classes, retries, escalation, the circuit breaker) and [`delivery`]
//!    (connectors);
//! 7. [`config`]: `roster.toml` and the worker files;
//! 8. [`distribution`]: registries, publishing, installing, the grant audit;
//! 9. [`service`]: the running host (dispatch, the executor pool, approvals, versions);
//! 10. [`server`] (the HTTP API) and [`cli`] (the `roster` command).

#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod classifier;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod console;
pub mod delivery;
pub mod distribution;
pub mod enrichment;
pub mod error;
pub mod failure;
pub mod filter;
pub mod governance;
pub mod inference;
pub mod metrics;
pub mod net;
pub mod rules;
pub mod sandbox;
pub mod schema;
pub mod scope;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod trigger;
pub mod value;
pub mod webhook;

pub use error::Error;
pub use sandbox::gate::Mode;
pub use sandbox::grant::Grant;
pub use sandbox::loader::LoadedWorker;
pub use sandbox::manifest::Manifest;
pub use sandbox::report::{ExecutionReport, Status};
pub use sandbox::runtime::{Runtime, RuntimeConfig};
pub use value::EventInput;
