//! The `kpo` command line: a thin layer that parses arguments, loads the task, connects, calls
//! the library and turns the result into output and an exit code.

mod plugin_cmd;
mod progress;
mod runs;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

use crate::connect::{self, Connection, Target};
use crate::exit;
use crate::journal::{Journal, JournalStore, Recording};
use crate::plugin::{self, TaskPlugins};
use crate::pod::{self, RunIdentity};
use crate::report::RunReport;
use crate::runner;
use crate::supervise;
use crate::supervise::format_events;
use crate::task::{self, LogSelection, Task};
use crate::vocabulary::Mutation;
use progress::{LogStream, Progress};

/// Run a task as a supervised Kubernetes pod.
///
/// A task file (TOML) says what to run: image, command, environment, resources, volumes, and how
/// to supervise it. kpo builds the pod, submits it, follows it with a watch, streams its logs,
/// explains failures with the pod's events, cleans up, and exits with the task's exit code.
///
/// Try it without a cluster: kpo run --sim examples/hello.toml
#[derive(Debug, Parser)]
#[command(name = "kpo", version, max_term_width = 100)]
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
    /// Exit code: 0 on success, the main container's exit code when it fails, or one of kpo's
    /// own: 65 rejected by the API server, 69 cluster unreachable, 74 invalid result,
    /// 76 plugin failed, 77 refused by a plugin, 78 invalid task file, 99 skipped (by an
    /// interpreter), 124 timed out, 125 never started, 130 interrupted.
    Run(RunArgs),
    /// Print the pod a task would submit, as YAML, without running it.
    ///
    /// Without --server nothing is contacted. With --server the API server validates the pod
    /// and applies its defaults in a dry run (dryRun=All): nothing is created.
    Render(RenderArgs),
    /// Check a task file and the pod template it names; print every problem with its line.
    Validate {
        /// The task file.
        task: PathBuf,
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
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The task file.
    task: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// `text` for people; `json` prints the run report on stdout (logs move to stderr).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// What Ctrl-C or SIGTERM does: `terminate` deletes the pod and waits until it is gone (a
    /// second interrupt skips its grace period); `detach` leaves it running.
    #[arg(long, value_enum, default_value_t = SignalMode::Terminate)]
    on_signal: SignalMode,
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

/// Entry point of the `kpo` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return fail(exit::INTERNAL, &format!("cannot start the async runtime: {e}"));
        }
    };
    // A panic is a bug in kpo: the supervisor has already cleaned up; exit with kpo's own code.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            match cli.command {
                Command::Run(args) => run(args).await,
                Command::Render(args) => render(args).await,
                Command::Validate { task } => validate(&task),
                Command::Plugin { command } => tokio::task::block_in_place(|| plugin_cmd::run(command)),
                Command::List => runs::list(),
                Command::Attach {
                    run_id,
                    cluster,
                    output,
                } => attach(run_id, cluster, output).await,
                Command::Logs {
                    run_id,
                    follow,
                    cluster,
                } => match (runs::journal(&run_id), connect(&cluster).await) {
                    (Ok(j), Ok(conn)) => runs::logs(&conn.client, &j, follow).await,
                    (Err(code), _) | (_, Err(code)) => code,
                },
                Command::Delete { run_id, cluster } => {
                    match (runs::journal(&run_id), connect(&cluster).await) {
                        (Ok(j), Ok(conn)) => runs::delete(&conn.client, &j).await,
                        (Err(code), _) | (_, Err(code)) => code,
                    }
                }
                Command::Gc { cluster, dry_run } => match connect(&cluster).await {
                    Ok(conn) => {
                        let ns = cluster
                            .namespace
                            .clone()
                            .unwrap_or_else(|| conn.default_namespace.clone());
                        runs::gc(&conn.client, &ns, dry_run).await
                    }
                    Err(code) => code,
                },
            }
        })
    }))
    .unwrap_or_else(|_| {
        eprintln!("kpo: error: internal error (a bug in kpo; please report it)");
        exit::INTERNAL
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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

fn fail(code: i32, message: &str) -> ExitCode {
    eprintln!("kpo: error: {message}");
    ExitCode::from(code as u8)
}

/// Prints an error with its chain of causes, the way a person wants to read it.
fn report_error(err: &dyn std::error::Error) {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    eprintln!("kpo: error: {text}");
}

fn load(path: &Path) -> Result<Task, i32> {
    task::load(path).map_err(|e| {
        report_error(&e);
        exit::CONFIG
    })
}

async fn connect(args: &ClusterArgs) -> Result<Connection, i32> {
    let target = Target {
        sim: args.sim,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let conn = connect::connect(&target).await.map_err(|e| {
        report_error(&e);
        exit::CLUSTER_UNAVAILABLE
    })?;
    if conn.sim.is_some() {
        eprintln!(
            "kpo: using the built-in SIMULATED cluster at {} — no real pod is created",
            conn.server
        );
    }
    Ok(conn)
}

fn namespace_for(args: &ClusterArgs, task: &Task, context_default: &str) -> String {
    args.namespace
        .clone()
        .or_else(|| task.namespace.clone())
        .unwrap_or_else(|| context_default.to_owned())
}

fn validate(path: &Path) -> i32 {
    match load(path) {
        Ok(task) => {
            println!("{}: task {:?} is valid", path.display(), task.name);
            // Advice, not an error: most namespaces enforce no standard.
            let pod = crate::pod::build(&task, &RunIdentity::generate(&task.name), "default");
            let violations = crate::pss::restricted_violations(&pod);
            if !violations.is_empty() {
                eprintln!(
                    "kpo: warning: a namespace enforcing the restricted Pod Security Standard would refuse this pod (labelled {}=restricted; Kubernetes 1.23+):",
                    crate::pss::ENFORCE_LABEL
                );
                for v in violations {
                    eprintln!("kpo:   {v}");
                }
            }
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

async fn render(args: RenderArgs) -> i32 {
    let task = match load(&args.task) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let plugins = match load_plugins(&task) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let identity = RunIdentity::generate(&task.name);
    let conn = if args.server {
        match connect(&args.cluster).await {
            Ok(c) => Some(c),
            Err(code) => return code,
        }
    } else {
        None
    };
    let context_ns = conn.as_ref().map_or("default", |c| c.default_namespace.as_str());
    let ns = namespace_for(&args.cluster, &task, context_ns);
    let (pod, mutations) = match build_pod(&task, &identity, &ns, plugins.as_ref()) {
        Ok(built) => built,
        Err(code) => return code,
    };
    if args.diff {
        return print_diff(&mutations);
    }
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
        Err(kube::Error::Api(s)) => {
            eprintln!("kpo: error: the API server rejected the pod: {}", s.message);
            exit::REJECTED
        }
        Err(e) => {
            report_error(&e);
            exit::CLUSTER_UNAVAILABLE
        }
    }
}

/// Loads the task's plugins before anything else happens; errors name the plugin.
fn load_plugins(task: &Task) -> Result<Option<TaskPlugins>, i32> {
    let plugins = tokio::task::block_in_place(|| TaskPlugins::load(task)).map_err(|e| {
        report_error(&e);
        e.exit_code()
    })?;
    if plugins.as_ref().is_some_and(|p| !p.all_cached()) {
        eprintln!("kpo: compiled the task's plugins (kept in the cache: the next run starts faster)");
    }
    Ok(plugins)
}

/// Builds the pod and runs the mutators on it: what `run` submits and `render` prints.
fn build_pod(
    task: &Task,
    identity: &RunIdentity,
    ns: &str,
    plugins: Option<&TaskPlugins>,
) -> Result<(Pod, Vec<Mutation>), i32> {
    let pod = pod::build(task, identity, ns);
    let Some(plugins) = plugins else {
        return Ok((pod, Vec::new()));
    };
    let ctx = plugin::context(&task.name, ns, &identity.run_id);
    tokio::task::block_in_place(|| plugins.mutate(pod, &ctx)).map_err(|e| {
        report_error(&e);
        e.exit_code()
    })
}

/// Each mutator's RFC 6902 patch, one JSON document per plugin after a `# plugin` line.
fn print_diff(mutations: &[Mutation]) -> i32 {
    if mutations.is_empty() {
        eprintln!("kpo: the task has no mutators; nothing changes the pod");
    }
    for m in mutations {
        println!("# plugin {}: {} change(s)", m.plugin, m.patch.0.len());
        println!("{}", serde_json::to_string_pretty(&m.patch).unwrap_or_default());
    }
    exit::SUCCESS
}

fn print_yaml(pod: &Pod) -> i32 {
    match serde_saphyr::to_string(pod) {
        Ok(yaml) => {
            print!("{yaml}");
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("kpo: error: cannot print the pod as YAML: {e}");
            exit::INTERNAL
        }
    }
}

async fn run(args: RunArgs) -> i32 {
    let mut task = match load(&args.task) {
        Ok(t) => t,
        Err(code) => return code,
    };
    task.run.on_signal = match args.on_signal {
        SignalMode::Terminate => crate::task::OnSignal::Terminate,
        SignalMode::Detach => crate::task::OnSignal::Detach,
    };
    let log_file = match &args.log_file {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("kpo: error: cannot create log file {}: {e}", path.display());
                return exit::CONFIG;
            }
        },
        None => None,
    };
    let plugins = match load_plugins(&task) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let conn = match connect(&args.cluster).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ns = namespace_for(&args.cluster, &task, &conn.default_namespace);
    let mut identity = RunIdentity::generate(&task.name);
    let store = JournalStore::open_default();
    if let Some(id) = &args.run_id
        && let Err(e) = crate::names::check_label_value(id).and_then(|()| {
            if id.is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(())
            }
        })
    {
        eprintln!("kpo: error: --run-id: {e}");
        return exit::USAGE;
    }
    let earlier = match &args.run_id {
        Some(id) => {
            identity.run_id = id.clone();
            store.load(id).unwrap_or_else(|e| {
                eprintln!("kpo: warning: cannot read the journal of run {id}: {e}");
                None
            })
        }
        None => None,
    };
    if let Some(journal) = earlier.as_ref().filter(|_| !args.rerun)
        && let Some(code) = journal.exit_code
    {
        eprintln!(
            "kpo: run {} already finished with exit code {code}; `--rerun` runs it again",
            journal.run_id
        );
        if args.output == Output::Json
            && let Some(report) = &journal.report
        {
            println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
        }
        return code;
    }
    let json = args.output == Output::Json;
    let logs_to = if json {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let prefix = !matches!(task.run.logs, LogSelection::Main | LogSelection::None);
    let progress = Arc::new(Progress::new(
        std::io::stderr().is_terminal(),
        logs_to,
        prefix,
        log_file,
    ));
    progress.say(&format!(
        "run {} of task {:?}: pod {ns}/{}",
        identity.run_id, task.name, identity.pod_name
    ));
    let client = conn.client.clone();
    let reattach = earlier.filter(|j| !args.rerun && j.uid.is_some());
    let journal = reattach.clone().unwrap_or_else(|| Journal {
        run_id: identity.run_id.clone(),
        task: task.name.clone(),
        task_file: std::fs::canonicalize(&args.task).ok(),
        namespace: ns.clone(),
        ..Default::default()
    });
    let recording = Arc::new(Recording::new(progress.clone(), store, journal));
    let result = match reattach {
        Some(journal) => match reattach_pod(&client, &journal).await {
            Ok(pod) => {
                let report = supervise::attach(
                    client,
                    pod,
                    &task.run,
                    recording.clone(),
                    interrupts(),
                    journal.cursors,
                )
                .await;
                Ok(report)
            }
            Err(message) => {
                progress.finish();
                eprintln!("kpo: error: {message}; `--rerun` starts the run again");
                return exit::FAILED;
            }
        },
        None => {
            runner::run_task(
                client,
                &task,
                plugins.as_ref(),
                identity,
                &ns,
                recording.clone(),
                interrupts(),
            )
            .await
        }
    };
    progress.finish();
    if let Ok(report) = &result {
        recording.finish(report);
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            report_error(&e);
            return match &e {
                runner::RunTaskError::Plugin(p) => p.exit_code(),
                runner::RunTaskError::Cluster(_) => exit::CLUSTER_UNAVAILABLE,
            };
        }
    };
    if let (Some(path), Some(bytes)) = (&args.result_file, &report.result_bytes)
        && let Err(e) = std::fs::write(path, bytes)
    {
        eprintln!("kpo: error: cannot write the result to {}: {e}", path.display());
    }
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("kpo: error: cannot print the report: {e}"),
        }
    }
    summarize(&progress, &report);
    report.exit_code
}

