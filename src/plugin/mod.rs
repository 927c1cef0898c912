//! WebAssembly component plugins: mutators change the pod before it is submitted, validating
//! policies accept or refuse the final pod, interpreters judge the run afterwards. The contract
//! is `wit/plugin.wit` (`kpo:plugin@0.2.0`); components built against 0.1.0 load too, through
//! [`compat`].
//!
//! Lifecycle (after kubewarden's policy-evaluator): one [`PluginHost`] per process holds the
//! engine, its epoch clock and the linker; each plugin is compiled once (and cached on disk) into
//! a [`Loaded`] with its `InstancePre`; every call gets a fresh `Store` with one memory budget,
//! so a plugin that traps or runs away never leaks into the next call.
//!
//! Every call is a future under a wall-clock deadline: the guest yields to the runtime at each
//! epoch tick while it computes, and WASI's waits (timers, `poll`) are futures too, so a call is
//! dropped at its deadline — or when kpo is interrupted — wherever the guest is, in its own code
//! or in a host call.

mod admit;
mod bindings;
mod compat;
mod engine;
pub mod inspect;
mod interpret;
mod mutate;
pub mod recorded;
mod sandbox;
pub mod terms;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use crate::said;
use crate::task::PluginSpec;
use crate::vocabulary::{Decision, PolicyCheck, Warning};
pub use admit::{admit, denial};
/// The types of the current contract, as plugins see them.
pub use bindings::v2::kpo::plugin::types as wit;
pub use interpret::{interpret, outcome_of};
pub use mutate::{Mutated, check, mutate};
use wit::{ContainerOutcome, Context, Judgement, Outcome, Verdict};

use bindings::v1::exports::kpo::plugin as v1;
use bindings::v2::exports::kpo::plugin as v2;
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
        "plugin {plugin} is used as {} but does not export kpo:plugin/{} ({}) (it exports: {implements})",
        role.described(), role.interface(), role.versions(implements)
    )]
    WrongWorld {
        plugin: String,
        role: PluginRole,
        implements: String,
    },
    #[error("plugin {plugin} rejected its config: {message}")]
    Config { plugin: String, message: String },
    #[error("plugin {plugin} exceeded its time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin} exceeded its memory limit of {} MiB", limit / (1024 * 1024))]
    Memory { plugin: String, limit: u64 },
    /// More core instances, memories or tables than one plugin instance may have.
    #[error(
        "plugin {plugin} exceeded its limits: more than {} core instances, {} memories or {} tables ({detail})",
        sandbox::MAX_INSTANCES,
        sandbox::MAX_MEMORIES,
        sandbox::MAX_TABLES
    )]
    Counts { plugin: String, detail: String },
    #[error("plugin {plugin} crashed: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} refused the pod: {reason}")]
    Refused { plugin: String, reason: String },
    /// Validating policies in `enforce` mode refused the final pod.
    #[error("{0}")]
    Denied(String),
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
            PluginError::Refused { .. } | PluginError::Denied(_) => crate::exit::REFUSED,
            // A plugin in a role it does not export is the task file's mistake, not the plugin's.
            PluginError::Config { .. } | PluginError::WrongWorld { .. } => crate::exit::CONFIG,
            _ => crate::exit::PLUGIN_FAILED,
        }
    }
}

/// The engine, linker and compile cache shared by every plugin of a process.
pub struct PluginHost {
    engine: engine::EngineHandle,
    linker: Linker<Sandbox>,
    cache: Option<PathBuf>,
    /// The environment a plugin's `grant.env` may pass on (a snapshot, never read live).
    environment: BTreeMap<String, String>,
    /// Every component loaded so far, by the SHA-256 of its bytes: the tasks of a batch that
    /// use one plugin compile and pre-instantiate it once.
    linked: std::sync::Mutex<HashMap<[u8; 32], Linked>>,
    /// The (component, config) pairs whose `validate-config` accepted: a batch of a thousand
    /// tasks with one policy asks it about its config once.
    accepted: std::sync::Mutex<std::collections::HashSet<([u8; 32], String)>>,
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
    exports: Exports,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// The SHA-256 of the component's bytes: which configs it accepted is known by it.
    key: [u8; 32],
}

