//! Every way a command can fail before (or instead of) a run report, each with its exit code
//! from the one table in [`crate::exit`], printed in one place with its chain of causes.

use std::path::PathBuf;

use crate::batch::RunFailure;
use crate::connect::ConnectError;
use crate::exit;
use crate::gc::GcError;
use crate::plugin::PluginError;
use crate::reattach::{LostPod, NotReattached};
use crate::runner::RunTaskError;
use crate::runs::FindError;
use crate::session::SessionError;
use crate::task::TaskError;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Run(#[from] RunTaskError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Failed(#[from] RunFailure),
    #[error(transparent)]
    Lost(#[from] LostPod),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Gc(#[from] GcError),
    /// A run whose pod cannot be followed again (nor its log read, nor deleted).
    #[error(transparent)]
    NotReattached(#[from] NotReattached),
    /// The command line asks for something that cannot be (an unknown run, a bad value).
    #[error("{0}")]
    Usage(String),
    /// An input file of the command (not the task file) is unusable.
    #[error("{0}")]
    Input(String),
    /// A file kpo was asked to write cannot be.
    #[error("cannot {doing} {}", path.display())]
    Write {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the API server rejected the pod: {0}")]
    Rejected(String),
    /// The cluster failed a request other than the run's own.
    #[error("{doing}")]
    Cluster {
        doing: String,
        #[source]
        source: kube::Error,
    },
    /// kpo's own state (the run journal) is unusable.
    #[error("{doing}")]
    State {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    /// What a check expected is not what it got (`kpo plugin test`).
    #[error("{0}")]
    Mismatch(String),
    /// A bug in kpo.
    #[error("internal error: {0} (a bug in kpo; please report it)")]
    Internal(String),
    /// Ctrl-C or SIGTERM while kpo had nothing to clean up: no pod of the command's existed.
    #[error("interrupted (Ctrl-C or SIGTERM)")]
    Interrupted(#[from] super::signals::Interrupted),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Task(e) => e.exit_code(),
            CliError::Plugin(e) => e.exit_code(),
            CliError::Connect(e) => e.exit_code(),
            CliError::Run(e) => e.exit_code(),
            CliError::Session(e) => e.exit_code(),
            CliError::Failed(e) => e.exit_code(),
            CliError::Lost(e) => e.exit_code(),
            CliError::Find(e) => e.exit_code(),
            CliError::Gc(e) => e.exit_code(),
            CliError::NotReattached(e) => e.exit_code(),
            CliError::Usage(_) => exit::USAGE,
            CliError::Input(_) | CliError::Write { .. } => exit::CONFIG,
            CliError::Rejected(_) => exit::REJECTED,
            CliError::Cluster { .. } => exit::CLUSTER_UNAVAILABLE,
            CliError::State { .. } | CliError::Internal(_) => exit::INTERNAL,
            CliError::Mismatch(_) => exit::FAILED,
            CliError::Interrupted(_) => exit::INTERRUPTED,
        }
    }

    /// The error with its chain of causes, the way a person wants to read it.
    pub fn explain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(&format!("\n  caused by: {s}"));
            source = s.source();
        }
        text
    }

    /// The document `--output json` prints instead of a run report, so that a script always
    /// gets JSON.
    pub fn document(&self) -> serde_json::Value {
        serde_json::json!({
            "outcome": "error",
            "exit_code": self.exit_code(),
            "message": self.explain(),
        })
    }
}
