//! What a plugin instance can reach: a store holding a WASI context with nothing granted but
//! what the task file lists, a memory cap, and a log that writes under the plugin's name.

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
    pub limits: MemoryCap,
    plugin: String,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// The memory limit of one plugin instance, and whether the plugin ran into it: a plugin that
/// asks for more traps at once, and kpo knows why without reading wasmtime's error text.
pub struct MemoryCap {
    bytes: usize,
    /// The plugin asked for more memory than the cap (initially or by growing).
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.bytes {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.bytes);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl Sandbox {
    pub fn new(plugin: &str, memory: u64, grants: &Grants) -> Result<Self, PluginError> {
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
            if let Ok(value) = std::env::var(name) {
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
        let limits = MemoryCap {
            bytes: usize::try_from(memory).unwrap_or(usize::MAX),
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

    /// Sends what the guest printed to kpo's log, under its name.
    pub fn flush_output(&self) {
        for (pipe, is_err) in [(&self.stdout, false), (&self.stderr, true)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                if is_err {
                    tracing::warn!(plugin = %self.plugin, "stderr: {line}");
                } else {
                    tracing::info!(plugin = %self.plugin, "stdout: {line}");
                }
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
