//! The memory capability: a private key-value store kept between executions.

pub use crate::bindings::roster::memory::store::{delete, get, list_keys, set};

use crate::WorkerError;

/// Reads a UTF-8 string stored under `key`.
pub fn get_text(key: &str) -> Result<Option<String>, WorkerError> {
    Ok(get(key)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Stores a UTF-8 string under `key`.
pub fn set_text(key: &str, value: &str) -> Result<(), WorkerError> {
    set(key, value.as_bytes())
}
