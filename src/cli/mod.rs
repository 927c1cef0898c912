//! The `kpo` command line: a thin layer that parses arguments, loads the task, connects, calls
//! the library and turns the result into output and an exit code.

mod batch;
mod error;
mod machine;
mod plugin_cmd;
mod progress;
mod runs;
mod signals;
mod stdout;
mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::batch::{Ended, Start};
use crate::connect::{self, Connection, Target};
use crate::exit;
use crate::journal::{Journal, JournaledEnd};
use crate::plugin::TaskPlugins;
use crate::pod::RunIdentity;
use crate::reattach::{LostPod, NotReattached};
use crate::report::RunReport;
use crate::runner;
use crate::runs::{FindError, Finder, Named};
use crate::session::{Asked, Request, Session};
use crate::supervise::{self, Interrupt, format_events};
use crate::task::{self, LogSelection, Task};
use crate::vocabulary::Mutation;
use error::CliError;
use progress::{LogStream, Progress};
use signals::Signals;
use stdout::outln;

/// What `kpo --version` says: kpo's version and the plugin contract it speaks.
const VERSION: &str = concat!(
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
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a task: build the pod, submit it, stream its logs, wait, report, clean up.
    ///
    /// Several task files or folders run as one batch: `kpo run nightly/ --parallel 20`.
    ///
    /// Exit code: 0 on success, the main container's exit code when it fails (1 when it failed
    /// without one), or one of kpo's own: 2 usage error, 65 rejected by the API server, 69
    /// cluster unreachable, 70 a bug in kpo, 74 invalid result, 75 run supervised by another
    /// kpo, 76 plugin failed, 77 refused by a plugin or policy, 78 invalid task file (or policy
    /// file, or a plugin config its plugin rejects), 80 a batch in which a task did not succeed,
    /// 99 skipped (by an interpreter), 124 timed out, 125 never started, 130 interrupted.
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
        /// The task file.
        task: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List the runs this machine's journal knows (newest last).
    List,
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
struct ClusterArgs {
    /// Use the built-in simulated cluster instead of a real one (nothing real is created);
    /// --kubeconfig and --context are then ignored.
    #[arg(long)]
    sim: bool,
    /// Kubeconfig file to use.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace to run in; overrides the task file and the context.
    #[arg(short, long, value_name = "NAME")]
    namespace: Option<String>,
    /// Requests per second kpo may start against the API server, on average (a client-side
    /// token bucket, as client-go's; 429 answers are honoured besides).
    #[arg(long, value_name = "N", default_value = "100")]
    qps: std::num::NonZeroU32,
    /// Requests kpo may start at once before --qps paces them.
    #[arg(long, value_name = "N", default_value = "500")]
    burst: std::num::NonZeroU32,
}

/// Policies imposed from outside the task file.
#[derive(Debug, Args, Default)]
struct PolicyArgs {
    /// Impose a policy the task file cannot remove or weaken: a policy file ([[policy]] entries,
    /// as in a task file), a component (.wasm, in enforce mode), or a folder of them. May be
    /// given several times; adds to the policies of /etc/kpo/policies.d and of
    /// ~/.config/kpo/policies.d ($KPO_CONFIG_DIR/policies.d).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The task file. Several files, or folders (their *.toml), run as one batch: one process,
    /// one watch per namespace, a live view, a summary, exit code 80 if any task did not succeed.
    #[arg(required = true, value_name = "TASK")]
    tasks: Vec<PathBuf>,
    /// In a batch: how many tasks may run at once (each has at most one pod alive); the rest
    /// wait their turn. A task waiting to retry gives its turn back for its backoff.
    #[arg(long, value_name = "N", default_value_t = crate::batch::DEFAULT_PARALLEL)]
    parallel: usize,
    /// In a batch: after the first task that does not succeed, start no new task (those
    /// running finish; the rest are reported as not started).
    #[arg(long)]
    fail_fast: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    policy: PolicyArgs,
    /// `text` for people; `json` prints the run report on stdout (logs move to stderr).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// What Ctrl-C or SIGTERM does: `terminate` deletes the pod and waits until it is gone (a
    /// second interrupt skips its grace period); `detach` leaves it running.
    #[arg(long, value_enum, default_value_t = SignalMode::Terminate)]
    on_signal: SignalMode,
    /// Once the main container has ended, kpo deletes the pod and exits while sidecars still
    /// stop within their grace period. With this flag it waits until the pod is gone. (After a
    /// timeout, an interrupt or a pod that never started, kpo always waits.)
    #[arg(long)]
    wait_for_deletion: bool,
    /// Also write every streamed log line, prefixed with its container, to this file.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// The run's id: with the id of a run whose kpo was killed, reattach to its pod (matched by
    /// UID) and continue its logs where they stopped; with the id of a finished run, report it.
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// With --run-id: run the task again even if that run finished or its pod is gone.
    #[arg(long, requires = "run_id")]
    rerun: bool,
    /// When another kpo supervises this run (it holds the run's claim), wait until it is done
    /// or its claim expires, then report or take the run over — instead of exiting 75.
    #[arg(long)]
    wait: bool,
    /// Write the task's result document (see [result] in the task file) to this file.
    #[arg(long, value_name = "FILE")]
    result_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RenderArgs {
    /// The task file.
    task: PathBuf,
    /// Ask the API server for a dry-run create and print what it would store.
    #[arg(long)]
    server: bool,
    /// Print what each mutator plugin changed (RFC 6902 JSON patches) instead of the pod.
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SignalMode {
    Terminate,
    Detach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

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

impl Command {
    /// Whether the command promised a JSON document on stdout: then even an error prints one.
    fn prints_json(&self) -> bool {
        match self {
            Command::Run(args) => args.output == Output::Json,
            Command::Attach { output, .. } => *output == Output::Json,
            _ => false,
        }
    }
}

/// Runs the command. `run` and `attach` act on signals themselves (a pod to stop); every other
/// command simply stops where it is and exits 130.
async fn dispatch(command: Command, signals: Signals) -> Result<i32, CliError> {
    match command {
        Command::Run(args) => run(args, &signals).await,
        Command::Attach {
            run_id,
            cluster,
            output,
        } => attach(run_id, cluster, output, &signals).await,
        Command::Render(args) => signals.unless_interrupted(render(args)).await?,
        Command::Validate { task, policy } => signals.unless_interrupted(validate(&task, &policy)).await?,
        Command::Plugin { command } => signals.unless_interrupted(plugin_cmd::run(command)).await?,
        Command::List => runs::list(),
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

/// Reads the task file at `path` and imposes on it the policies from outside it.
fn load_task(path: &Path, policy: &PolicyArgs) -> Result<Task, CliError> {
    let mut task = task::load(path)?;
    let machine = machine::this();
    task.impose(&machine.imposed(&policy.policies)?)?;
    task.allow(&machine.grant_rules()?)?;
    Ok(task)
}

async fn validate(path: &Path, policy: &PolicyArgs) -> Result<i32, CliError> {
    let task = load_task(path, policy)?;
    let plugins = load_task_plugins(&task).await?;
    let identity = RunIdentity::generate(&task.name);
    let prepared = runner::prepare(&task, &identity, "default", plugins.as_deref(), &[]).await?;
    outln!("{}: task {:?} is valid", path.display(), task.name);
    show_policies(&prepared);
    // Advice, not an error: most namespaces enforce no standard.
    let violations = crate::pss::restricted_violations(&prepared.pod);
    if !violations.is_empty() {
        eprintln!(
            "kpo: warning: a namespace enforcing the restricted Pod Security Standard would refuse this pod (labelled {}=restricted; Kubernetes 1.23+):",
            crate::pss::ENFORCE_LABEL
        );
        for v in violations {
            eprintln!("kpo:   {v}");
        }
    }
    match prepared.denial() {
        Some(e) => Err(e.into()),
        None => Ok(exit::SUCCESS),
    }
}

/// Which policies apply, where each comes from and what it says; and the plugins' warnings.
fn show_policies(prepared: &runner::Prepared) {
    for c in &prepared.policies {
        let answer = match &c.reason {
            Some(why) => format!("{}: {why}", c.admission.name()),
            None => c.admission.name().to_owned(),
        };
        eprintln!(
            "kpo: policy {} ({}, from {}): {answer}",
            c.policy,
            c.mode.name(),
            c.source
        );
    }
    for w in &prepared.warnings {
        eprintln!("kpo: warning from {}: {}", w.plugin, w.message);
    }
}

async fn render(args: RenderArgs) -> Result<i32, CliError> {
    let task = load_task(&args.task, &args.policy)?;
    let plugins = load_task_plugins(&task).await?;
    let identity = RunIdentity::generate(&task.name);
    let conn = match args.server {
        true => Some(connect(&args.cluster).await?),
        false => None,
    };
    let context_ns = conn.as_ref().map_or("default", |c| c.default_namespace.as_str());
    let ns = namespace_for(&args.cluster, &task, context_ns);
    let prepared = runner::prepare(&task, &identity, &ns, plugins.as_deref(), &[]).await?;
    show_policies(&prepared);
    if let Some(e) = prepared.denial() {
        return Err(e.into());
    }
    if args.diff {
        print_diff(&prepared.mutations);
        return Ok(exit::SUCCESS);
    }
    let pod = prepared.pod;
    let Some(conn) = conn else {
        return print_yaml(&pod);
    };
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), &ns);
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&dry_run, &pod).await {
        Ok(stored) => print_yaml(&stored),
        Err(kube::Error::Api(s)) => Err(CliError::Rejected(crate::said::said(s.message))),
        Err(source) => Err(CliError::Cluster {
            doing: "cannot ask the API server for a dry run".into(),
            source,
        }),
    }
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
    if all.iter().flatten().any(|p| !p.all_cached()) {
        eprintln!("kpo: compiled the task's plugins (kept in the cache: the next run starts faster)");
    }
    Ok(all)
}

/// [`load_plugins`] of one task.
async fn load_task_plugins(task: &Task) -> Result<Option<Arc<TaskPlugins>>, CliError> {
    Ok(load_plugins(std::slice::from_ref(task)).await?.pop().flatten())
}

/// Each mutator's RFC 6902 patch, one JSON document per plugin after a `# plugin` line.
fn print_diff(mutations: &[Mutation]) {
    if mutations.is_empty() {
        eprintln!("kpo: the task has no mutators; nothing changes the pod");
    }
    for m in mutations {
        outln!("# plugin {}: {} change(s)", m.plugin, m.patch.0.len());
        outln!("{}", serde_json::to_string_pretty(&m.patch).unwrap_or_default());
    }
}

fn print_yaml(pod: &Pod) -> Result<i32, CliError> {
    let yaml = serde_saphyr::to_string(pod)
        .map_err(|e| CliError::Internal(format!("cannot print the pod as YAML: {e}")))?;
    stdout::put(&yaml);
    Ok(exit::SUCCESS)
}

/// `kpo run`: check what was asked, then supervise it.
async fn run(args: RunArgs, signals: &Signals) -> Result<i32, CliError> {
    let asked = Asked {
        run_id: args.run_id.clone(),
        batch: args.tasks.len() != 1 || args.tasks[0].is_dir(),
        rerun: args.rerun,
        wait: args.wait,
    };
    let shown = Shown {
        output: args.output,
        on_signal: args.on_signal,
        options: crate::batch::Options {
            parallel: args.parallel,
            fail_fast: args.fail_fast,
        },
        log_file: args.log_file,
        result_file: args.result_file,
    };
    let rules = Rules {
        policy: args.policy,
        wait_for_deletion: args.wait_for_deletion,
    };
    supervise(&args.tasks, &rules, asked, &args.cluster, shown, signals).await
}

/// How a run is shown and where its results go.
struct Shown {
    output: Output,
    on_signal: SignalMode,
    options: crate::batch::Options,
    log_file: Option<PathBuf>,
    result_file: Option<PathBuf>,
}

/// What the command line adds to the task files.
#[derive(Default)]
struct Rules {
    policy: PolicyArgs,
    wait_for_deletion: bool,
}

/// Loads the tasks `paths` name, claims and plans their session, runs it shown as `shown` says,
/// and gives the claim back; the exit code.
async fn supervise(
    paths: &[PathBuf],
    rules: &Rules,
    asked: Asked,
    cluster: &ClusterArgs,
    shown: Shown,
    signals: &Signals,
) -> Result<i32, CliError> {
    if asked.batch && shown.result_file.is_some() {
        return Err(CliError::Usage(
            "--result-file takes the result of one task; a batch's results are in its JSON Lines (--output json)".into(),
        ));
    }
    if let Some(id) = &asked.run_id {
        check_run_id(id)?;
    }
    let machine = machine::this();
    let imposed = machine.imposed(&rules.policy.policies)?;
    let mut tasks = crate::batch::load_tasks(paths, &imposed, &machine.grant_rules()?)?;
    if tasks.is_empty() {
        let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Usage(format!(
            "no task files (*.toml) in {}",
            named.join(", ")
        )));
    }
    for task in &mut tasks {
        task.run.wait_for_deletion = rules.wait_for_deletion;
    }
    // Until the run is claimed nothing exists to clean up: an interrupt simply stops.
    let prelude = async {
        let log_file = create_log_file(shown.log_file.as_deref())?;
        let plugins = load_plugins(&tasks).await?;
        let conn = connect(cluster).await?;
        let request = Request {
            tasks: tasks.into_iter().zip(plugins).collect(),
            namespace: cluster.namespace.clone(),
            asked,
        };
        let session = Session::open(&conn, machine, request).await?;
        Ok::<_, CliError>((log_file, conn, session))
    };
    let (log_file, conn, mut session) = signals.unless_interrupted(prelude).await??;
    let interrupts = session.interrupts(signals.interrupts(shown.on_signal));
    let result = match session.is_batch() {
        true => batch::show(&mut session, shown, log_file, interrupts).await,
        false => one(&mut session, shown, log_file, interrupts).await,
    };
    // Before `conn` goes: with it goes the simulated cluster the claim lives in.
    session.release().await;
    drop(conn);
    result
}

/// The `--log-file`, created before anything runs, so that a path that cannot be written fails
/// the command at once.
fn create_log_file(path: Option<&Path>) -> Result<Option<std::fs::File>, CliError> {
    path.map(|path| {
        std::fs::File::create(path).map_err(|source| CliError::Write {
            doing: "create the log file",
            path: path.to_owned(),
            source,
        })
    })
    .transpose()
}

/// One run, planned: reported if it ended earlier, else followed with a spinner (or plain
/// lines) on stderr, its log on stdout, and its report delivered at the end.
async fn one(
    session: &mut Session,
    shown: Shown,
    log_file: Option<std::fs::File>,
    interrupts: impl futures::Stream<Item = Interrupt> + Unpin + Send + 'static,
) -> Result<i32, CliError> {
    for notice in session.plan().await? {
        eprintln!("kpo: {notice}");
    }
    let [planned] = session.planned() else {
        return Err(CliError::Internal("a run of one task planned as several".into()));
    };
    if let Some(note) = &planned.note {
        eprintln!("kpo: {note}");
    }
    if let Start::Finished(end) = &planned.start {
        return Ok(report_finished(session.id(), end, shown.output));
    }
    let progress = Arc::new(Progress::new(
        std::io::stderr().is_terminal(),
        match shown.output {
            Output::Json => LogStream::Stderr,
            Output::Text => LogStream::Stdout,
        },
        !matches!(planned.task.run.logs, LogSelection::Main | LogSelection::None),
        log_file,
    ));
    // The pod is named when it is submitted: a run a policy refuses has none.
    progress.say(&format!(
        "run {} of task {:?} in namespace {}",
        planned.identity.run_id, planned.task.name, planned.namespace
    ));
    if let Start::Reattach { pod, .. } = &planned.start {
        eprintln!(
            "kpo: reattaching to run {}: pod {}/{}",
            planned.identity.run_id,
            planned.namespace,
            pod.name_any()
        );
    }
    let observer: Arc<dyn supervise::Observer> = progress.clone();
    let finished = session
        .run(vec![observer], shown.options, interrupts, |_, _| {})
        .await;
    progress.finish();
    let report = match finished.ended.into_iter().next() {
        Some(Ended::Ran(report)) => report,
        Some(Ended::Failed(why)) => return Err((*why).into()),
        Some(Ended::Reported(end)) => return Ok(report_finished(session.id(), &end, shown.output)),
        Some(Ended::NotStarted(why)) => return Err(CliError::Internal(why)),
        None => return Err(CliError::Internal("a run ended without an end".into())),
    };
    deliver(&report, &shown, &progress);
    Ok(report.exit_code)
}

/// A run id is a label value: kpo finds the run's pods by it.
fn check_run_id(id: &str) -> Result<(), CliError> {
    if id.is_empty() {
        return Err(CliError::Usage("--run-id: must not be empty".into()));
    }
    crate::names::check_label_value(id).map_err(|e| CliError::Usage(format!("--run-id: {e}")))
}

/// A finished run asked for again: its report, not a new run.
fn report_finished(run_id: &str, end: &JournaledEnd, output: Output) -> i32 {
    let code = end.exit_code();
    eprintln!("kpo: run {run_id} already finished with exit code {code}; `--rerun` runs it again");
    if output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(end).unwrap_or_default());
    }
    code
}

