//! The one wasmtime engine of a kpo process: its epoch clock, the pool its plugin instances
//! are made from, and components compiled once and kept on disk, keyed by their content and the
//! engine's compatibility, so the second run of a task does not compile again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;
use super::sandbox::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};

/// How often the epoch advances: a guest that computes yields to the runtime this often, so
/// that its call's deadline and an interrupt are heard within a tick.
const TICK: Duration = Duration::from_millis(10);

/// How many plugin instances one kpo process holds at once; a call beyond them waits for one
/// to end (see [`EngineHandle::calls`]).
pub const CALLS_AT_ONCE: u32 = 16;

/// What of an instance's memory and tables stays mapped when it ends, its touched pages reset by
/// `memset` rather than handed back to the kernel: the next call's first touches of it then take
/// no page fault. About what a Rust plugin's call touches (its 1 MiB stack, its heap); measured
/// with `cargo bench --bench plugins`: 1 MiB kept little, 2 MiB and 4 MiB the same.
const KEEP_RESIDENT: usize = 2 << 20;

/// The engine plus the thread that ticks its epoch; the thread stops with it.
pub struct EngineHandle {
    pub engine: Engine,
    /// One permit per instance the pool can hold: every call takes one before it instantiates,
    /// so a call never fails for want of a slot another plugin holds.
    pub calls: tokio::sync::Semaphore,
    stop: Arc<AtomicBool>,
}

impl EngineHandle {
    pub fn new() -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = match Engine::new(config.clone().allocation_strategy(pool())) {
            Ok(engine) => engine,
            // The pool reserves address space up front (a few TiB, never committed); where
            // that is refused (a `ulimit -v`), every instance is mapped on its own instead.
            Err(e) => {
                tracing::debug!("no instance pool ({e:#}); mapping each plugin instance on its own");
                Engine::new(&config).map_err(|e| PluginError::Engine(e.to_string()))?
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("kpo-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            engine,
            calls: tokio::sync::Semaphore::new(CALLS_AT_ONCE as usize),
            stop,
        })
    }
}

/// Plugin instances from a pool: a call's memories, tables and fiber stack are slots reused
/// from the calls before it, reset where they were touched, instead of mapped, faulted in and
/// unmapped anew — most of what a fresh instance cost. Sized for [`CALLS_AT_ONCE`] instances
/// of the most core instances, memories and tables the sandbox lets one instance have, so no
/// plugin can take another's slot; a memory may still grow to wasm32's 4 GiB (the pool's
/// default; the task's `memory` is the budget, checked by the sandbox).
fn pool() -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::new();
    let (instances, memories, tables) = (MAX_INSTANCES as u32, MAX_MEMORIES as u32, MAX_TABLES as u32);
    pool.total_component_instances(CALLS_AT_ONCE)
        .total_stacks(CALLS_AT_ONCE)
        .total_core_instances(CALLS_AT_ONCE * instances)
        .total_memories(CALLS_AT_ONCE * memories)
        .total_tables(CALLS_AT_ONCE * tables)
        .max_memories_per_module(memories)
        .max_tables_per_module(tables)
        .table_elements(100_000)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    InstanceAllocationStrategy::Pooling(pool)
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A compiled component and whether it came from the cache.
pub struct Compiled {
    pub component: Component,
    pub from_cache: bool,
    pub took: Duration,
}

/// Compiles `bytes` (read from `path`, named `plugin`), or loads the result of an earlier compile.
pub fn compile(
    engine: &Engine,
    cache: Option<&Path>,
    plugin: &str,
    bytes: &[u8],
) -> Result<Compiled, PluginError> {
    let started = Instant::now();
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
    let key = format!(
        "{:x}-{:016x}.checked.cwasm",
        hasher.finalize(),
        std::hash::Hasher::finish(&compat)
    );
    // A cache folder others could write to is not used at all: neither read nor written.
    let cache = cache.filter(|dir| match crate::private::create_dir(dir) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(%plugin, "not using the compile cache: {e}");
            false
        }
    });
    let cached = cache.map(|dir| dir.join(&key));
    if let Some(path) = cached.as_deref() {
        match read_entry(path, &key) {
            Ok(Some(entry)) => {
                // SAFETY: these bytes are what `precompile_component` of an engine with the same
                // compatibility hash (it is in the file name) wrote, read from a file of this
                // user's alone, through the handle its owner and mode were checked on, and
                // whole (their SHA-256 matches the one written with them).
                match unsafe { Component::deserialize(engine, &entry[SEAL..]) } {
                    Ok(component) => {
                        return Ok(Compiled {
                            component,
                            from_cache: true,
                            took: started.elapsed(),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(%plugin, "ignoring unreadable cache entry {}: {e}", path.display())
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%plugin, "not loading cache entry {}: {e}; compiling instead", path.display())
            }
        }
    }
    let invalid = |e: wasmtime::Error| PluginError::NotAComponent {
        plugin: plugin.to_owned(),
        message: format!("{e:#}"),
    };
    let serialized = engine.precompile_component(bytes).map_err(invalid)?;
    // SAFETY: these bytes were just produced by this engine.
    let component = unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid)?;
    let mut entry = seal(&key, &serialized).to_vec();
    entry.extend_from_slice(&serialized);
    if let Some(path) = cached
        && let Err(e) = crate::private::write_atomically(&path, &entry)
    {
        tracing::warn!(%plugin, "cannot cache the compiled component in {}: {e}", path.display());
    }
    Ok(Compiled {
        component,
        from_cache: false,
        took: started.elapsed(),
    })
}

/// The length of an entry's seal, before its code.
const SEAL: usize = 32;

/// What an entry starts with: the SHA-256 of its key (the component's own hash and the engine's)
/// and its code, so that an entry is loaded only whole and only for the component it was
/// compiled from — not another's entry copied or renamed over it.
fn seal(key: &str, code: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(code);
    hasher.finalize().into()
}

/// The cache entry `key` at `path` (its seal, then its code): none when there is no entry.
///
/// # Errors
/// The entry is not the user's alone, a link, unreadable, or not sealed for `key` (see [`seal`]).
fn read_entry(path: &Path, key: &str) -> std::io::Result<Option<Vec<u8>>> {
    let entry = match crate::private::read_trusted(path) {
        Ok(entry) => entry,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let sealed = entry.len() >= SEAL && seal(key, &entry[SEAL..])[..] == entry[..SEAL];
    if !sealed {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not this component's compiled code, whole (its seal does not match)",
        ));
    }
    Ok(Some(entry))
}
