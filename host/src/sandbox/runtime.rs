//! The host runtime: the engine, the backends and the host's maximum limits, from which
//! workers are loaded.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::governance::directory::Directory;
use crate::net::HttpClient;
use crate::sandbox::engine::{Engine, EngineConfig};
use crate::sandbox::limits::Limits;
use crate::sandbox::state::Services;
use crate::schema::Schema;
use crate::store::Store;

/// How a runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The data directory: the store file and the compiled-component cache live here.
    pub data_dir: PathBuf,
    /// The engine's configuration; its cache directory defaults to `data_dir/cache`.
    pub engine: EngineConfig,
    /// The most any manifest or grant may raise a limit to.
    pub max_limits: Limits,
    /// The record schema (standard objects plus configured custom ones).
    pub schema: Schema,
    /// The principals and their visibility.
    pub directory: Directory,
    /// The clock.
    pub clock: SharedClock,
    /// The inference providers.
    pub inference: crate::inference::InferenceConfig,
    /// The enrichment providers.
    pub enrichment: crate::enrichment::EnrichmentConfig,
}

impl RuntimeConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            engine: EngineConfig::default(),
            max_limits: Limits::default(),
            schema: Schema::standard(),
            directory: Directory::open(),
            clock: Arc::new(SystemClock),
            inference: crate::inference::InferenceConfig::default(),
            enrichment: crate::enrichment::EnrichmentConfig::default(),
        }
    }
}

/// A running host: load workers from it and run them.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) services: Services,
    pub(crate) max_limits: Limits,
}

impl Runtime {
    /// Opens the data directory (creating it if needed) and starts the engine.
    pub fn open(mut config: RuntimeConfig) -> Result<Runtime, Error> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        if config.engine.cache_dir.is_none() {
            config.engine.cache_dir = Some(config.data_dir.join("cache"));
        }
        let store = Store::open_with(
            &config.data_dir.join("roster.redb"),
            config.schema.clone(),
            config.clock.clone(),
        )?;
        Self::with_store(config, store)
    }

    /// Starts the engine over an already open store.
    pub fn with_store(config: RuntimeConfig, store: Store) -> Result<Runtime, Error> {
        let engine = Engine::new(config.engine)?;
        let http = HttpClient::new().map_err(|source| Error::Io {
            path: PathBuf::from("<http client runtime>"),
            source,
        })?;
        let http = Arc::new(http);
        Ok(Runtime {
            engine,
            services: Services {
                inference: crate::inference::Inference::new(
                    config.inference,
                    store.clone(),
                    http.clone(),
                ),
                enrichment: crate::enrichment::Enrichment::new(
                    config.enrichment,
                    store.clone(),
                    http.clone(),
                ),
                store,
                http,
                directory: Arc::new(config.directory),
            },
            max_limits: config.max_limits,
        })
    }

    /// A runtime with the same engine, HTTP client and directory over another store (a
    /// staging dataset's).
    pub fn sharing_engine(&self, store: Store) -> Runtime {
        Runtime {
            engine: self.engine.clone(),
            services: Services {
                inference: self.services.inference.with_store(store.clone()),
                enrichment: self.services.enrichment.with_store(store.clone()),
                store,
                http: self.services.http.clone(),
                directory: self.services.directory.clone(),
            },
            max_limits: self.max_limits,
        }
    }

    /// The embedded store.
    pub fn store(&self) -> &Store {
        &self.services.store
    }

    /// The principals.
    pub fn directory(&self) -> &Directory {
        &self.services.directory
    }

    /// The backends capabilities use (store, HTTP client, directory, inference).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