/// What a component exports, of every contract version kpo speaks: the newest version of a
/// role wins when a component exports two.
struct Exports {
    mutator: Option<Versioned<v1::mutator::GuestIndices, v2::mutator::GuestIndices>>,
    validator: Option<v2::validator::GuestIndices>,
    interpreter: Option<Versioned<v1::interpreter::GuestIndices, v2::interpreter::GuestIndices>>,
    settings: Option<v2::settings::GuestIndices>,
}

/// A role's export, in the version of the contract the component was built against.
enum Versioned<Old, New> {
    V1(Old),
    V2(New),
}

impl<Old, New> Versioned<Old, New> {
    fn find(old: Option<Old>, new: Option<New>) -> Option<Self> {
        new.map(Versioned::V2).or(old.map(Versioned::V1))
    }

    fn version(&self) -> &'static str {
        match self {
            Versioned::V1(_) => "0.1.0",
            Versioned::V2(_) => "0.2.0",
        }
    }
}

impl Exports {
    fn of(pre: &InstancePre<Sandbox>) -> Self {
        Exports {
            mutator: Versioned::find(
                v1::mutator::GuestIndices::new(pre).ok(),
                v2::mutator::GuestIndices::new(pre).ok(),
            ),
            validator: v2::validator::GuestIndices::new(pre).ok(),
            interpreter: Versioned::find(
                v1::interpreter::GuestIndices::new(pre).ok(),
                v2::interpreter::GuestIndices::new(pre).ok(),
            ),
            settings: v2::settings::GuestIndices::new(pre).ok(),
        }
    }

    /// Whether it speaks contract 0.2.0 in any role (0.1.0 had no way to check a config).
    fn speaks_v2(&self) -> bool {
        let v2 = |v: Option<&'static str>| v == Some("0.2.0");
        self.validator.is_some()
            || self.settings.is_some()
            || v2(self.mutator.as_ref().map(Versioned::version))
            || v2(self.interpreter.as_ref().map(Versioned::version))
    }

    /// `mutator@0.1.0, settings@0.2.0`: what `kpo plugin inspect` and errors show.
    fn describe(&self) -> String {
        let mut found = Vec::new();
        if let Some(m) = &self.mutator {
            found.push(format!("mutator@{}", m.version()));
        }
        if self.validator.is_some() {
            found.push("validator@0.2.0".into());
        }
        if let Some(i) = &self.interpreter {
            found.push(format!("interpreter@{}", i.version()));
        }
        if self.settings.is_some() {
            found.push("settings@0.2.0".into());
        }
        if found.is_empty() {
            return "no kpo:plugin interface".into();
        }
        found.join(", ")
    }
}

impl PluginHost {
    /// A host caching compiled components in `cache` (none: compile every time).
    pub fn new(cache: Option<PathBuf>) -> Result<Self, PluginError> {
        let engine = engine::EngineHandle::new()?;
        let mut linker = Linker::new(&engine.engine);
        let link_error = |e: wasmtime::Error| PluginError::Engine(format!("cannot link host functions: {e}"));
        // Rust's std (and most language runtimes) import WASI even when they use none of it:
        // link it all, grant nothing (see `Sandbox`).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
        bindings::v2::kpo::plugin::log::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(link_error)?;
        bindings::v1::kpo::plugin::log::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(link_error)?;
        Ok(Self {
            engine,
            linker,
            cache,
            environment: BTreeMap::new(),
            linked: Default::default(),
            accepted: Default::default(),
        })
    }

    /// This host, granting plugins from `environment` (what `grant.env` names of it).
    pub fn with_environment(mut self, environment: BTreeMap<String, String>) -> Self {
        self.environment = environment;
        self
    }

    /// Reads, compiles (or loads from the cache) and links the plugin at `spec.path`.
    pub async fn load(&self, spec: &PluginSpec) -> Result<Loaded, PluginError> {
        let loaded = self.open(spec).await?;
        let asked = (loaded.key, loaded.config());
        let known = self.accepted.lock().is_ok_and(|a| a.contains(&asked));
        if !known {
            loaded.check_config(self).await?;
            if let Ok(mut a) = self.accepted.lock() {
                a.insert(asked);
            }
        }
        Ok(loaded)
    }

