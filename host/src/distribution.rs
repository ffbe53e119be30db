//! How workers reach a host: signed artifacts in OCI registries and layouts, publishing,
//! installing with its capability review, and the grant audit.
//!
//! - [`oci`]: the OCI registry client and OCI image layout directories;
//! - [`publish`]: publisher keys, building, signing and pushing an artifact;
//! - [`install`]: verify, review the capabilities, apply the version and grant rules, write
//!   aside and swap in, pin the digest; components kept for rollback;
//! - [`grant_audit`]: requested vs imported vs granted, unused and idle grants, changes
//!   across versions.

pub mod grant_audit;
pub mod install;
pub mod oci;
pub mod publish;
