//! Capabilities: one file per WIT interface, each implementing the interface's host trait.
//!
//! A capability file answers three questions for its interface: how it is linked
//! (`link`), how a grant's scope is checked on every call (inside each host function,
//! through the [`crate::sandbox::gate::Gate`]), and which backend it talks to
//! ([`crate::sandbox::state::Services`]). The baseline (`link_baseline`) is what every worker gets:
//! WASI with no files, environment or network and every wait bounded by the execution
//! (`wasi`), the shared type interfaces and logging.

/// Inside a host function: unwraps a plugin-level result, or returns its WIT error to the
/// plugin (never as a trap).
macro_rules! wit_try {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return Ok(Err(error)),
        }
    };
}

/// A store failure as the worker sees it: a write that does not fit the schema or already
/// exists is its mistake; anything else is the host being unavailable.
fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Schema(e) => Error::InvalidInput(e.to_string()),
        StoreError::Exists { .. } => Error::InvalidInput(e.to_string()),
        other => Error::Unavailable(other.to_string()),
    }
}

mod enrichment;
pub mod http;
mod inference;
mod logging;
mod memory;
mod notify;
pub(crate) mod records;
mod review;
mod signals;
mod wasi;

use wasmtime::component::{HasSelf, Linker};

use crate::sandbox::bindings::roster;
use crate::sandbox::bindings::roster::types::types::Error;
use crate::sandbox::state::HostState;
use crate::scope::CapabilityName;
use crate::store::StoreError;

/// Links what every worker may import.
pub(crate) fn link_baseline(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasi::link(linker)?;
    roster::types::types::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)?;
    roster::worker::types::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)?;
    roster::logging::logging::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

/// Links one capability. When the grant does not include it (an optional capability), the
/// same host functions answer every call with `denied`, because the grant has no scope.
pub(crate) fn link(linker: &mut Linker<HostState>, cap: CapabilityName) -> wasmtime::Result<()> {
    match cap {
        CapabilityName::Records => {
            roster::records::records::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Notify => {
            roster::notify::notify::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Http => {
            roster::http::outbound::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Memory => {
            roster::memory::store::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Signals => {
            roster::signals::signals::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Inference => {
            roster::inference::inference::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
        CapabilityName::Enrichment => {
            roster::enrichment::lookup::add_to_linker::<_, HasSelf<HostState>>(linker, |s| s)
        }
    }
}

impl roster::types::types::Host for HostState {}
impl roster::worker::types::Host for HostState {}