    /// [`Self::load`] without asking the plugin about its config: what a component is can be
    /// told without a config it would accept (`kpo plugin inspect`).
    pub async fn open(&self, spec: &PluginSpec) -> Result<Loaded, PluginError> {
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
                let linked = self.link(spec, bytes).await?;
                if let Ok(mut l) = self.linked.lock() {
                    l.insert(key, linked.clone());
                }
                linked
            }
        };
        let pre = linked.pre;
        Ok(Loaded {
            exports: Exports::of(&pre),
            spec: spec.clone(),
            pre,
            from_cache: linked.from_cache,
            key,
        })
    }

    /// Compiles (or loads from the cache) and links a component. Compiling takes from a tenth
    /// of a second to many (CPython's: 17 s) of CPU: it runs on a blocking thread, so that the
    /// load is a future an interrupt can drop at any moment.
    async fn link(&self, spec: &PluginSpec, bytes: Vec<u8>) -> Result<Linked, PluginError> {
        let (engine, cache, name) = (self.engine.engine.clone(), self.cache.clone(), spec.name.clone());
        tracing::debug!(plugin = %spec.name, "compiling the component (or loading it from the cache)");
        let compiled =
            tokio::task::spawn_blocking(move || engine::compile(&engine, cache.as_deref(), &name, &bytes))
                .await
                .map_err(|e| PluginError::Engine(format!("the compiler stopped: {e}")))??;
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
    pub async fn load_all(&self, specs: &[PluginSpec], role: PluginRole) -> Result<Vec<Loaded>, PluginError> {
        let mut all = Vec::with_capacity(specs.len());
        for spec in specs {
            let loaded = self.load(spec).await?;
            loaded.require(role)?;
            all.push(loaded);
        }
        Ok(all)
    }

    /// A fresh store for one call: its memory budget armed, and a guest that computes made to
    /// yield at every epoch tick, so that the call's deadline (a timer around the call) and an
    /// interrupt are heard within a tick.
    fn store(&self, spec: &PluginSpec) -> Result<Store<Sandbox>, PluginError> {
        let mut store = Store::new(
            &self.engine.engine,
            Sandbox::new(&spec.name, spec.memory, &spec.grants, &self.environment)?,
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }
}

/// What a plugin is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginRole {
    Mutator,
    /// A validating policy (`[[policy]]`).
    Policy,
    Interpreter,
}

impl PluginRole {
    pub fn name(self) -> &'static str {
        match self {
            PluginRole::Mutator => "mutator",
            PluginRole::Policy => "policy",
            PluginRole::Interpreter => "interpreter",
        }
    }

    /// The role in a sentence: "a policy", "an interpreter".
    fn described(self) -> &'static str {
        match self {
            PluginRole::Mutator => "a mutator",
            PluginRole::Policy => "a policy",
            PluginRole::Interpreter => "an interpreter",
        }
    }

    /// The WIT interface the role needs.
    fn interface(self) -> &'static str {
        match self {
            PluginRole::Mutator => "mutator",
            PluginRole::Policy => "validator",
            PluginRole::Interpreter => "interpreter",
        }
    }

    /// The contract versions in which the role exists — and, for a 0.1.0 mutator listed as a
    /// policy (the 0.1.0 way to refuse a pod), where it belongs.
    fn versions(self, implements: &str) -> &'static str {
        match self {
            PluginRole::Policy if implements.contains("mutator@0.1.0") => {
                "new in 0.2.0; a 0.1.0 mutator that refuses pods belongs under [[mutate]]"
            }
            PluginRole::Policy => "new in 0.2.0",
            PluginRole::Mutator | PluginRole::Interpreter => "0.2.0 or 0.1.0",
        }
    }
}

impl Loaded {
    /// Fails unless the plugin exports the interface `role` needs.
    pub fn require(&self, role: PluginRole) -> Result<(), PluginError> {
        if self.serves(role) {
            return Ok(());
        }
        Err(PluginError::WrongWorld {
            plugin: self.spec.name.clone(),
            role,
            implements: self.exports.describe(),
        })
    }

    /// Whether the plugin exports the interface `role` needs.
    pub fn serves(&self, role: PluginRole) -> bool {
        match role {
            PluginRole::Mutator => self.exports.mutator.is_some(),
            PluginRole::Policy => self.exports.validator.is_some(),
            PluginRole::Interpreter => self.exports.interpreter.is_some(),
        }
    }

