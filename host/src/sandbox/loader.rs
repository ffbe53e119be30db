//! Loading a worker: check the grant against the manifest, read the component's actual
//! imports, refuse it if any import is neither baseline nor granted (nor optional), link
//! exactly the granted capabilities, and keep an `InstancePre` for fast instantiation.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Linker;

use crate::error::Error;
use crate::sandbox::bindings::WorkerPre;
use crate::sandbox::capability;
use crate::sandbox::grant::Grant;
use crate::sandbox::imports::{self, ComponentInfo, HANDLER_EXPORT, ImportClass};
use crate::sandbox::manifest::Manifest;
use crate::sandbox::runtime::Runtime;
use crate::sandbox::state::{HostState, WorkerContext};
use crate::scope::CapabilityName;

/// How a capability import was linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linked {
    /// Granted: calls are checked against the grant's scope.
    Granted,
    /// Not granted but optional in the manifest: every call returns `denied`.
    DeniedStub,
}

/// A worker ready to run: compiled, linked and pre-instantiated.
pub struct LoadedWorker {
    pub(crate) runtime: Runtime,
    pub(crate) pre: WorkerPre<HostState>,
    pub(crate) context: Arc<WorkerContext>,
    /// What the component imports and exports.
    pub info: ComponentInfo,
    /// How each imported capability was linked.
    pub linked: Vec<(CapabilityName, Linked)>,
}

impl std::fmt::Debug for LoadedWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedWorker")
            .field("plugin", &self.context.plugin)
            .field("linked", &self.linked)
            .finish_non_exhaustive()
    }
}

/// The plan for linking a component under a grant: which capabilities to link and how.
pub fn plan(
    info: &ComponentInfo,
    manifest: &Manifest,
    grant: &Grant,
) -> Result<Vec<(CapabilityName, Linked)>, Error> {
    if !info.exports_handler() {
        return Err(Error::NotAWorker {
            expected: format!("{HANDLER_EXPORT}@{}.x", imports::CONTRACT_VERSION),
            found: if info.exports.is_empty() {
                "nothing".into()
            } else {
                info.exports.join(", ")
            },
        });
    }
    let mut linked = Vec::new();
    let mut missing = Vec::new();
    let mut unknown = Vec::new();
    for name in &info.imports {
        match imports::classify(name) {
            ImportClass::Baseline => {}
            ImportClass::Capability(cap) => {
                if grant.capabilities.has(cap) {
                    linked.push((cap, Linked::Granted));
                } else if manifest.is_optional(cap) {
                    linked.push((cap, Linked::DeniedStub));
                } else {
                    missing.push(format!("capability `{cap}` ({name})"));
                }
            }
            ImportClass::Unknown(reason) => unknown.push(format!("`{name}` ({reason})")),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::UnknownImports { names: unknown });
    }
    if !missing.is_empty() {
        return Err(Error::NotGranted { missing });
    }
    Ok(linked)
}

impl Runtime {
    /// Loads a worker component under a manifest and a grant.
    ///
    /// Nothing is changed when loading fails: the error names every problem found.
    pub fn load(
        &self,
        bytes: &[u8],
        manifest: &Manifest,
        grant: &Grant,
    ) -> Result<LoadedWorker, Error> {
        self.load_with_halt(bytes, manifest, grant, Arc::default())
    }

    /// Like [`Runtime::load`], sharing `halt` (the kill switch's flag) with the other
    /// versions of the same installed worker.
    pub fn load_with_halt(
        &self,
        bytes: &[u8],
        manifest: &Manifest,
        grant: &Grant,
        halt: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<LoadedWorker, Error> {
        grant.check_against(manifest)?;
        let info = imports::inspect(bytes)?;
        let linked = plan(&info, manifest, grant)?;

        let component = self.engine.compile(bytes)?;
        let mut linker: Linker<HostState> = Linker::new(self.engine.wasmtime());
        capability::link_baseline(&mut linker)?;
        for (cap, _) in &linked {
            capability::link(&mut linker, *cap)?;
        }
        let pre = linker.instantiate_pre(&component)?;
        let pre = WorkerPre::new(pre)?;

        let limits = grant
            .limits
            .apply(manifest.limits.apply(self.max_limits))
            .capped_by(&self.max_limits);
        let context = WorkerContext {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            grant_digest: grant.digest(),
            component_digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            grant: grant.clone(),
            limits,
            services: self.services.clone(),
            halt,
            settings: serde_json::Value::Object(manifest.default_settings()).to_string(),
        };
        Ok(LoadedWorker {
            runtime: self.clone(),
            pre,
            context: Arc::new(context),
            info,
            linked,
        })
    }
}

impl LoadedWorker {
    /// The limits every execution of this worker runs under.
    pub fn limits(&self) -> crate::sandbox::limits::Limits {
        self.context.limits
    }

    /// The plugin version it is.
    pub fn version(&self) -> &str {
        &self.context.version
    }

    /// The component's digest.
    pub fn component_digest(&self) -> &str {
        &self.context.component_digest
    }

    /// Runs every execution with these settings (checked against the manifest's schema
    /// by the caller, as `WorkerConfig` does) instead of the manifest's defaults.
    pub fn with_settings(mut self, settings: &serde_json::Map<String, serde_json::Value>) -> Self {
        Arc::make_mut(&mut self.context).settings =
            serde_json::Value::Object(settings.clone()).to_string();
        self
    }
}
