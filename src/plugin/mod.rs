//! WebAssembly component plugins: mutators change the pod before it is submitted, interpreters
//! judge the run afterwards. The contract is `wit/plugin.wit`.
//!
//! Lifecycle (after kubewarden's policy-evaluator): one [`PluginHost`] per process holds the
//! engine, its epoch clock and the linker; each plugin is compiled once (and cached on disk) into
//! a [`Loaded`] with its `InstancePre`; every call gets a fresh `Store` with a deadline and a
//! memory cap, so a plugin that traps or runs away never leaks into the next call.

mod bindings;
mod engine;
pub mod inspect;
mod interpret;
mod mutate;
mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use crate::task::PluginSpec;
use crate::vocabulary::{Decision, Mutation};
pub use bindings::kpo::plugin::types::{ContainerOutcome, Context, Judgement, Outcome, Verdict};
pub use engine::default_cache_dir;
pub use interpret::interpret;
pub use mutate::{check, mutate};

use bindings::exports::kpo::plugin::{interpreter, mutator};
use sandbox::Sandbox;

/// The largest pod or outputs document a plugin may hand back (the API server's own request
/// limit is about 1.5 MB).
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// Why a plugin could not do its job. Always names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("plugin {plugin}: cannot read {}", path.display())]
    Read {
        plugin: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {plugin}: not a WebAssembly component: {message}")]
    NotAComponent { plugin: String, message: String },
    #[error("plugin {plugin}: {message}")]
    Setup { plugin: String, message: String },
    #[error(
        "plugin {plugin} is used as {role} but does not export kpo:plugin/{role}@0.1.0 (it implements: {implements})"
    )]
    WrongWorld {
        plugin: String,
        role: &'static str,
        implements: String,
    },
    #[error("plugin {plugin} exceeded its time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin} exceeded its memory limit of {} MiB", limit / (1024 * 1024))]
    Memory { plugin: String, limit: u64 },
    #[error("plugin {plugin} crashed: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} refused the pod: {reason}")]
    Refused { plugin: String, reason: String },
    #[error("plugin {plugin} returned an invalid result: {message}")]
    InvalidOutput { plugin: String, message: String },
    #[error("plugin {plugin} changed {path}, which it may not change{why}")]
    Forbidden {
        plugin: String,
        path: String,
        why: String,
    },
}

impl PluginError {
    /// The exit code for this error: a refusal is a policy decision, the rest a plugin failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            PluginError::Refused { .. } => crate::exit::REFUSED,
            _ => crate::exit::PLUGIN_FAILED,
        }
    }
}

/// The engine, linker and compile cache shared by every plugin of a process.
pub struct PluginHost {
    engine: engine::EngineHandle,
    linker: Linker<Sandbox>,
    cache: Option<PathBuf>,
    /// Every component loaded so far, by the SHA-256 of its bytes: the tasks of a batch that
    /// use one plugin compile and pre-instantiate it once.
    linked: std::sync::Mutex<HashMap<[u8; 32], Linked>>,
}

/// A component compiled and linked, ready to be instantiated for any spec that names it.
#[derive(Clone)]
struct Linked {
    pre: InstancePre<Sandbox>,
    from_cache: bool,
}

/// A compiled plugin ready to be instantiated.
pub struct Loaded {
    pub spec: PluginSpec,
    pre: InstancePre<Sandbox>,
    mutator: Option<mutator::GuestIndices>,
    interpreter: Option<interpreter::GuestIndices>,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
}

impl PluginHost {
    /// A host caching compiled components in `cache` (none: compile every time).
    pub fn new(cache: Option<PathBuf>) -> Result<Self, PluginError> {
        let engine = engine::EngineHandle::new()?;
        let mut linker = Linker::new(&engine.engine);
        let link_error = |e: wasmtime::Error| PluginError::Engine(format!("cannot link host functions: {e}"));
        // Rust's std (and most language runtimes) import WASI even when they use none of it:
        // link it all, grant nothing (see `Sandbox`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        bindings::kpo::plugin::log::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(link_error)?;
        Ok(Self {
            engine,
            linker,
            cache,
            linked: Default::default(),
        })
    }

