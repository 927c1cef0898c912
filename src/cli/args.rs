//! The command line as clap reads it: commands, their arguments and what each teaches in
//! `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::plugin_cmd;
use super::signals::SignalMode;

/// What `kpo --version` says: kpo's version and the plugin contract it speaks.
pub(super) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (plugin contract kpo:plugin@0.2.0: mutator, validator, interpreter, settings; 0.1.0 components load too)"
);

/// Run a task as a supervised Kubernetes pod.
///
/// A task file (TOML) says what to run: image, command, environment, resources, volumes, and how
/// to supervise it. kpo builds the pod, submits it, follows it with a watch, streams its logs,
/// explains failures with the pod's events, cleans up, and exits with the task's exit code.
///
/// Try it without a cluster: kpo run --sim examples/hello.toml
#[derive(Debug, Parser)]
#[command(name = "kpo", version = VERSION, max_term_width = 100)]
pub struct Cli {
    /// More detail on stderr (-v: kpo's debug log, -vv: everything). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(super) verbose: u8,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run a task: build the pod, submit it, stream its logs, wait, report, clean up.
    ///
    /// Several task files or folders run as one batch: `kpo run nightly/ --parallel 20`.
    ///
    /// Exit code: 0 on success, the main container's exit code when it fails (1 when it failed
    /// without one), or one of kpo's own: 2 usage error, 65 rejected by the API server, 69
    /// cluster unreachable, 70 a bug in kpo, 74 invalid result, 75 run supervised by another
    /// kpo, 76 plugin failed, 77 refused by a plugin or policy, 78 invalid task file (or policy
    /// file, a plugin config its plugin rejects, a plugin in a role it does not export), 80 a
    /// batch in which a task did not succeed, 99 skipped (skip_on_exit_codes or an interpreter), 124 timed out, 125
    /// never started, 130 interrupted.
    Run(RunArgs),
    /// Print the pod a task would submit, as YAML, without running it.
    ///
    /// Without --server nothing is contacted. With --server the API server validates the pod
    /// and applies its defaults in a dry run (dryRun=All): nothing is created.
    Render(RenderArgs),
    /// Check a task file and the pod template it names; print every problem with its line.
    ///
    /// Its plugins are loaded too (a missing file, the wrong world, a config the plugin
    /// rejects), and the policies that apply are listed with where each comes from and what it
    /// says about the pod. Exit 0 when all is well, 78 for a bad task file or plugin config,
    /// 76 for a plugin that fails, 77 when a policy refuses the pod.
    Validate {
        /// The task file (with a [matrix]: every member is checked).
        task: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// List the runs this machine's journal knows (newest last).
    List,
    /// Draw a batch (or one run) from this machine's journal as one self-contained HTML page: a
    /// bar per task and attempt — waiting for a slot, pending, running, retry backoff — coloured
    /// by how it ended, and the summary beside it.
    Timeline {
        /// The batch's id (or a run's), as `kpo list` shows it.
        id: String,
        /// The page to write; default: ID.html.
        #[arg(short = 'o', long = "output", value_name = "FILE.html")]
        file: Option<PathBuf>,
    },
    /// Reattach to a run whose kpo was stopped: follow its pod (matched by UID) to the end.
    Attach {
        /// The run id (see `kpo list`).
        run_id: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// `text` for people; `json` prints the run report on stdout.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the main container's log of a run.
    Logs {
        /// The run id (see `kpo list`).
        run_id: String,
        /// Keep following the log while the container runs.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Delete the pod of a run (only if it is still the run's own, by UID).
    Delete {
        /// The run id (see `kpo list`).
        run_id: String,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Clean up after runs whose kpo died, in a namespace: delete kpo's finished pods that their
    /// task's on_finish would have deleted (pods kept on purpose stay), pods past their active
    /// deadline, and finished pods stuck in Terminating.
    Gc {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Only print what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Inspect and test plugin components without a cluster.
    Plugin {
        #[command(subcommand)]
        command: plugin_cmd::PluginCommand,
    },
    /// Print a shell completion script: `kpo completions bash > ~/.local/share/bash-completion/completions/kpo`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print kpo's man page (roff): `kpo man > ~/.local/share/man/man1/kpo.1`.
    Man,
}

#[derive(Debug, Args)]
pub(super) struct ClusterArgs {
    /// Use the built-in simulated cluster instead of a real one (nothing real is created);
    /// --kubeconfig and --context are then ignored.
    #[arg(long)]
    pub(super) sim: bool,
    /// Kubeconfig file to use.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub(super) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    pub(super) context: Option<String>,
    /// Use the service account of the pod kpo runs in (an Airflow worker in the cluster),
    /// ignoring --kubeconfig, KUBECONFIG and ~/.kube/config. Without any of them kpo uses it
    /// anyway.
    #[arg(long)]
    pub(super) in_cluster: bool,
    /// Namespace to run in; overrides the task file and the context.
    #[arg(short, long, value_name = "NAME")]
    pub(super) namespace: Option<String>,
    /// Requests per second kpo may start against the API server, on average (a client-side
    /// token bucket, as client-go's; 429 answers are honoured besides).
    #[arg(long, value_name = "N", default_value = "100")]
    pub(super) qps: std::num::NonZeroU32,
    /// Requests kpo may start at once before --qps paces them.
    #[arg(long, value_name = "N", default_value = "500")]
    pub(super) burst: std::num::NonZeroU32,
}

/// Policies imposed from outside the task file.
#[derive(Debug, Args, Default)]
pub(super) struct PolicyArgs {
    /// Impose a policy the task file cannot remove or weaken: a policy file ([[policy]] entries,
    /// as in a task file), a component (.wasm, in enforce mode), or a folder of them. May be
    /// given several times; adds to the policies of /etc/kpo/policies.d and of
    /// ~/.config/kpo/policies.d ($KPO_CONFIG_DIR/policies.d).
    #[arg(long = "policy", value_name = "FILE")]
    pub(super) policies: Vec<PathBuf>,
}

/// Values for the task file's parameters (`[params]`): `((name))` in any string of it.
#[derive(Debug, Args, Default)]
pub(super) struct ParamArgs {
    /// Give parameter NAME this value (repeatable; the last of a name wins).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Give parameter NAME the text of this file, as it is (repeatable).
    #[arg(long = "set-file", value_name = "NAME=PATH")]
    set_file: Vec<String>,
}

impl ParamArgs {
    /// The values given, `--set-file` files read.
    pub(super) fn given(&self) -> Result<crate::task::Given, super::error::CliError> {
        let mut given = crate::task::Given::default();
        for arg in &self.set {
            given.set(arg).map_err(super::error::CliError::Usage)?;
        }
        for arg in &self.set_file {
            given.set_file(arg).map_err(super::error::CliError::Usage)?;
        }
        Ok(given)
    }
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The task file. Several files, or folders (their *.toml), run as one batch: one process,
    /// one watch per namespace, a live view, a summary, exit code 80 if any task did not succeed.
    /// So does a task file with a [matrix]: one task per member.
    #[arg(required = true, value_name = "TASK")]
    pub(super) tasks: Vec<PathBuf>,
    #[command(flatten)]
    pub(super) params: ParamArgs,
    /// In a batch: how many tasks may run at once (each has at most one pod alive); the rest
    /// wait their turn. A task waiting to retry gives its turn back for its backoff.
    #[arg(long, value_name = "N", default_value_t = crate::batch::DEFAULT_PARALLEL)]
    pub(super) parallel: usize,
    /// In a batch: after the first task that does not succeed, start no new task (those
    /// running finish; the rest are reported as not started).
    #[arg(long)]
    pub(super) fail_fast: bool,
    #[command(flatten)]
    pub(super) cluster: ClusterArgs,
    #[command(flatten)]
    pub(super) policy: PolicyArgs,
    /// `text` for people; `json` prints the run report on stdout (logs move to stderr).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub(super) output: Output,
    /// What Ctrl-C or SIGTERM does: `terminate` deletes the pod and waits until it is gone (a
    /// second interrupt skips its grace period); `detach` leaves it running.
    #[arg(long, value_enum, default_value_t = SignalMode::Terminate)]
    pub(super) on_signal: SignalMode,
    /// Once the main container has ended, kpo deletes the pod and exits while sidecars still
    /// stop within their grace period. With this flag it waits until the pod is gone. (After a
    /// timeout, an interrupt or a pod that never started, kpo always waits.)
    #[arg(long)]
    pub(super) wait_for_deletion: bool,
    /// Also write every streamed log line, prefixed with its container, to this file.
    #[arg(long, value_name = "FILE")]
    pub(super) log_file: Option<PathBuf>,
    /// The run's id: with the id of a run whose kpo was killed, reattach to its pod (matched by
    /// UID) and continue its logs where they stopped; with the id of a finished run, report it.
    #[arg(long, value_name = "ID")]
    pub(super) run_id: Option<String>,
    /// With --run-id: run the task again even if that run finished or its pod is gone.
    #[arg(long, requires = "run_id")]
    pub(super) rerun: bool,
    /// With --run-id: follow the run's pod while it is still at its work (its kpo was killed),
    /// but run the task again once the run has ended — what a scheduler's retry wants. The new
    /// attempt is numbered on from the last (attempt 2 after 1).
    #[arg(long, requires = "run_id", conflicts_with = "rerun")]
    pub(super) rerun_finished: bool,
    /// When another kpo supervises this run (it holds the run's claim), wait until it is done
    /// or its claim expires, then report or take the run over — instead of exiting 75.
    #[arg(long)]
    pub(super) wait: bool,
    /// Write the task's result document (see [result] in the task file) to this file.
    #[arg(long, value_name = "FILE")]
    pub(super) result_file: Option<PathBuf>,
    /// Write the run's outcome as interpreter plugins are handed it (environment values
    /// redacted) to this file: `kpo plugin test --outcome FILE` tests an interpreter on it.
    #[arg(long, value_name = "FILE")]
    pub(super) record_outcome: Option<PathBuf>,
    /// At the end, draw the batch (or the run) into this HTML page: a bar per task and attempt,
    /// and the summary beside it (`kpo timeline ID` draws it again later, from the journal).
    #[arg(long, value_name = "FILE.html")]
    pub(super) timeline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct RenderArgs {
    /// The task file.
    pub(super) task: PathBuf,
    /// Ask the API server for a dry-run create and print what it would store.
    #[arg(long)]
    pub(super) server: bool,
    /// Print what each mutator plugin changed (RFC 6902 JSON patches) instead of the pod.
    #[arg(long)]
    pub(super) diff: bool,
    /// Print the pod even when a policy refuses it (the exit code is still 77): a fixture for
    /// `kpo plugin test --pod`. Without it a refused pod is not printed, so that `kpo render |
    /// kubectl apply -f -` never applies one.
    #[arg(long, conflicts_with_all = ["server", "diff"])]
    pub(super) refused: bool,
    /// Of a task file with a [matrix], only this member (`<name>-<values>`); without it, every
    /// member's pod, one YAML document each.
    #[arg(long, value_name = "NAME")]
    pub(super) only: Option<String>,
    #[command(flatten)]
    pub(super) params: ParamArgs,
    #[command(flatten)]
    pub(super) cluster: ClusterArgs,
    #[command(flatten)]
    pub(super) policy: PolicyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Output {
    Text,
    Json,
}

/// How a run is shown and where its results go.
pub(super) struct Shown {
    pub(super) output: Output,
    pub(super) on_signal: SignalMode,
    pub(super) options: crate::batch::Options,
    pub(super) log_file: Option<PathBuf>,
    pub(super) result_file: Option<PathBuf>,
    pub(super) record_outcome: Option<PathBuf>,
    pub(super) timeline: Option<PathBuf>,
}

impl Command {
    /// Whether the command promised a JSON document on stdout: then even an error prints one.
    pub(super) fn prints_json(&self) -> bool {
        match self {
            Command::Run(args) => args.output == Output::Json,
            Command::Attach { output, .. } => *output == Output::Json,
            _ => false,
        }
    }
}
