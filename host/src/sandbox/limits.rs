//! Hard limits on one execution, and the trap causes that enforce them.
//!
//! Fuel (deterministic CPU budget), wall-clock time (epoch interruption), linear memory,
//! tables and instances (a [`wasmtime::ResourceLimiter`]), actions and host calls (the
//! action gate) and bytes crossing the boundary per call. The wasm stack is capped
//! engine-wide ([`crate::sandbox::engine::EngineConfig::max_wasm_stack`]). Each limit ends the
//! execution with its own [`crate::sandbox::report::Status`].

use serde::{Deserialize, Serialize};

/// The limits applied to one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Fuel units (roughly one per wasm instruction).
    pub fuel: u64,
    /// Wall-clock budget in milliseconds, host calls included.
    pub timeout_ms: u64,
    /// The largest a linear memory may grow, in bytes.
    pub memory_bytes: u64,
    /// The most elements a table may hold.
    pub table_elements: u64,
    /// The most core instances one execution may create.
    pub instances: u32,
    /// The most tables one execution may create.
    pub tables: u32,
    /// The most linear memories one execution may create.
    pub memories: u32,
    /// The most side-effecting actions (writes, notifications, requests, signals).
    pub actions: u32,
    /// The most host calls of any kind (reads included).
    pub host_calls: u32,
    /// The most bytes of arguments one host call may pass in (and of an event or result).
    pub call_bytes: u64,
    /// The most bytes of log lines and standard output/error kept.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            timeout_ms: 5_000,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            instances: 32,
            tables: 32,
            memories: 8,
            actions: 25,
            host_calls: 10_000,
            call_bytes: 1 << 20,
            log_bytes: 64 << 10,
        }
    }
}