    /// What the component exports, with versions (`mutator@0.1.0`).
    pub fn describe(&self) -> String {
        self.exports.describe()
    }

    /// Why the config the task gives this plugin goes unchecked, when it does: a 0.2.0 plugin
    /// built against a world without `settings` (`mutator-plugin` rather than
    /// `configured-mutator-plugin`) takes whatever it is given, typos included.
    pub fn unchecked_config(&self) -> Option<String> {
        let given = match &self.spec.config {
            serde_json::Value::Null => false,
            serde_json::Value::Object(keys) => !keys.is_empty(),
            _ => true,
        };
        (given && self.exports.speaks_v2() && self.exports.settings.is_none()).then(|| {
            format!(
                "plugin {} is given a config but exports no kpo:plugin/settings@0.2.0: nothing checks it (a mistyped key goes unnoticed); build it against the configured-*-plugin world",
                self.spec.name
            )
        })
    }

    /// Lets a plugin that exports `settings` check its config, once, when it is loaded.
    async fn check_config(&self, host: &PluginHost) -> Result<(), PluginError> {
        let Some(indices) = &self.exports.settings else {
            return Ok(());
        };
        let config = self.config();
        let answer = self
            .call(host, async |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_validate_config(store, &config)
                    .await
            })
            .await?;
        answer.map_err(|message| PluginError::Config {
            plugin: self.spec.name.clone(),
            message: said::said(message),
        })
    }

    /// The plugin's config as the JSON it is handed (`{}` when the task file gives none).
    fn config(&self) -> String {
        match &self.spec.config {
            serde_json::Value::Null => "{}".into(),
            config => config.to_string(),
        }
    }

    /// `base` with this plugin's own config.
    fn context(&self, base: &Context) -> Context {
        Context {
            config: self.config(),
            ..base.clone()
        }
    }

    /// Calls the mutator with the pod as JSON; `Ok(Err(reason))` is a refusal.
    async fn call_mutate(
        &self,
        host: &PluginHost,
        pod: &str,
        ctx: &Context,
    ) -> Result<Result<wit::Mutated, String>, PluginError> {
        let ctx = self.context(ctx);
        let answer = match self.exports.mutator.as_ref() {
            Some(Versioned::V2(indices)) => {
                self.call(host, async |store, instance| {
                    indices
                        .load(&mut *store, instance)?
                        .call_mutate(store, pod, &ctx)
                        .await
                })
                .await?
            }
            Some(Versioned::V1(indices)) => {
                let ctx = compat::context(&ctx);
                let answer = self
                    .call(host, async |store, instance| {
                        indices
                            .load(&mut *store, instance)?
                            .call_mutate(store, pod, &ctx)
                            .await
                    })
                    .await?;
                answer.map(compat::mutated)
            }
            None => return Err(self.require(PluginRole::Mutator).unwrap_err()),
        };
        Ok(answer
            .map(|m| wit::Mutated {
                warnings: m.warnings.into_iter().map(said::said).collect(),
                ..m
            })
            .map_err(said::said))
    }

    /// Asks the validating policy about the final pod (JSON).
    async fn call_validate(
        &self,
        host: &PluginHost,
        pod: &str,
        ctx: &Context,
    ) -> Result<wit::Admission, PluginError> {
        let ctx = self.context(ctx);
        let indices = self
            .exports
            .validator
            .as_ref()
            .ok_or_else(|| self.require(PluginRole::Policy).unwrap_err())?;
        let answer = self
            .call(host, async |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_validate(store, pod, &ctx)
                    .await
            })
            .await?;
        Ok(match answer {
            wit::Admission::Accept => wit::Admission::Accept,
            wit::Admission::Warn(list) => wit::Admission::Warn(list.into_iter().map(said::said).collect()),
            wit::Admission::Refuse(reason) => wit::Admission::Refuse(said::said(reason)),
        })
    }

    async fn call_interpret(
        &self,
        host: &PluginHost,
        outcome: &Outcome,
        ctx: &Context,
    ) -> Result<Judgement, PluginError> {
        let ctx = self.context(ctx);
        let judgement = match self.exports.interpreter.as_ref() {
            Some(Versioned::V2(indices)) => {
                self.call(host, async |store, instance| {
                    indices
                        .load(&mut *store, instance)?
                        .call_interpret(store, outcome, &ctx)
                        .await
                })
                .await?
            }
            Some(Versioned::V1(indices)) => {
                let (outcome, ctx) = (compat::outcome(outcome), compat::context(&ctx));
                let judgement = self
                    .call(host, async |store, instance| {
                        indices
                            .load(&mut *store, instance)?
                            .call_interpret(store, &outcome, &ctx)
                            .await
                    })
                    .await?;
                compat::judgement(judgement)
            }
            None => return Err(self.require(PluginRole::Interpreter).unwrap_err()),
        };
        let verdict = match judgement.verdict {
            Verdict::Success => Verdict::Success,
            Verdict::Failure(r) => Verdict::Failure(said::said(r)),
            Verdict::Skip(r) => Verdict::Skip(said::said(r)),
            Verdict::Retry(r) => Verdict::Retry(said::said(r)),
        };
        Ok(Judgement { verdict, ..judgement })
    }

    /// Creates a fresh store and instance and drops them: the fixed cost every call pays, which
    /// the benchmarks measure on its own.
    pub async fn instantiate(&self, host: &PluginHost) -> Result<(), PluginError> {
        self.call(host, async |_, _| Ok(())).await
    }

    /// Instantiates the plugin in a fresh store and runs `f`, all of it within the plugin's
    /// time limit, turning traps into plugin errors. Dropping the returned future (an interrupt)
    /// stops the guest wherever it is.
    async fn call<T>(
        &self,
        host: &PluginHost,
        f: impl AsyncFnOnce(&mut Store<Sandbox>, &wasmtime::component::Instance) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        // Held until the store is gone (declared first, dropped last): its instance's slots are
        // back in the pool.
        let _slot = host.engine.calls.acquire().await;
        let mut store = host.store(&self.spec)?;
        tracing::debug!(plugin = %self.spec.name, "calling the plugin (time limit {:?})", self.spec.timeout);
        let work = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            f(&mut store, &instance).await
        };
        let result = tokio::time::timeout(self.spec.timeout, work).await;
        store.data().flush_output();
        let memory_hit = store.data().limits.hit;
        match result {
            Ok(result) => result.map_err(|e| self.classify(e, memory_hit, store.data().last_words())),
            Err(_) => Err(PluginError::Timeout {
                plugin: self.spec.name.clone(),
                limit: self.spec.timeout,
            }),
        }
    }

    /// What went wrong, in kpo's words: a limit it hit, or the crash with what the guest said
    /// last on stderr (its panic message, its exception) and the trap.
    fn classify(&self, e: wasmtime::Error, memory_hit: bool, last_words: Option<String>) -> PluginError {
        let plugin = self.spec.name.clone();
        if memory_hit {
            return PluginError::Memory {
                plugin,
                limit: self.spec.memory,
            };
        }
        let text = format!("{e:#}");
        // wasmtime's own words for a store's count limits (see `sandbox::MAX_INSTANCES`).
        if let Some(detail) = text.split("resource limit exceeded: ").nth(1) {
            return PluginError::Counts {
                plugin,
                detail: detail.lines().next().unwrap_or_default().to_owned(),
            };
        }
        let trap = match e.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        let message = match last_words {
            Some(words) => format!("{words} ({trap})"),
            None => trap,
        };
        PluginError::Trap {
            plugin,
            message: said::said(message),
        }
    }
}