    /// Reads, compiles (or loads from the cache) and links the plugin at `spec.path`.
    pub fn load(&self, spec: &PluginSpec) -> Result<Loaded, PluginError> {
        let bytes = std::fs::read(&spec.path).map_err(|source| PluginError::Read {
            plugin: spec.name.clone(),
            path: spec.path.clone(),
            source,
        })?;
        let key: [u8; 32] = Sha256::digest(&bytes).into();
        let known = self.linked.lock().ok().and_then(|l| l.get(&key).cloned());
        let linked = match known {
            // Compiled already, by this process: no compile, as good as the disk cache.
            Some(linked) => Linked {
                from_cache: true,
                ..linked
            },
            None => {
                let linked = self.link(spec, &bytes)?;
                if let Ok(mut l) = self.linked.lock() {
                    l.insert(key, linked.clone());
                }
                linked
            }
        };
        let pre = linked.pre;
        Ok(Loaded {
            mutator: mutator::GuestIndices::new(&pre).ok(),
            interpreter: interpreter::GuestIndices::new(&pre).ok(),
            spec: spec.clone(),
            pre,
            from_cache: linked.from_cache,
        })
    }

    /// Compiles (or loads from the cache) and links a component.
    fn link(&self, spec: &PluginSpec, bytes: &[u8]) -> Result<Linked, PluginError> {
        let compiled = engine::compile(&self.engine.engine, self.cache.as_deref(), &spec.name, bytes)?;
        if compiled.from_cache {
            tracing::debug!(plugin = %spec.name, "loaded compiled component from the cache in {:?}", compiled.took);
        } else {
            tracing::debug!(plugin = %spec.name, "compiled component in {:?}", compiled.took);
        }
        let pre = self
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| PluginError::Setup {
                plugin: spec.name.clone(),
                message: format!("cannot link: {e:#} (kpo provides only kpo:plugin/log and WASI 0.2)"),
            })?;
        Ok(Linked {
            pre,
            from_cache: compiled.from_cache,
        })
    }

    /// Loads every plugin of a list, checking each exports what it is used for.
    pub fn load_all(&self, specs: &[PluginSpec], role: Role) -> Result<Vec<Loaded>, PluginError> {
        specs
            .iter()
            .map(|spec| {
                let loaded = self.load(spec)?;
                loaded.require(role)?;
                Ok(loaded)
            })
            .collect()
    }

    /// A fresh store for one call: deadline and memory cap armed.
    fn store(&self, spec: &PluginSpec) -> Result<Store<Sandbox>, PluginError> {
        let mut store = Store::new(
            &self.engine.engine,
            Sandbox::new(&spec.name, spec.memory, &spec.grants)?,
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (spec.timeout.as_millis() / engine::TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        Ok(store)
    }
}

/// What a plugin is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Mutator,
    Interpreter,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Mutator => "mutator",
            Role::Interpreter => "interpreter",
        }
    }
}

impl Loaded {
    /// Fails unless the plugin exports the interface `role` needs.
    pub fn require(&self, role: Role) -> Result<(), PluginError> {
        let present = match role {
            Role::Mutator => self.mutator.is_some(),
            Role::Interpreter => self.interpreter.is_some(),
        };
        if present {
            return Ok(());
        }
        let implements = match (self.mutator.is_some(), self.interpreter.is_some()) {
            (true, true) => "plugin (mutator and interpreter)",
            (true, false) => "mutator-plugin",
            (false, true) => "interpreter-plugin",
            (false, false) => "neither kpo world",
        };
        Err(PluginError::WrongWorld {
            plugin: self.spec.name.clone(),
            role: role.name(),
            implements: implements.into(),
        })
    }

    /// Calls the mutator with the pod as JSON; `Ok(Err(reason))` is a refusal.
    fn call_mutate(
        &self,
        host: &PluginHost,
        pod: &str,
        ctx: &Context,
    ) -> Result<Result<String, String>, PluginError> {
        let indices = self
            .mutator
            .as_ref()
            .ok_or_else(|| self.require(Role::Mutator).unwrap_err())?;
        self.call(host, |store, instance| {
            indices.load(&mut *store, instance)?.call_mutate(store, pod, ctx)
        })
    }

    fn call_interpret(
        &self,
        host: &PluginHost,
        outcome: &Outcome,
        ctx: &Context,
    ) -> Result<Judgement, PluginError> {
        let indices = self
            .interpreter
            .as_ref()
            .ok_or_else(|| self.require(Role::Interpreter).unwrap_err())?;
        self.call(host, |store, instance| {
            indices
                .load(&mut *store, instance)?
                .call_interpret(store, outcome, ctx)
        })
    }

