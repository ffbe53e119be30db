//! Installing, upgrading and removing workers while the service runs.
//!
//! An installation is pulled from a registry the host installs from (`[registry]
//! sources`), verified and reviewed exactly as `roster install` does; applied with a
//! grant, its files are written and the worker is loaded, then swapped into the installed
//! workers at once. Executions that started before run to their end on the version they
//! started with (they hold it); every one after runs the new one. A removal first stops
//! the worker's triggers, lets what is queued for it run, then unloads it and keeps its
//! files aside; its audit entries stay.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::{Installed, Service, versions};
use crate::config::HostConfig;
use crate::distribution::install::{self, InstallOptions, Plan};
use crate::distribution::oci;
use crate::error::Error;
use crate::store::GovernanceEvent;

/// How long a removal waits for what is queued for the worker to run.
const DRAIN: Duration = Duration::from_secs(60);

/// Where an installation comes from.
#[derive(Debug)]
pub enum InstallSource {
    /// A reference on a registry of `[registry] sources`, pulled by the host.
    Registry(String),
    /// An artifact an admin uploaded (an OCI image layout's manifest, config and
    /// component), verified exactly like a pulled one.
    Uploaded(oci::Pulled),
}

/// An installed worker, as the installations list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Installation {
    /// The installation's name.
    pub name: String,
    /// The plugin id.
    pub plugin: String,
    /// The version running.
    pub version: String,
    /// The component's digest.
    pub component_digest: String,
    /// Who it acts as.
    pub principal: String,
    /// Its domain.
    pub domain: String,
    /// Whether it was installed from a registry (not configured by hand in a file).
    pub from_registry: bool,
}

/// What a removal did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Removal {
    /// The removed installation.
    pub name: String,
    /// The version it ran.
    pub version: String,
    /// Items still queued for it when the drain gave up (recorded as failed when their
    /// time comes: the worker is not installed).
    pub left_queued: u64,
}

impl Service {
    /// The configuration with the workers installed now.
    pub fn current_config(&self) -> HostConfig {
        let mut config = self.shared.config.clone();
        if let Ok(workers) = self.shared.worker_configs.lock() {
            config.workers = workers.clone();
        }
        config
    }

    /// Every installation, by name.
    pub fn installations(&self) -> Vec<Installation> {
        let installed_dir = self.shared.config.installed_dir();
        self.shared
            .workers()
            .iter()
            .map(|(name, w)| {
                let loaded = w.loaded();
                Installation {
                    name: name.clone(),
                    plugin: w.config.manifest.plugin.id.clone(),
                    version: loaded.version().to_string(),
                    component_digest: loaded.component_digest().to_string(),
                    principal: w.config.grant.grant.principal.clone(),
                    domain: w.config.manifest.plugin.domain.as_str().to_string(),
                    from_registry: w.config.path.starts_with(&installed_dir),
                }
            })
            .collect()
    }

    /// Pulls (or takes) and verifies an artifact and plans its installation: the review,
    /// and why it cannot be applied yet, if it cannot. Nothing changes.
    pub fn plan_install(
        &self,
        source: InstallSource,
        options: &InstallOptions,
    ) -> Result<Plan, Error> {
        let config = self.current_config();
        let trusted = install::trusted_keys(&config);
        let (reference, pulled) = match source {
            InstallSource::Registry(reference) => {
                let pulled = self.pull(&config, &reference)?;
                (reference, pulled)
            }
            InstallSource::Uploaded(pulled) => ("an uploaded artifact".to_string(), pulled),
        };
        let verified = install::verify(&reference, &pulled, &trusted, false)?;
        install::plan(&config, verified, options)
    }