/// Calls one interpreter directly (for `kpo plugin test`).
pub async fn call_interpret(
    host: &PluginHost,
    plugin: &Loaded,
    outcome: &Outcome,
    ctx: &Context,
) -> Result<Judgement, PluginError> {
    plugin.call_interpret(host, outcome, ctx).await
}

/// Calls one validating policy directly (for `kpo plugin test`).
pub async fn call_validate(
    host: &PluginHost,
    plugin: &Loaded,
    pod: &str,
    ctx: &Context,
) -> Result<wit::Admission, PluginError> {
    plugin.call_validate(host, pod, ctx).await
}

/// A task's plugins, compiled and checked, ready before anything is submitted.
pub struct TaskPlugins {
    pub host: Arc<PluginHost>,
    pub mutators: Vec<Loaded>,
    pub policies: Vec<Loaded>,
    pub interpreters: Vec<Loaded>,
}

impl TaskPlugins {
    /// What to warn of about the task's plugins once loaded: configs nothing checks.
    pub fn warnings(&self) -> Vec<String> {
        let all = self
            .mutators
            .iter()
            .chain(&self.policies)
            .chain(&self.interpreters);
        all.filter_map(Loaded::unchecked_config).collect()
    }

    /// Loads the task's plugins (none: `Ok(None)`), so that a missing file, a module that is not
    /// a component, one of the wrong world or a config its plugin rejects fails the run before
    /// any pod exists. Compiled components are kept in `cache`; the plugins are granted nothing
    /// of the environment (a host of the machine's, `Machine::plugin_host`, and
    /// [`TaskPlugins::load_in`] pass the machine's on).
    pub async fn load(task: &crate::task::Task, cache: Option<PathBuf>) -> Result<Option<Self>, PluginError> {
        if !task.has_plugins() {
            return Ok(None);
        }
        Self::load_in(Arc::new(PluginHost::new(cache)?), task)
            .await
            .map(Some)
    }