/// Hands the finished run to its readers: the result file, the JSON report, the summary.
fn deliver(report: &RunReport, shown: &Shown, progress: &Progress) {
    if let (Some(path), Some(bytes)) = (&shown.result_file, &report.result_bytes)
        && let Err(e) = std::fs::write(path, bytes)
    {
        eprintln!("kpo: error: cannot write the result to {}: {e}", path.display());
    }
    if shown.output == Output::Json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => outln!("{text}"),
            Err(e) => eprintln!("kpo: error: cannot print the report: {e}"),
        }
    }
    summarize(progress, report);
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

/// `kpo attach ID`: `kpo run --run-id ID` with the run's own task file — or, for a batch, with
/// the task files of all its runs.
async fn attach(
    run_id: String,
    cluster: ClusterArgs,
    output: Output,
    signals: &Signals,
) -> Result<i32, CliError> {
    let store = machine::this().journals();
    let find = async {
        match crate::runs::journal(&store, &run_id) {
            Ok(journal) => Ok((vec![crate::runs::task_file(&journal)?], false)),
            Err(not_a_run) => {
                // No cluster to ask whether it is a batch: it is no run this machine knows.
                let Ok((conn, ns)) = connect_to_namespace(&cluster).await else {
                    return Err(not_a_run.into());
                };
                let members = finder(&conn, &store).batch(&ns, &run_id).await?;
                if members.is_empty() {
                    return Err(not_a_run.into());
                }
                let files = members
                    .iter()
                    .map(crate::runs::task_file)
                    .collect::<Result<_, _>>()?;
                Ok::<_, CliError>((files, true))
            }
        }
    };
    let (tasks, batch) = signals.unless_interrupted(find).await??;
    let asked = Asked {
        run_id: Some(run_id),
        batch,
        ..Default::default()
    };
    let shown = Shown {
        output,
        on_signal: SignalMode::Terminate,
        options: crate::batch::Options {
            parallel: crate::batch::DEFAULT_PARALLEL,
            fail_fast: false,
        },
        log_file: None,
        result_file: None,
    };
    supervise(&tasks, &Rules::default(), asked, &cluster, shown, signals).await
}

