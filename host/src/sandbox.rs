//! The sandbox: what a plugin asks for and is granted, and one execution of it.
//!
//! - [`manifest`] and [`grant`] read what a plugin requests and what an admin granted
//!   ([`crate::scope`] holds the per-capability scopes both use);
//! - [`imports`] reads what the component *actually* imports from its binary;
//! - [`loader`] refuses a component whose imports are not granted, links exactly the granted
//!   [`capability`] interfaces and pre-instantiates it on the shared [`engine`];
//! - [`executor`] runs one [`event`] in a fresh sandbox under [`limits`], with every
//!   capability call passing through the action [`gate`], and returns a [`report`];
//! - [`runtime`] ties the engine, the store and the backends together; [`state`] is what
//!   one execution's store holds; [`bindings`] is the host side of the WIT contract.

pub mod bindings;
pub mod capability;
pub mod engine;
pub mod event;
pub mod executor;
pub mod gate;
pub mod grant;
pub mod imports;
pub mod limits;
pub mod loader;
pub mod manifest;
pub mod payload;
pub mod report;
pub mod runtime;
pub mod state;
