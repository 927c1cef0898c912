//! The `kpo` command line: a thin layer that parses arguments, loads the task, connects, calls
//! the library and turns the result into output and an exit code.

mod args;
mod batch;
mod error;
mod inspect;
mod machine;
mod plugin_cmd;
mod progress;
mod run;
mod runs;
mod signals;
mod stdout;
mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};

use crate::connect::{self, Connection, Target};
use crate::exit;
use crate::journal::Journal;
use crate::plugin::TaskPlugins;
use crate::reattach::{LostPod, NotReattached};
use crate::runs::{FindError, Finder, Named};
use crate::task::{self, Task};
pub use args::Cli;
use args::{ClusterArgs, Command, PolicyArgs};
use error::CliError;
use signals::Signals;
use stdout::outln;

/// Entry point of the `kpo` binary: every error of every command is printed here, once, with
/// its causes, and becomes its exit code.
pub fn main() -> ExitCode {
    let cli = parse();
    init_tracing(cli.verbose);
    let json = cli.command.prints_json();
    let result = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        // A panic is a bug in kpo: the supervisor has already cleaned up; exit with kpo's own code.
        Ok(runtime) => {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runtime.block_on(async {
                    // First of all: a signal is heard from here on, whatever kpo is doing.
                    let signals = Signals::install()
                        .map_err(|e| CliError::Internal(format!("cannot listen for signals: {e}")))?;
                    dispatch(cli.command, signals).await
                })
            }))
            .unwrap_or_else(|_| Err(CliError::Internal("kpo panicked".into())));
            // A compile an interrupt abandoned may still run on a blocking thread: kpo's work is
            // done, so it exits without waiting for it.
            runtime.shutdown_background();
            result
        }
        Err(e) => Err(CliError::Internal(format!("cannot start the async runtime: {e}"))),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Line by line: an error of several lines (a task file's problems, its causes) keeps
            // them, and no line carries a control character from outside.
            let explained = e.explain();
            let lines: Vec<_> = explained.lines().map(crate::said::shown).collect();
            eprintln!("kpo: error: {}", lines.join("\n"));
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&e.document()).unwrap_or_default()
                );
            }
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILED as u8))
}

