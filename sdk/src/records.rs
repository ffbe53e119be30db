//! The records capability: read and write CRM records within the worker's grant.

pub use crate::bindings::roster::records::records::{
    Comparison, Created, Filter, Query, create, delete, find, get, update,
};

use crate::Value;

/// Builds a filter.
pub fn filter(field: impl Into<String>, comparison: Comparison, value: impl Into<Value>) -> Filter {
    Filter {
        field: field.into(),
        comparison,
        value: value.into(),
    }
}

/// Builds a query over `object` with the given filters and limit.
pub fn query(object: impl Into<String>, filters: Vec<Filter>, limit: u32) -> Query {
    Query {
        object: object.into(),
        filters,
        limit,
    }
}
