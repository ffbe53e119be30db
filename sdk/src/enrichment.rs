//! The enrichment capability: look records up with the external data providers the admin
//! configured, within their rate limits and the organisation's credit budget.
//!
//! ```ignore
//! let found = roster_sdk::enrichment::lookup("company-data", "acme.example")?;
//! records::update("lead", &lead.id, &found.fields)?;
//! ```

pub use crate::bindings::roster::enrichment::lookup::{Enrichment, lookup};
