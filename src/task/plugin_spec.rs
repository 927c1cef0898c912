//! What a task file says about one plugin: the plugin host's input, kept with the task so
//! that reading a task file never needs the WebAssembly engine.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::vocabulary::PolicyMode;

/// Default time limit of one plugin call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY: u64 = 64 * 1024 * 1024;

/// What the task file says about one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// `name` from the task file, else the file name without `.wasm`.
    pub name: String,
    pub path: PathBuf,
    /// The plugin's `config` table, handed to it as JSON.
    pub config: serde_json::Value,
    pub timeout: Duration,
    pub memory: u64,
    /// JSON pointers (`/metadata/labels`) under which a mutator may change the pod; `None`: anywhere
    /// except the protected fields.
    pub writable: Option<Vec<String>>,
    pub grants: Grants,
    /// What a refusal of this policy does (`[[policy]]` only).
    pub mode: PolicyMode,
    /// Where the entry was written.
    pub origin: Origin,
}

/// Where a plugin entry comes from. A task file can drop or change only its own entries: the
/// policies of the others are imposed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The task file itself.
    TaskFile,
    /// `--policy FILE` on the command line.
    CommandLine(PathBuf),
    /// A policy file in the user's configuration folder.
    User(PathBuf),
    /// A policy file in the machine's configuration folder (`/etc/kpo/policies.d`).
    Machine(PathBuf),
}

impl Origin {
    /// Whether the entry was imposed from outside the task file.
    pub fn imposed(&self) -> bool {
        *self != Origin::TaskFile
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::TaskFile => write!(f, "task file"),
            Origin::CommandLine(p) => write!(f, "--policy {}", p.display()),
            Origin::User(p) => write!(f, "user configuration {}", p.display()),
            Origin::Machine(p) => write!(f, "machine configuration {}", p.display()),
        }
    }
}

/// Capabilities granted to one plugin; by default it has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    /// Environment variables passed through (by name, value from kpo's environment).
    pub env: Vec<String>,
    /// The real wall and monotonic clocks instead of a clock stuck at zero.
    pub clock: bool,
    /// Host directories visible read-only, as (host path, guest path).
    pub dirs: Vec<(PathBuf, String)>,
}

impl PluginSpec {
    /// The plugin at `path` with every default: named for its file, no config, the default
    /// limits, no grants (what `kpo plugin` uses when there is no task file).
    pub fn at(path: &Path) -> Self {
        PluginSpec {
            name: default_name(path),
            path: path.to_owned(),
            config: serde_json::Value::Null,
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            writable: None,
            grants: Grants::default(),
            mode: PolicyMode::Enforce,
            origin: Origin::TaskFile,
        }
    }
}

/// The name a plugin goes by when the task file gives none: its file name without `.wasm`.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}
