//! The WebAssembly engine: one per host, shared by every worker.
//!
//! - Pooling instance allocation: sandboxes are carved out of pre-reserved slots, which
//!   makes a fresh sandbox per execution cheap.
//! - Fuel for the deterministic CPU cap; epoch interruption for wall-clock limits, driven
//!   by one ticker thread per engine.
//! - `concurrency_support(false)`: workers are synchronous, which makes calls across the
//!   boundary cheaper.
//! - Compiled components are cached on disk, keyed by the component's digest and the
//!   engine's compatibility hash, so a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::Error;

/// The most wasm frames kept in a trap's backtrace (a stack overflow has thousands).
const MAX_BACKTRACE_FRAMES: usize = 64;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The wasm stack limit in bytes (recursion deeper than this traps as stack overflow).
    pub max_wasm_stack: usize,
    /// The number of sandboxes that may exist at once.
    pub max_sandboxes: u32,
    /// The largest linear memory any sandbox may have (per-worker limits are lower).
    pub max_memory_bytes: usize,
    /// The epoch tick: the granularity of wall-clock limits.
    pub epoch_tick: Duration,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_wasm_stack: 512 << 10,
            max_sandboxes: 64,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            cache_dir: None,
        }
    }
}

/// The shared engine and its epoch ticker.
#[derive(Clone)]
pub struct Engine {
    inner: wasmtime::Engine,
    config: EngineConfig,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

/// Stops the ticker thread when the last engine handle is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Engine, Error> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_sandboxes)
            .total_core_instances(config.max_sandboxes * 16)
            .total_memories(config.max_sandboxes * 2)
            .total_tables(config.max_sandboxes * 4)
            .total_stacks(config.max_sandboxes)
            .max_memory_size(config.max_memory_bytes)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(8);

        let mut wasm = Config::new();
        wasm.consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .wasm_backtrace_max_frames(NonZeroUsize::new(MAX_BACKTRACE_FRAMES))
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let inner = wasmtime::Engine::new(&wasm)?;

        let stop = Arc::new(AtomicBool::new(false));
        let weak = inner.weak();
        let tick = config.epoch_tick;
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("roster-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: PathBuf::from("<epoch ticker thread>"),
                source,
            })?;

        Ok(Engine {
            inner,
            config,
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Epoch ticks covering `ms` milliseconds (at least one).
    pub fn ticks_for(&self, ms: u64) -> u64 {
        let tick = self.config.epoch_tick.as_millis().max(1) as u64;
        ms.div_ceil(tick).max(1)
    }

    /// Compiles a component, or loads its compiled form from the cache.
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, Error> {
        let digest = hex::encode(Sha256::digest(bytes));
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.inner, bytes).map_err(invalid);
        };
        let path = dir.join(format!("{digest}-{:016x}.cwasm", self.compat_hash()));
        if path.is_file()
            && let Ok(component) = self.load_cached(&path)
        {
            return Ok(component);
        }
        let component = Component::new(&self.inner, bytes).map_err(invalid)?;
        if let Ok(serialized) = component.serialize() {
            // A failed cache write only costs a recompilation next time.
            let _ = write_atomically(dir, &path, &serialized);
        }
        Ok(component)
    }

    fn compat_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    }

    #[allow(unsafe_code)]
    fn load_cached(&self, path: &Path) -> Result<Component, wasmtime::Error> {
        // SAFETY: the file was written by `compile` from `Component::serialize` of this
        // engine configuration (the name carries the engine's compatibility hash) into the
        // host's own data directory, which is trusted like the host binary. wasmtime also
        // checks the file's header against the engine before using it.
        unsafe { Component::deserialize_file(&self.inner, path) }
    }
}

fn invalid(e: wasmtime::Error) -> Error {
    Error::InvalidComponent {
        reason: format!("{e:#}"),
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
