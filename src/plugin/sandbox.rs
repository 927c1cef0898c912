//! What a plugin instance can reach: a store holding a WASI context with nothing granted but
//! what the task file lists, one memory budget, and a log that writes under the plugin's name.

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxView, WasiView,
};

use super::PluginError;
use super::bindings::{v1::kpo::plugin::log as old_log, v2::kpo::plugin::log};
use crate::task::Grants;

/// How much a plugin may print on stdout or stderr in one call.
const OUTPUT_CAP: usize = 64 * 1024;

/// The data of one plugin store: fresh for every call.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryBudget,
    plugin: String,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// One memory budget for everything a plugin instance allocates: every linear memory and every
/// table of every core instance of the component count against the task's `memory` together (a
/// component of ten core modules gets the budget once, not ten times). A grow past it traps at
/// once, before wasmtime commits anything, and kpo knows why without reading wasmtime's error
/// text.
pub struct MemoryBudget {
    bytes: usize,
    /// What the instance's memories and tables hold now, in bytes.
    used: usize,
    /// The plugin asked for more than the budget (initially or by growing), or for more
    /// memories, tables or instances than [`MAX_MEMORIES`], [`MAX_TABLES`], [`MAX_INSTANCES`].
    pub hit: bool,
}

/// The most core instances one plugin instance may create. A Rust component has 3,
/// componentize-qjs's 8, componentize-py's 14; wasmtime's own default is 10 000.
pub const MAX_INSTANCES: usize = 64;
/// The most linear memories one plugin instance may create (every core instance has at most
/// one in practice).
pub const MAX_MEMORIES: usize = 64;
/// The most tables one plugin instance may create.
pub const MAX_TABLES: usize = 64;
/// What one table element costs kpo: a function reference, the only element type this engine
/// has (no GC or stack-switching proposals), is one pointer.
const TABLE_ELEMENT: usize = std::mem::size_of::<usize>();

impl MemoryBudget {
    /// Takes `desired - current` more bytes from the budget, or says no and remembers it.
    fn grow(&mut self, current: usize, desired: usize, what: &str) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.bytes {
            self.hit = true;
            wasmtime::bail!(
                "{what} would take the plugin's memory to {after} bytes, past its budget of {} bytes",
                self.bytes
            );
        }
        self.used = after;
        Ok(true)
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired, "a linear memory's growth")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT);
        self.grow(bytes(current), bytes(desired), "a table's growth")
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

impl Sandbox {
    pub fn new(
        plugin: &str,
        memory: u64,
        grants: &Grants,
        environment: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, PluginError> {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAP);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAP);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !grants.clock {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        for name in &grants.env {
            if let Some(value) = environment.get(name) {
                wasi.env(name, value);
            }
        }
        for (host, guest) in &grants.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| PluginError::Setup {
                    plugin: plugin.to_owned(),
                    message: format!("cannot grant directory {}: {e}", host.display()),
                })?;
        }
        let limits = MemoryBudget {
            bytes: usize::try_from(memory).unwrap_or(usize::MAX),
            used: 0,
            hit: false,
        };
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            plugin: plugin.to_owned(),
            stdout,
            stderr,
        })
    }

    /// The end of what the guest printed on stderr, on one line: where a language runtime says
    /// why it stopped (a Rust panic, a JavaScript exception, a Python traceback's last lines).
    /// Not yet escaped or bounded for people: see `said`.
    pub fn last_words(&self) -> Option<String> {
        const TAIL: usize = 1024;
        let bytes = self.stderr.contents();
        let tail = &bytes[bytes.len().saturating_sub(TAIL)..];
        let words: Vec<&str> = std::str::from_utf8(tail)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }

    /// Sends what the guest printed to kpo's debug log (`-v`), under its name: what it says
    /// for people goes through `kpo:plugin/log`, and why it crashed is in the crash's error.
    pub fn flush_output(&self) {
        for (pipe, name) in [(&self.stdout, "stdout"), (&self.stderr, "stderr")] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                tracing::debug!(plugin = %self.plugin, "{name}: {line}");
            }
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for Sandbox {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = &self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(%plugin, "{message}"),
            log::Level::Debug => tracing::debug!(%plugin, "{message}"),
            log::Level::Info => tracing::info!(%plugin, "{message}"),
            log::Level::Warn => tracing::warn!(%plugin, "{message}"),
            log::Level::Error => tracing::error!(%plugin, "{message}"),
        }
    }
}

/// 0.1.0's log is 0.2.0's, level for level.
impl old_log::Host for Sandbox {
    fn log(&mut self, level: old_log::Level, message: String) {
        let level = match level {
            old_log::Level::Trace => log::Level::Trace,
            old_log::Level::Debug => log::Level::Debug,
            old_log::Level::Info => log::Level::Info,
            old_log::Level::Warn => log::Level::Warn,
            old_log::Level::Error => log::Level::Error,
        };
        log::Host::log(self, level, message);
    }
}

/// A clock stuck at the epoch: plugins get time only when the task file grants `clock`.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
