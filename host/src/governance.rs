//! The rules a workforce is governed by, below the sandbox that applies them.
//!
//! - [`access`]: who may do what through the API, as Cedar policies;
//! - [`directory`]: principals, teams and roles, and which records each may see;
//! - [`review`]: human-in-the-loop checkpoints: risk levels, the trust curve's default rules
//!   and review rules, which decide which side effects wait for a person;
//! - [`trust`]: the trust curve's metrics from the audit trail, thresholds and promotions;
//! - [`escalation`]: cross-domain escalation paths, signal chains and loop prevention.

pub mod access;
pub mod directory;
pub mod escalation;
pub mod review;
pub mod trust;