    /// Loads the task's plugins into `host`, which other tasks share (the tasks of a batch):
    /// a component used by several is compiled once.
    pub async fn load_in(host: Arc<PluginHost>, task: &crate::task::Task) -> Result<Self, PluginError> {
        let mutators = host.load_all(&task.mutators, PluginRole::Mutator).await?;
        let policies = host.load_all(&task.policies, PluginRole::Policy).await?;
        let interpreters = host.load_all(&task.interpreters, PluginRole::Interpreter).await?;
        Ok(Self {
            host,
            mutators,
            policies,
            interpreters,
        })
    }

    /// Runs the mutators on `pod`, in order.
    pub async fn mutate(
        &self,
        pod: k8s_openapi::api::core::v1::Pod,
        ctx: &Context,
    ) -> Result<Mutated, PluginError> {
        mutate(&self.host, &self.mutators, pod, ctx).await
    }

    /// Runs every validating policy on the final pod.
    pub async fn admit(
        &self,
        pod: &k8s_openapi::api::core::v1::Pod,
        ctx: &Context,
    ) -> Result<(Vec<PolicyCheck>, Vec<Warning>), PluginError> {
        admit(&self.host, &self.policies, pod, ctx).await
    }

    /// Runs the interpreters on the finished run.
    pub async fn interpret(
        &self,
        report: &crate::report::RunReport,
        ctx: &Context,
    ) -> Result<Option<Decision>, PluginError> {
        interpret(&self.host, &self.interpreters, report, ctx).await
    }

    /// Whether every plugin's compiled code came from the on-disk cache.
    pub fn all_cached(&self) -> bool {
        self.mutators
            .iter()
            .chain(&self.policies)
            .chain(&self.interpreters)
            .all(|p| p.from_cache)
    }
}

/// The context plugins are called with on a run's first attempt, before their own config is
/// filled in.
pub fn context(task: &str, namespace: &str, run_id: &str) -> Context {
    Context {
        task: task.into(),
        namespace: namespace.into(),
        run_id: run_id.into(),
        attempt: 1,
        config: "{}".into(),
        earlier: Vec::new(),
    }
}

/// The largest total of warnings one plugin may hand back in one call, in bytes.
pub const MAX_WARNINGS: usize = 64 * 1024;
/// The most warnings one plugin may hand back in one call: a million empty ones are as much
/// noise as one huge one.
pub const MAX_WARNING_COUNT: usize = 100;

/// Checks and names one plugin's warnings.
fn warnings(plugin: &str, list: Vec<String>) -> Result<Vec<Warning>, PluginError> {
    if list.len() > MAX_WARNING_COUNT {
        return Err(PluginError::InvalidOutput {
            plugin: plugin.to_owned(),
            message: format!(
                "{} warnings, more than the limit of {MAX_WARNING_COUNT}",
                list.len()
            ),
        });
    }
    let size: usize = list.iter().map(String::len).sum();
    if size > MAX_WARNINGS {
        return Err(PluginError::InvalidOutput {
            plugin: plugin.to_owned(),
            message: format!("warnings of {size} bytes, more than the limit of {MAX_WARNINGS}"),
        });
    }
    Ok(list
        .into_iter()
        .map(|message| Warning {
            plugin: plugin.to_owned(),
            message,
        })
        .collect())
}
