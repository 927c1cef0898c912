//! `kpo run A.toml B.toml DIR/`: a batch on the command line — its tasks loaded and claimed
//! as one, each run journalled, what happens shown as a live view (or plain prefixed lines),
//! and at the end a summary table or JSON Lines.

use super::stdout::outln;
use std::io::IsTerminal;
use std::sync::Arc;

use super::error::CliError;
use super::signals::Signals;
use super::view::BatchView;
use super::{
    Output, RunArgs, check_run_id, connect, create_log_file, load_plugins, namespace_for, with_claim,
};
use crate::batch::{self, Ended, Member, Options, Start, Summary};
use crate::claim;
use crate::journal::{Journal, Recording};
use crate::pod::RunIdentity;
use crate::task::{LogSelection, Task};

/// Runs the batch the command line names; its exit code.
pub async fn run(args: RunArgs, signals: &Signals) -> Result<i32, CliError> {
    if args.result_file.is_some() {
        return Err(CliError::Usage(
            "--result-file takes the result of one task; a batch's results are in its JSON Lines (--output json)".into(),
        ));
    }
    if let Some(id) = &args.run_id {
        check_run_id(id)?;
    }
    let machine = super::machine::this();
    let imposed = machine.imposed(&args.policy.policies)?;
    let mut tasks = batch::load_tasks(&args.tasks, &imposed, &machine.grant_rules()?)?;
    for task in &mut tasks {
        task.run.wait_for_deletion = args.wait_for_deletion;
    }
    if tasks.is_empty() {
        let named: Vec<String> = args.tasks.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Usage(format!(
            "no task files (*.toml) in {}",
            named.join(", ")
        )));
    }
    // Until the batch is claimed nothing exists to clean up: an interrupt simply stops.
    let prelude = async {
        let plugins = load_plugins(&tasks).await?;
        let log_file = create_log_file(&args)?;
        let conn = connect(&args.cluster).await?;
        let home = args
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| conn.default_namespace.clone());
        let batch_id = args
            .run_id
            .clone()
            .unwrap_or_else(|| RunIdentity::generate("batch").run_id);
        // One supervisor per batch: the claim is the batch's, in the namespace it was started
        // from.
        let claim = claim::take(&conn.client, &home, &batch_id, args.wait, None, &machine.hostname)
            .await
            .map_err(Box::new)?;
        Ok::<_, CliError>((plugins, log_file, conn, batch_id, home, claim))
    };
    let (plugins, log_file, conn, batch_id, home, claim) = signals.unless_interrupted(prelude).await??;
    let interrupts = with_claim(signals.interrupts(args.on_signal), claim.lost());
    let placed: Vec<(Task, String)> = tasks
        .into_iter()
        .map(|t| {
            let ns = namespace_for(&args.cluster, &t, &conn.default_namespace);
            (t, ns)
        })
        .collect();
    let store = machine.journals();
    let plans = match &args.run_id {
        Some(_) => batch::plan_members(&conn.client, &conn.server, &store, &batch_id, &placed, args.rerun)
            .await
            .map_err(CliError::NotReattached)?,
        None => placed.iter().map(|_| (Start::New, None, None)).collect(),
    };
    let names: Vec<String> = placed.iter().map(|(t, _)| t.name.clone()).collect();
    let several_containers: Vec<bool> = placed
        .iter()
        .map(|(t, _)| !matches!(t.run.logs, LogSelection::Main | LogSelection::None))
        .collect();
    let view = Arc::new(BatchView::new(
        std::io::stderr().is_terminal(),
        args.output == Output::Json,
        &names,
        several_containers,
        log_file,
    ));
    view.say(&format!(
        "batch {batch_id}: {} task(s), at most {} at once{}",
        names.len(),
        args.parallel,
        if args.fail_fast { ", --fail-fast" } else { "" }
    ));
    let mut recordings = Vec::with_capacity(placed.len());
    let mut members = Vec::with_capacity(placed.len());
    for (index, (((task, ns), (start, journal, note)), plugins)) in
        placed.into_iter().zip(plans).zip(plugins).enumerate()
    {
        if let Some(note) = note {
            view.say(&format!("[{}] {note}", task.name));
        }
        let mut identity = RunIdentity::generate(&task.name);
        identity.run_id = batch::task_run_id(&batch_id, &task.name);
        identity.batch = Some(batch_id.clone());
        identity.batch_namespace = Some(home.clone());
        let journal = journal.unwrap_or_else(|| Journal {
            run_id: identity.run_id.clone(),
            batch: Some(batch_id.clone()),
            task: task.name.clone(),
            task_file: std::fs::canonicalize(&task.source).ok(),
            cluster: Some(conn.server.clone()),
            namespace: ns.clone(),
            ..Default::default()
        });
        let recording = Arc::new(Recording::new(view.observer(index), store.clone(), journal));
        recordings.push(recording.clone());
        members.push(Member {
            task,
            plugins,
            namespace: ns,
            identity,
            start,
            observer: recording,
        });
    }
    let options = Options {
        parallel: args.parallel,
        fail_fast: args.fail_fast,
    };
    let json = args.output == Output::Json;
    let seen = view.clone();
    let ended = move |index: usize, end: &Ended| {
        if let Ended::Ran(report) = end {
            recordings[index].finish(report);
        }
        seen.ended(index, end);
        if json {
            outln!("{}", run_line(&seen.name(index), end));
        }
    };
    let finished = batch::run(
        conn.client.clone(),
        claim.warrant(),
        &batch_id,
        members,
        options,
        ended,
        Box::pin(interrupts),
    )
    .await;
    view.finish();
    claim.release().await;
    let summary = Summary::new(&batch_id, &names, &finished.ended, finished.interrupted);
    if json {
        outln!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        view.table(&summary);
    }
    Ok(summary.exit_code)
}

/// One line of the JSON Lines output for a task that ended: its run report, marked as such.
fn run_line(task: &str, end: &Ended) -> String {
    /// `kind` first, then the report's own fields.
    #[derive(serde::Serialize)]
    struct RunLine<'a, T: serde::Serialize> {
        kind: &'static str,
        #[serde(flatten)]
        report: &'a T,
    }
    let text = match end {
        Ended::Ran(report) => serde_json::to_string(&RunLine {
            kind: "run",
            report: report.as_ref(),
        }),
        Ended::Reported(report) => serde_json::to_string(&RunLine { kind: "run", report }),
        Ended::Error { message, exit_code } => serde_json::to_string(&RunLine {
            kind: "run",
            report: &serde_json::json!({
                "task": task, "outcome": "error", "exit_code": exit_code, "message": message,
            }),
        }),
        Ended::NotStarted(why) => serde_json::to_string(&RunLine {
            kind: "run",
            report: &serde_json::json!({
                "task": task, "outcome": "not_started", "exit_code": null, "message": why,
            }),
        }),
    };
    text.unwrap_or_default()
}