/// The closing lines on stderr: outcome, why, container results, and events on failure.
fn summarize(progress: &Progress, report: &RunReport) {
    let verdict = report.phrase();
    progress.say(&format!(
        "task {:?} {verdict}: {} (exit code {})",
        report.task, report.message, report.exit_code
    ));
    for (name, value) in &report.outputs {
        progress.say(&format!("  output {name} = {value}"));
    }
    if let Some(result) = &report.result {
        let text = result.to_string();
        let shown: String = text.chars().take(200).collect();
        let more = if shown.len() < text.len() {
            format!(" … ({} bytes)", text.len())
        } else {
            String::new()
        };
        progress.say(&format!("  result: {shown}{more}"));
    }
    if report.exit_code == exit::SUCCESS {
        return;
    }
    for c in &report.containers {
        let state = match (c.exit_code, c.reason.as_deref()) {
            (Some(code), reason) => format!("{}, exit code {code}", reason.unwrap_or("Terminated")),
            (None, Some(reason)) => format!("{reason}, not finished"),
            (None, None) if c.started_at.is_some() => "running".to_owned(),
            (None, None) => "never started".to_owned(),
        };
        progress.say(&format!("  container {} ({}): {state}", c.name, c.role.name()));
        if let Some(m) = c.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            for line in m.lines() {
                progress.say(&format!("    | {line}"));
            }
        }
    }
    if !report.events.is_empty() {
        progress.say("  events:");
        for line in format_events(&report.events) {
            progress.say(&format!("    {line}"));
        }
    }
}
