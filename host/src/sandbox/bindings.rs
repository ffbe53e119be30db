//! The host side of the WIT contract: the only `bindgen!` in Roster.
//!
//! Every import is trappable: a host function returns `wasmtime::Result<_>`, whose `Err` is
//! a trap (a limit, a host fault), separate from the WIT-level `result<_, error>` that the
//! plugin sees.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/worker",
    world: "roster:worker/worker",
    // Each host call is a span (`wit-bindgen import`), exported when telemetry is on.
    imports: { default: trappable | tracing },
});