/// `kpo attach RUN_ID`: `kpo run --run-id RUN_ID` with the run's own task file.
async fn attach(run_id: String, cluster: ClusterArgs, output: Output) -> i32 {
    let task = match runs::journal(&run_id).and_then(|j| runs::task_file(&j)) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let args = RunArgs {
        task,
        cluster,
        output,
        on_signal: SignalMode::Terminate,
        run_id: Some(run_id),
        rerun: false,
        log_file: None,
        result_file: None,
    };
    Box::pin(run(args)).await
}

/// Finds the pod of an interrupted run again — by UID, never by name alone.
async fn reattach_pod(client: &kube::Client, journal: &Journal) -> Result<Pod, String> {
    let name = journal.pod.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &journal.namespace);
    match api.get_opt(&name).await {
        Ok(Some(pod)) if pod.metadata.uid == journal.uid => {
            eprintln!(
                "kpo: reattaching to run {}: pod {}/{name}",
                journal.run_id, journal.namespace
            );
            Ok(pod)
        }
        Ok(Some(_)) => Err(format!(
            "pod {}/{name} is not the pod of run {} (its UID differs): not attaching to it",
            journal.namespace, journal.run_id
        )),
        Ok(None) => Err(format!(
            "the pod of run {} ({}/{name}) is gone",
            journal.run_id, journal.namespace
        )),
        Err(e) => Err(format!("cannot look for the pod of run {}: {e}", journal.run_id)),
    }
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

/// One item per Ctrl-C or SIGTERM: the first interrupts the run, a second skips the pod's grace
/// period.
fn interrupts() -> std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send>> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(not(unix))]
    let term: Option<()> = None;
    Box::pin(futures::stream::unfold(term, |mut term| async move {
        #[cfg(unix)]
        match term.as_mut() {
            Some(t) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = t.recv() => {}
                }
            }
            None => drop(tokio::signal::ctrl_c().await),
        }
        #[cfg(not(unix))]
        drop(tokio::signal::ctrl_c().await);
        Some(((), term))
    }))
}