    /// What the registries of `[registry] sources` offer: per registry, its repositories
    /// with their tags, or why it could not be read.
    pub fn catalogue(&self) -> Vec<CatalogueSource> {
        let config = self.current_config();
        config
            .registry_sources
            .iter()
            .map(|registry| {
                let listed = oci::Client::new(config.registry_token.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        c.catalog(registry, CATALOGUE_LIMIT)
                            .map_err(|e| e.to_string())
                    });
                match listed {
                    Ok(repositories) => CatalogueSource {
                        registry: registry.clone(),
                        repositories: repositories
                            .into_iter()
                            .map(|(name, tags)| CatalogueEntry { name, tags })
                            .collect(),
                        error: None,
                    },
                    Err(e) => CatalogueSource {
                        registry: registry.clone(),
                        repositories: Vec::new(),
                        error: Some(e),
                    },
                }
            })
            .collect()
    }

    /// Pulls an artifact from a registry of `[registry] sources`.
    pub(super) fn pull(&self, config: &HostConfig, reference: &str) -> Result<oci::Pulled, Error> {
        let refused = |why: String| Error::InstallRefused(why);
        let parsed = oci::Reference::parse(reference).map_err(|e| refused(e.to_string()))?;
        if !config
            .registry_sources
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&parsed.registry))
        {
            return Err(refused(format!(
                "this host does not install from `{}`; an admin adds it to [registry] sources",
                parsed.registry
            )));
        }
        oci::Client::new(config.registry_token.clone())
            .map_err(|e| refused(format!("pulling {reference}: {e}")))?
            .pull(&parsed)
            .map_err(|e| refused(format!("pulling {reference}: {e}")))
    }

    /// Applies a planned installation and puts the worker to work: live (or staged, as
    /// its file says) with its triggers from the next tick; an upgrade takes over between
    /// executions. Returns the worker's name.
    pub fn install(&self, plan: Plan) -> Result<String, Error> {
        let _one = self.shared.installing.lock().map_err(|_| {
            Error::InvalidRequest("another installation failed midway; restart the host".into())
        })?;
        let config = self.current_config();
        let name = plan.review.worker.clone();
        let path = plan.apply(&config, &self.shared.runtime)?;
        let worker = crate::config::load_worker(&path, &config.schema, &config.directory)?;
        let previous = self.shared.workers().get(&name).cloned();
        let halt = previous
            .as_ref()
            .map(|w| w.halt.clone())
            .unwrap_or_else(|| Arc::new(AtomicBool::new(self.shared.is_paused(&name))));
        let bytes = worker.component_bytes()?;
        let loaded =
            versions::load_worker(&self.shared.runtime, &config, &worker, &bytes, halt.clone())?;
        let shadow = versions::load_shadow(&self.shared.runtime, &worker, halt.clone())?;
        let installed = Arc::new(Installed {
            config: worker.clone(),
            loaded: std::sync::RwLock::new(Arc::new(loaded)),
            halt,
            shadow,
            removing: AtomicBool::new(false),
        });
        let mut workers = (*self.shared.workers()).clone();
        workers.insert(name.clone(), installed);
        if let Ok(mut configs) = self.shared.worker_configs.lock() {
            configs.retain(|w| w.name != name);
            configs.push(worker);
        }
        self.shared.set_workers(workers);
        self.shared.forget_standing(&name);
        Ok(name)
    }

    /// Removes an installed worker: its triggers stop at once, what is queued for it runs
    /// (up to a minute), then it is unloaded and its files kept aside under
    /// `installed/.removed/`. Its audit entries stay; the removal is one.
    pub fn remove(&self, name: &str, by: &str, reason: &str) -> Result<Removal, Error> {
        if reason.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "give a reason for the removal".into(),
            ));
        }
        let _one = self.shared.installing.lock().map_err(|_| {
            Error::InvalidRequest("another installation failed midway; restart the host".into())
        })?;
        let worker = self.installed(name)?;
        let installed_dir = self.shared.config.installed_dir();
        if !worker.config.path.starts_with(&installed_dir) {
            return Err(Error::InvalidRequest(format!(
                "`{name}` is configured in {}, not installed from a registry: remove it there",
                worker.config.path.display()
            )));
        }
        worker.removing.store(true, Ordering::SeqCst);
        // Triggers being admitted now may not have seen the mark: let them commit, so
        // every item for the worker is in the queue before it drains.
        drop(
            self.shared
                .admission
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = Instant::now() + DRAIN;
        let mut left = self.shared.store.queued_for(name)?;
        while left > 0 && Instant::now() < deadline && !self.shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            left = self.shared.store.queued_for(name)?;
        }
        let mut workers = (*self.shared.workers()).clone();
        workers.remove(name);
        self.shared.set_workers(workers);
        if let Ok(mut configs) = self.shared.worker_configs.lock() {
            configs.retain(|w| w.name != name);
        }
        let at = self.shared.clock.now_ms();
        let kept = installed_dir.join(".removed").join(format!("{name}.{at}"));
        let io = |source| Error::Io {
            path: kept.clone(),
            source,
        };
        std::fs::create_dir_all(installed_dir.join(".removed")).map_err(io)?;
        std::fs::rename(installed_dir.join(name), &kept).map_err(io)?;
        let version = worker.loaded().version().to_string();
        self.shared.store.record_governance(GovernanceEvent {
            action: "worker.remove".into(),
            by: by.to_string(),
            worker: Some(name.to_string()),
            subject: Some(worker.config.manifest.plugin.id.clone()),
            reason: Some(reason.to_string()),
            data: json!({
                "version": version,
                "component-digest": worker.loaded().component_digest(),
                "left-queued": left,
                "kept": kept.display().to_string(),
            }),
        })?;
        Ok(Removal {
            name: name.to_string(),
            version,
            left_queued: left,
        })
    }
}

/// The most repositories, and tags per repository, a catalogue lists per registry.
pub const CATALOGUE_LIMIT: usize = 500;

/// What one registry offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CatalogueSource {
    /// The registry (`host[:port]`).
    pub registry: String,
    /// Its repositories.
    pub repositories: Vec<CatalogueEntry>,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
}

/// One repository of a registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CatalogueEntry {
    /// The repository (`roster/lead-enricher`).
    pub name: String,
    /// Its tags (versions).
    pub tags: Vec<String>,
}
