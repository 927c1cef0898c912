//! What kpo takes from the machine it runs on — where it keeps journals and compiled plugins,
//! which policies and grant rules the machine and its user impose, its name, the environment a
//! plugin may be granted — as one value its caller resolves once (the CLI, from its environment
//! and fixed paths). Nothing below reads an environment variable or a fixed path of its own, so
//! a library user or a test says exactly what applies.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::journal::JournalStore;
use crate::plugin::{PluginError, PluginHost};
use crate::task::{GrantRules, PluginSpec, TaskError};

/// The machine as kpo sees it.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// Where run journals are kept (in its `runs` folder).
    pub state_dir: PathBuf,
    /// Where compiled components are kept; `None`: compiled every time.
    pub cache_dir: Option<PathBuf>,
    /// The machine's policy folder, imposed on every task (`None`: none).
    pub machine_policies: Option<PathBuf>,
    /// The user's policy folder, imposed next.
    pub user_policies: Option<PathBuf>,
    /// The machine's settings file, whose `[grants]` say what a task may grant its plugins
    /// (`None`, or a file that does not exist: anything).
    pub settings: Option<PathBuf>,
    /// This machine's name, as a claim names its holder.
    pub hostname: String,
    /// The environment as it was when kpo started: what a plugin's `grant.env` may pass on.
    pub environment: BTreeMap<String, String>,
}

impl Machine {
    /// A machine of nothing but `state_dir`: no cache, no imposed policy, no grant rules, an
    /// empty environment.
    pub fn bare(state_dir: PathBuf) -> Self {
        Self {
            state_dir,
            hostname: "localhost".into(),
            ..Default::default()
        }
    }

    /// This machine's run journals.
    pub fn journals(&self) -> JournalStore {
        JournalStore::new(self.state_dir.join("runs"))
    }

    /// Every policy imposed on this machine's tasks: the machine's, the user's, then those named
    /// on the command line (see [`crate::imposed`]).
    ///
    /// # Errors
    /// A policy source that cannot be read or is not one.
    pub fn imposed(&self, command_line: &[PathBuf]) -> Result<Vec<PluginSpec>, TaskError> {
        crate::imposed::gather(
            self.machine_policies.as_deref(),
            self.user_policies.as_deref(),
            command_line,
        )
    }

    /// What tasks may grant their plugins here.
    ///
    /// # Errors
    /// The settings file cannot be read or is not valid.
    pub fn grant_rules(&self) -> Result<GrantRules, TaskError> {
        match &self.settings {
            Some(path) => crate::task::load_rules(path),
            None => Ok(GrantRules::anything()),
        }
    }

    /// A plugin host with this machine's cache and environment.
    ///
    /// # Errors
    /// The engine cannot be set up.
    pub fn plugin_host(&self) -> Result<PluginHost, PluginError> {
        Ok(PluginHost::new(self.cache_dir.clone())?.with_environment(self.environment.clone()))
    }
}
