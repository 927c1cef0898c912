//! `kpo run` and `kpo attach`: what was asked turned into a session, one run shown with a
//! spinner (or plain lines) and its report, a batch handed to its view.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use kube::ResourceExt;

use super::args::{ClusterArgs, Output, PolicyArgs, RunArgs, Shown};
use super::error::CliError;
use super::progress::{LogStream, Progress};
use super::signals::{SignalMode, Signals};
use super::stdout::outln;
use super::{batch, connect, connect_to_namespace, finder, load_plugins, machine};
use crate::batch::TaskSource;
use crate::batch::{Ended, Start};
use crate::exit;
use crate::journal::JournaledEnd;
use crate::reattach::Rerun;
use crate::report::RunReport;
use crate::session::{Asked, Request, Session};
use crate::supervise::{self, Interrupt, format_events};
use crate::task::LogSelection;

/// `kpo run`: check what was asked, then supervise it.
pub(super) async fn run(args: RunArgs, signals: &Signals) -> Result<i32, CliError> {
    let asked = Asked {
        run_id: args.run_id.clone(),
        batch: args.tasks.len() != 1 || args.tasks[0].is_dir(),
        rerun: match (args.rerun, args.rerun_finished) {
            (true, _) => Rerun::Always,
            (_, true) => Rerun::Finished,
            _ => Rerun::No,
        },
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
        record_outcome: args.record_outcome,
        timeline: args.timeline,
    };
    let rules = Rules {
        policy: args.policy,
        wait_for_deletion: args.wait_for_deletion,
    };
    let given = args.params.given()?;
    let sources: Vec<TaskSource> = args
        .tasks
        .iter()
        .map(|path| TaskSource {
            path: path.clone(),
            given: given.clone(),
            only: None,
        })
        .collect();
    supervise(&sources, &rules, asked, &args.cluster, shown, signals).await
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
    sources: &[TaskSource],
    rules: &Rules,
    mut asked: Asked,
    cluster: &ClusterArgs,
    shown: Shown,
    signals: &Signals,
) -> Result<i32, CliError> {
    let machine = machine::this();
    let imposed = machine.imposed(&rules.policy.policies)?;
    let mut tasks = crate::batch::load_tasks(sources, &imposed, &machine.grant_rules()?)?;
    // A matrix file is a batch, however many members it has — unless one member is asked for.
    asked.batch |= sources.iter().all(|s| s.only.is_none()) && tasks.iter().any(|t| t.matrix);
    if asked.batch && shown.result_file.is_some() {
        return Err(CliError::Usage(
            "--result-file takes the result of one task; a batch's results are in its JSON Lines (--output json)".into(),
        ));
    }
    if asked.batch && shown.record_outcome.is_some() {
        return Err(CliError::Usage(
            "--record-outcome records the outcome of one task".into(),
        ));
    }
    if let Some(id) = &asked.run_id {
        check_run_id(id)?;
    }
    if tasks.is_empty() {
        let named: Vec<String> = sources.iter().map(|s| s.path.display().to_string()).collect();
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
    if let Some(path) = &shown.timeline {
        let title = format!("run {}: task {}", report.run_id, report.task);
        super::runs::write_timeline(path, &title, std::slice::from_ref(&report))?;
    }
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
    if let Some(path) = &shown.record_outcome {
        let outcome = crate::plugin::recorded::outcome_document(&crate::plugin::outcome_of(report));
        let text = format!("{}\n", serde_json::to_string_pretty(&outcome).unwrap_or_default());
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("kpo: error: cannot write the outcome to {}: {e}", path.display());
        }
    }
    if shown.output == Output::Json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => outln!("{text}"),
            Err(e) => eprintln!("kpo: error: cannot print the report: {e}"),
        }
    }
    summarize(progress, report);
}

/// `kpo attach ID`: `kpo run --run-id ID` with the run's own task file — or, for a batch, with
/// the task files of all its runs.
pub(super) async fn attach(
    run_id: String,
    cluster: ClusterArgs,
    output: Output,
    signals: &Signals,
) -> Result<i32, CliError> {
    let store = machine::this().journals();
    let find = async {
        match crate::runs::journal(&store, &run_id) {
            Ok(journal) => Ok((vec![source_of(&journal)?], false)),
            Err(not_a_run) => {
                // No cluster to ask whether it is a batch: it is no run this machine knows.
                let Ok((conn, ns)) = connect_to_namespace(&cluster).await else {
                    return Err(not_a_run.into());
                };
                let members = finder(&conn, &store).batch(&ns, &run_id).await?;
                if members.is_empty() {
                    return Err(not_a_run.into());
                }
                // A matrix file is the task file of all its members: read once.
                let mut sources: Vec<TaskSource> = Vec::new();
                for member in &members {
                    // The whole file: every member of a matrix is the batch's.
                    let source = TaskSource {
                        only: None,
                        ..source_of(member)?
                    };
                    if !sources.iter().any(|s| s.path == source.path) {
                        sources.push(source);
                    }
                }
                Ok::<_, CliError>((sources, true))
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
        record_outcome: None,
        timeline: None,
    };
    supervise(&tasks, &Rules::default(), asked, &cluster, shown, signals).await
}

/// A run's task file and the parameter values it ran with, as its journal recorded them.
fn source_of(journal: &crate::journal::Journal) -> Result<TaskSource, CliError> {
    Ok(TaskSource {
        path: crate::runs::task_file(journal)?,
        given: crate::task::Given::recorded(&journal.params),
        // A run of a batch is its own task, even when its file is a whole matrix.
        only: journal.batch.as_ref().map(|_| journal.task.clone()),
    })
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