/// Limits set in a manifest or grant; anything unset keeps the value below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsOverride {
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::timeout_ms`].
    pub timeout_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// See [`Limits::table_elements`].
    pub table_elements: Option<u64>,
    /// See [`Limits::instances`].
    pub instances: Option<u32>,
    /// See [`Limits::tables`].
    pub tables: Option<u32>,
    /// See [`Limits::memories`].
    pub memories: Option<u32>,
    /// See [`Limits::actions`].
    pub actions: Option<u32>,
    /// See [`Limits::host_calls`].
    pub host_calls: Option<u32>,
    /// See [`Limits::call_bytes`].
    pub call_bytes: Option<u64>,
    /// See [`Limits::log_bytes`].
    pub log_bytes: Option<u64>,
}

impl LimitsOverride {
    /// Returns `base` with every set value replaced.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            table_elements: self.table_elements.unwrap_or(base.table_elements),
            instances: self.instances.unwrap_or(base.instances),
            tables: self.tables.unwrap_or(base.tables),
            memories: self.memories.unwrap_or(base.memories),
            actions: self.actions.unwrap_or(base.actions),
            host_calls: self.host_calls.unwrap_or(base.host_calls),
            call_bytes: self.call_bytes.unwrap_or(base.call_bytes),
            log_bytes: self.log_bytes.unwrap_or(base.log_bytes),
        }
    }

    /// These values, with `top`'s wherever `top` sets one.
    pub fn overlay(&self, top: &LimitsOverride) -> LimitsOverride {
        LimitsOverride {
            fuel: top.fuel.or(self.fuel),
            timeout_ms: top.timeout_ms.or(self.timeout_ms),
            memory_bytes: top.memory_bytes.or(self.memory_bytes),
            table_elements: top.table_elements.or(self.table_elements),
            instances: top.instances.or(self.instances),
            tables: top.tables.or(self.tables),
            memories: top.memories.or(self.memories),
            actions: top.actions.or(self.actions),
            host_calls: top.host_calls.or(self.host_calls),
            call_bytes: top.call_bytes.or(self.call_bytes),
            log_bytes: top.log_bytes.or(self.log_bytes),
        }
    }

    /// Rejects zero values, which would make every execution fail.
    pub fn validate(&self) -> Vec<String> {
        let fields: [(&str, Option<u64>); 11] = [
            ("fuel", self.fuel),
            ("timeout-ms", self.timeout_ms),
            ("memory-bytes", self.memory_bytes),
            ("table-elements", self.table_elements),
            ("instances", self.instances.map(u64::from)),
            ("tables", self.tables.map(u64::from)),
            ("memories", self.memories.map(u64::from)),
            ("actions", self.actions.map(u64::from)),
            ("host-calls", self.host_calls.map(u64::from)),
            ("call-bytes", self.call_bytes),
            ("log-bytes", self.log_bytes),
        ];
        fields
            .iter()
            .filter(|(_, v)| *v == Some(0))
            .map(|(name, _)| format!("limits.{name} must be greater than zero"))
            .collect()
    }
}

impl Limits {
    /// Caps every value at the host's maximum, so no manifest or grant can lift a limit past
    /// what the host allows.
    pub fn capped_by(self, max: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(max.fuel),
            timeout_ms: self.timeout_ms.min(max.timeout_ms),
            memory_bytes: self.memory_bytes.min(max.memory_bytes),
            table_elements: self.table_elements.min(max.table_elements),
            instances: self.instances.min(max.instances),
            tables: self.tables.min(max.tables),
            memories: self.memories.min(max.memories),
            actions: self.actions.min(max.actions),
            host_calls: self.host_calls.min(max.host_calls),
            call_bytes: self.call_bytes.min(max.call_bytes),
            log_bytes: self.log_bytes.min(max.log_bytes),
        }
    }
}

/// A limit that ended an execution; raised as a trap from the limiter or the action gate and
/// recognised by the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Linear memory would grow past [`Limits::memory_bytes`].
    #[error("linear memory would grow past the limit of {limit} bytes")]
    Memory {
        /// The limit.
        limit: u64,
    },
    /// A table would grow past [`Limits::table_elements`].
    #[error("a table would grow past the limit of {limit} elements")]
    Table {
        /// The limit.
        limit: u64,
    },
    /// More side-effecting actions than [`Limits::actions`].
    #[error("more than {limit} actions in one execution")]
    Actions {
        /// The limit.
        limit: u32,
    },
    /// More host calls than [`Limits::host_calls`].
    #[error("more than {limit} host calls in one execution")]
    HostCalls {
        /// The limit.
        limit: u32,
    },
    /// A host call passed a list longer than [`crate::sandbox::payload::MAX_LIST_ELEMENTS`].
    #[error("a host call passed a list of {len} elements, more than the limit of {limit}")]
    ListLength {
        /// The list's length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A host call passed more than [`Limits::call_bytes`].
    #[error("a host call passed {size} bytes, more than the limit of {limit}")]
    CallBytes {
        /// The size passed.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// The [`wasmtime::ResourceLimiter`] of one execution's store.
#[derive(Debug)]
pub struct StoreLimiter {
    limits: Limits,
    /// The limit that was hit, if any (a guest may swallow a failed grow; this does not).
    pub hit: Option<LimitExceeded>,
}

impl StoreLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StoreLimiter { limits, hit: None }
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            let hit = LimitExceeded::Memory {
                limit: self.limits.memory_bytes,
            };
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.table_elements {
            let hit = LimitExceeded::Table {
                limit: self.limits.table_elements,
            };
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.tables as usize
    }

    fn memories(&self) -> usize {
        self.limits.memories as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_are_capped() {
        let max = Limits::default();
        let o = LimitsOverride {
            timeout_ms: Some(100),
            fuel: Some(u64::MAX),
            ..Default::default()
        };
        let l = o.apply(max).capped_by(&max);
        assert_eq!(l.timeout_ms, 100);
        assert_eq!(l.fuel, max.fuel);
        assert_eq!(
            LimitsOverride {
                actions: Some(0),
                ..Default::default()
            }
            .validate(),
            vec!["limits.actions must be greater than zero".to_string()]
        );
    }
}
