//! Paths of the guest programs in `tests/programs` and of the first-party plugins in
//! `plugins`, built from source by this crate's build script (no `.wasm` file is committed).
//!
//! Each program is a `pub const` named after its package in upper case (`records_granted`
//! becomes `RECORDS_GRANTED`). [`foreach_program!`] names every program, so a test suite can
//! require a test per program at compile time.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