/// The command line, named `kubectl kpo` in help and errors when kubectl runs kpo as its
/// plugin (a binary called `kubectl-kpo` on the PATH).
fn parse() -> Cli {
    let invoked_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let mut command = Cli::command();
    if invoked_as.as_deref() == Some("kubectl-kpo") {
        command = command.bin_name("kubectl kpo");
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the command. `run` and `attach` act on signals themselves (a pod to stop); every other
/// command simply stops where it is and exits 130.
async fn dispatch(command: Command, signals: Signals) -> Result<i32, CliError> {
    match command {
        Command::Run(args) => run::run(args, &signals).await,
        Command::Attach {
            run_id,
            cluster,
            output,
        } => run::attach(run_id, cluster, output, &signals).await,
        Command::Render(args) => signals.unless_interrupted(inspect::render(args)).await?,
        Command::Validate { task, policy, params } => {
            signals
                .unless_interrupted(inspect::validate(&task, &policy, &params))
                .await?
        }
        Command::Plugin { command } => signals.unless_interrupted(plugin_cmd::handle(command)).await?,
        Command::List => runs::list(),
        Command::Timeline { id, file } => runs::timeline(&id, file),
        Command::Logs {
            run_id,
            follow,
            cluster,
        } => signals.unless_interrupted(logs(run_id, follow, cluster)).await?,
        Command::Delete { run_id, cluster } => signals.unless_interrupted(delete(run_id, cluster)).await?,
        Command::Gc { cluster, dry_run } => {
            let gc = async {
                let (conn, ns) = connect_to_namespace(&cluster).await?;
                runs::gc(&conn.client, &ns, dry_run).await
            };
            signals.unless_interrupted(gc).await?
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kpo", &mut script);
            stdout::put(&String::from_utf8_lossy(&script));
            Ok(exit::SUCCESS)
        }
        Command::Man => {
            stdout::with(|out| clap_mangen::Man::new(Cli::command()).render(out))
                .map_err(|e| CliError::Internal(format!("cannot print the man page: {e}")))?;
            Ok(exit::SUCCESS)
        }
    }
}

/// `kpo logs ID`: the log of a run, or of each run of a batch.
async fn logs(run_id: String, follow: bool, cluster: ClusterArgs) -> Result<i32, CliError> {
    let (conn, ns) = connect_to_namespace(&cluster).await?;
    let journals = match run_or_batch(&conn, &ns, &run_id, follow).await {
        // Nothing of the run's own, but a pod that carries its labels: shown, marked as such.
        Err(CliError::Find(FindError::Unrecorded(NotReattached(LostPod::Unrecorded {
            namespace,
            pod,
            ..
        })))) => {
            eprintln!(
                "kpo: warning: the log of pod {namespace}/{pod} is shown unverified: it is not recorded as run {run_id}'s"
            );
            return runs::pod_log(&conn.client, &namespace, &pod, follow).await;
        }
        other => other?,
    };
    for journal in journals {
        if journal.batch.is_some() && journal.run_id != run_id {
            eprintln!("kpo: ==> task {} (run {}) <==", journal.task, journal.run_id);
        }
        runs::logs(&conn.client, &journal, follow).await?;
    }
    Ok(exit::SUCCESS)
}

/// `kpo delete ID`: the pod of a run, or of each run of a batch.
async fn delete(run_id: String, cluster: ClusterArgs) -> Result<i32, CliError> {
    let (conn, ns) = connect_to_namespace(&cluster).await?;
    for journal in run_or_batch(&conn, &ns, &run_id, false).await? {
        // A batch's finished tasks have no pod left: nothing to delete there.
        match runs::delete(&conn.client, &journal).await {
            Err(CliError::Lost(LostPod::Gone { .. } | LostPod::NeverCreated { .. }))
                if journal.batch.is_some() => {}
            other => drop(other?),
        }
    }
    Ok(exit::SUCCESS)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,kpo=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .init();
}

/// Colour only on a terminal, and not even there when `NO_COLOR` is set to anything
/// (no-color.org).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

async fn connect(args: &ClusterArgs) -> Result<Connection, CliError> {
    let target = Target {
        sim: args.sim,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        in_cluster: args.in_cluster,
        rate: crate::client::RateLimit {
            per_second: args.qps,
            burst: args.burst,
        },
    };
    let conn = connect::connect(&target).await?;
    if conn.simulated {
        eprintln!(
            "kpo: using the built-in SIMULATED cluster at {} — no real pod is created",
            conn.server
        );
    }
    Ok(conn)
}

/// The cluster and the namespace a command about runs looks in: `--namespace`, else the
/// context's.
async fn connect_to_namespace(args: &ClusterArgs) -> Result<(Connection, String), CliError> {
    let conn = connect(args).await?;
    let ns = args.namespace.clone().unwrap_or(conn.default_namespace.clone());
    Ok((conn, ns))
}

fn namespace_for(args: &ClusterArgs, task: &Task, context_default: &str) -> String {
    args.namespace
        .clone()
        .or_else(|| task.namespace.clone())
        .unwrap_or_else(|| context_default.to_owned())
}

/// Reads the task file at `path` with these parameter values — one task, or each member of its
/// matrix — and imposes on each the policies from outside it.
fn load_members(path: &Path, policy: &PolicyArgs, given: &task::Given) -> Result<Vec<Task>, CliError> {
    let machine = machine::this();
    let imposed = machine.imposed(&policy.policies)?;
    let rules = machine.grant_rules()?;
    let mut tasks = task::load_members(path, given)?;
    for task in &mut tasks {
        task.impose(&imposed)?;
        task.allow(&rules)?;
    }
    Ok(tasks)
}

/// Loads the tasks' plugins before anything else happens, in one host (a component several
/// tasks use is compiled once); errors name the plugin.
async fn load_plugins(tasks: &[Task]) -> Result<Vec<Option<Arc<TaskPlugins>>>, CliError> {
    if !tasks.iter().any(Task::has_plugins) {
        return Ok(tasks.iter().map(|_| None).collect());
    }
    let host = Arc::new(machine::this().plugin_host()?);
    let mut all = Vec::with_capacity(tasks.len());
    for t in tasks {
        let loaded = match t.has_plugins() {
            true => Some(Arc::new(TaskPlugins::load_in(host.clone(), t).await?)),
            false => None,
        };
        all.push(loaded);
    }
    // Once each, however many tasks of a batch share the plugin and its config.
    let warnings: std::collections::BTreeSet<String> =
        all.iter().flatten().flat_map(|p| p.warnings()).collect();
    for warning in warnings {
        eprintln!("kpo: warning: {warning}");
    }
    if all.iter().flatten().any(|p| !p.all_cached()) {
        eprintln!("kpo: compiled the task's plugins (kept in the cache: the next run starts faster)");
    }
    Ok(all)
}

/// [`load_plugins`] of one task.
async fn load_task_plugins(task: &Task) -> Result<Option<Arc<TaskPlugins>>, CliError> {
    Ok(load_plugins(std::slice::from_ref(task)).await?.pop().flatten())
}

/// The run `id` names, or every run of the batch it names (`logs` and `delete` act on each).
async fn run_or_batch(conn: &Connection, ns: &str, id: &str, follow: bool) -> Result<Vec<Journal>, CliError> {
    let store = machine::this().journals();
    match finder(conn, &store).run_or_batch(ns, id).await? {
        Named::Run(journal) => Ok(vec![*journal]),
        Named::Batch(_) if follow => Err(CliError::Usage(format!(
            "{id} is a batch: follow one of its tasks (`kpo logs {id}-TASK -f`; `kpo list` names them)"
        ))),
        Named::Batch(members) => Ok(members),
    }
}

/// Where the commands about runs look for them: this machine's journals and `conn`'s cluster;
/// pods that only carry a run's labels are told of on stderr.
fn finder<'a>(conn: &'a Connection, store: &'a crate::journal::JournalStore) -> Finder<'a> {
    Finder {
        store,
        client: &conn.client,
        server: &conn.server,
        notice: &|notice| eprintln!("kpo: {notice}"),
    }
}
