//! `roster-host`: loads third-party worker components into a sandbox with exactly the
//! capabilities an admin granted, within hard limits, and records everything they attempt.
//!
//! The pipeline of one execution, one module per stage:
//!
//! - [`manifest`] and [`grant`] read what a plugin requests and what an admin granted
//!   ([`scope`] holds the per-capability scopes both use);
//! - [`imports`] reads what the component *actually* imports from its binary;
//! - [`loader`] refuses a component whose imports are not granted, links exactly the granted
//!   [`capability`] interfaces and pre-instantiates it on the shared [`engine`];
//! - [`executor`] runs one [`event`] in a fresh sandbox under [`limits`], with every
//!   capability call passing through the action [`gate`], and returns a [`report`];
//! - [`store`] is the embedded redb store behind the records, memory, notify and signals
//!   capabilities; [`runtime`] ties engine, store and backends together; [`cli`] is the
//!   `roster` command.

#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access;
pub mod bindings;
pub mod capability;
pub mod classifier;
pub mod cli;
pub mod clock;
pub mod condition;
pub mod config;
pub mod config_file;
pub mod delivery;
pub mod demo;
pub mod directory;
pub mod engine;
pub mod enrichment;
pub mod error;
pub mod escalation;
pub mod event;
pub mod executor;
pub mod failure;
pub mod filter;
pub mod fixtures;
pub mod gate;
pub mod grant;
pub mod grant_audit;
pub mod imports;
pub mod inference;
pub mod install;
pub mod inventory;
pub mod limits;
pub mod loader;
pub mod manifest;
pub mod net;
pub mod oci;
pub mod publish;
pub mod report;
pub mod review;
pub mod runtime;
pub mod scaffold;
pub mod schema;
pub mod scope;
pub mod secrets;
pub mod server;
pub mod service;
pub mod shadow;
pub mod staging;
pub mod state;
pub mod store;
pub mod trigger;
pub mod trust;
pub mod value;
pub mod webhook;

pub use error::Error;
pub use gate::Mode;
pub use grant::Grant;
pub use loader::LoadedWorker;
pub use manifest::Manifest;
pub use report::{ExecutionReport, Status};
pub use runtime::{Runtime, RuntimeConfig};
pub use value::EventInput;
