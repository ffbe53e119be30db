//! The Roster registry: an OCI distribution registry for Wasm worker artifacts, and the
//! artifact format (Wasm OCI layout, Roster manifest, publisher signature) that the host's
//! publish and install commands share with it.
//!
//! - `storage.rs` — content-addressed blobs, manifests, tags and uploads on disk.
//! - `server.rs` — the HTTP API (axum): the distribution-spec subset real clients use.
//! - `artifact.rs` — building, describing and verifying signed worker artifacts.

pub mod artifact;
pub mod server;
pub mod storage;

pub use server::{RegistryConfig, router, spawn_on_loopback};
pub use storage::{Storage, StorageError, digest_of};
