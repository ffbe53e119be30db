//! `roster:memory/store`: the worker's private key-value memory, within its quota.

use serde_json::json;

use crate::sandbox::bindings::roster::memory::store::Host;
use crate::sandbox::bindings::roster::types::types::Error;
use crate::sandbox::gate::{ActionKind, Call, Mode};
use crate::sandbox::payload::Payload;
use crate::sandbox::state::HostState;
use crate::store::StoreError;

const MAX_KEY: usize = 512;

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "keys are 1 to {MAX_KEY} bytes without control characters"
        )));
    }
    Ok(())
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::QuotaExceeded { .. } => Error::BudgetExceeded(e.to_string()),
        other => Error::Unavailable(other.to_string()),
    }
}

impl HostState {
    fn memory_call(
        &mut self,
        op: &'static str,
        kind: ActionKind,
        key: &str,
    ) -> Result<Call, Error> {
        let call = Call::new(
            "memory",
            op,
            kind,
            format!("key:{key}"),
            json!({ "key": key }),
        );
        if self.worker.grant.capabilities.memory.is_none() {
            return Err(self.gate.deny(call, "capability `memory` is not granted"));
        }
        if let Err(e) = check_key(key) {
            return Err(self.gate.reject(call, e));
        }
        Ok(call)
    }
}

impl Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.gate.enter(Payload::default().text(&key))?;
        if self.worker.grant.capabilities.memory.is_none() {
            let call = Call::new(
                "memory",
                "get",
                ActionKind::Read,
                format!("key:{key}"),
                json!({}),
            );
            return Ok(Err(self
                .gate
                .deny(call, "capability `memory` is not granted")));
        }
        // Reads of the worker's own memory are counted as host calls but not logged one by
        // one: they reach nothing outside the worker.
        wit_try!(check_key(&key));
        Ok(self
            .worker
            .services
            .store
            .memory_get(&self.worker.plugin, &key)
            .map_err(store_error))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        self.gate
            .enter(Payload::default().text(&key).bytes(value.len()))?;
        let call = wit_try!(self.memory_call("set", ActionKind::State, &key));
        let quota = self
            .worker
            .grant
            .capabilities
            .memory
            .as_ref()
            .map_or(0, |m| m.quota_bytes);
        let store = self.worker.services.store.clone();
        let worker = self.worker.plugin.clone();
        let size = value.len();
        if self.gate.mode() == Mode::DryRun {
            // A dry run (staging, a shadow version) leaves the worker's memory as it is.
            return Ok(self
                .gate
                .read(call, || Ok(((), json!({ "bytes": size, "dry-run": true })))));
        }
        Ok(self.gate.read(call, || {
            store
                .memory_set(&worker, &key, &value, quota)
                .map_err(store_error)?;
            Ok(((), json!({ "bytes": size })))
        }))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.gate.enter(Payload::default().text(&key))?;
        let call = wit_try!(self.memory_call("delete", ActionKind::State, &key));
        if self.gate.mode() == Mode::DryRun {
            return Ok(self
                .gate
                .read(call, || Ok(((), json!({ "dry-run": true })))));
        }
        let store = self.worker.services.store.clone();
        let worker = self.worker.plugin.clone();
        Ok(self.gate.read(call, || {
            store.memory_delete(&worker, &key).map_err(store_error)?;
            Ok(((), json!("deleted")))
        }))
    }

    fn list_keys(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.gate.enter(Payload::default().text(&prefix))?;
        if self.worker.grant.capabilities.memory.is_none() {
            let call = Call::new("memory", "list-keys", ActionKind::Read, "keys", json!({}));
            return Ok(Err(self
                .gate
                .deny(call, "capability `memory` is not granted")));
        }
        let limit = (limit as usize).min(1000);
        Ok(self
            .worker
            .services
            .store
            .memory_keys(&self.worker.plugin, &prefix, limit)
            .map_err(store_error))
    }
}