    /// Creates a fresh store and instance and drops them: the fixed cost every call pays, which
    /// the benchmarks measure on its own.
    pub fn instantiate(&self, host: &PluginHost) -> Result<(), PluginError> {
        self.call(host, |_, _| Ok(()))
    }

    /// Instantiates the plugin in a fresh store and runs `f`, turning traps into plugin errors.
    fn call<T>(
        &self,
        host: &PluginHost,
        f: impl FnOnce(&mut Store<Sandbox>, &wasmtime::component::Instance) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let mut store = host.store(&self.spec)?;
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| f(&mut store, &instance));
        store.data().flush_output();
        let memory_hit = store.data().limits.hit;
        result.map_err(|e| self.classify(e, memory_hit))
    }

    fn classify(&self, e: wasmtime::Error, memory_hit: bool) -> PluginError {
        let plugin = self.spec.name.clone();
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return PluginError::Timeout {
                plugin,
                limit: self.spec.timeout,
            };
        }
        if memory_hit {
            return PluginError::Memory {
                plugin,
                limit: self.spec.memory,
            };
        }
        let text = format!("{e:#}");
        PluginError::Trap {
            plugin,
            message: text.lines().next().unwrap_or_default().to_owned(),
        }
    }
}

/// Calls one interpreter directly (for `kpo plugin test`).
pub fn call_interpret(
    host: &PluginHost,
    plugin: &Loaded,
    outcome: &Outcome,
    ctx: &Context,
) -> Result<Judgement, PluginError> {
    let ctx = Context {
        config: plugin.spec.config.to_string(),
        ..ctx.clone()
    };
    plugin.call_interpret(host, outcome, &ctx)
}

/// A task's plugins, compiled and checked, ready before anything is submitted.
pub struct TaskPlugins {
    pub host: Arc<PluginHost>,
    pub mutators: Vec<Loaded>,
    pub interpreters: Vec<Loaded>,
}

impl TaskPlugins {
    /// Loads the task's plugins (none: `Ok(None)`), so that a missing file, a module that is not
    /// a component or one of the wrong world fails the run before any pod exists. Compiled
    /// components are kept in `cache` (the CLI's is [`default_cache_dir`]).
    pub fn load(task: &crate::task::Task, cache: Option<PathBuf>) -> Result<Option<Self>, PluginError> {
        if task.mutators.is_empty() && task.interpreters.is_empty() {
            return Ok(None);
        }
        Self::load_in(Arc::new(PluginHost::new(cache)?), task).map(Some)
    }

    /// Loads the task's plugins into `host`, which other tasks share (the tasks of a batch):
    /// a component used by several is compiled once.
    pub fn load_in(host: Arc<PluginHost>, task: &crate::task::Task) -> Result<Self, PluginError> {
        let mutators = host.load_all(&task.mutators, Role::Mutator)?;
        let interpreters = host.load_all(&task.interpreters, Role::Interpreter)?;
        Ok(Self {
            host,
            mutators,
            interpreters,
        })
    }

    /// Runs the mutators on `pod`.
    pub fn mutate(
        &self,
        pod: k8s_openapi::api::core::v1::Pod,
        ctx: &Context,
    ) -> Result<(k8s_openapi::api::core::v1::Pod, Vec<Mutation>), PluginError> {
        mutate(&self.host, &self.mutators, pod, ctx)
    }

    /// Runs the interpreters on the finished run.
    pub fn interpret(
        &self,
        report: &crate::report::RunReport,
        ctx: &Context,
    ) -> Result<Option<Decision>, PluginError> {
        interpret(&self.host, &self.interpreters, report, ctx)
    }

    /// Whether every plugin's compiled code came from the on-disk cache.
    pub fn all_cached(&self) -> bool {
        self.mutators
            .iter()
            .chain(&self.interpreters)
            .all(|p| p.from_cache)
    }
}

/// The context plugins are called with, before their own config is filled in.
pub fn context(task: &str, namespace: &str, run_id: &str) -> Context {
    Context {
        task: task.into(),
        namespace: namespace.into(),
        run_id: run_id.into(),
        attempt: 1,
        config: "{}".into(),
    }
}
