//! `kpo run A.toml B.toml DIR/` shown: a batch's plan told, what happens shown as a live view
//! (or plain prefixed lines), and at the end a summary table or JSON Lines.

use super::stdout::outln;
use std::io::IsTerminal;
use std::sync::Arc;

use super::args::{Output, Shown};
use super::error::CliError;
use super::view::BatchView;
use crate::batch::{Ended, Summary};
use crate::journal::JournaledEnd;
use crate::report::RunReport;
use crate::session::Session;
use crate::supervise::{Interrupt, Observer};
use crate::task::LogSelection;

/// Plans and runs the batch of `session`, shown as `shown` says; its exit code.
pub async fn show(
    session: &mut Session,
    shown: Shown,
    log_file: Option<std::fs::File>,
    interrupts: impl futures::Stream<Item = Interrupt> + Unpin + Send + 'static,
) -> Result<i32, CliError> {
    let notices = session.plan().await?;
    let planned = session.planned();
    let names: Vec<String> = planned.iter().map(|p| p.task.name.clone()).collect();
    let several_containers: Vec<bool> = planned
        .iter()
        .map(|p| !matches!(p.task.run.logs, LogSelection::Main | LogSelection::None))
        .collect();
    let json = shown.output == Output::Json;
    let view = Arc::new(BatchView::new(
        std::io::stderr().is_terminal(),
        json,
        &names,
        several_containers,
        log_file,
    ));
    let batch_id = session.id().to_owned();
    view.say(&format!(
        "batch {batch_id}: {} task(s), at most {} at once{}",
        names.len(),
        shown.options.parallel,
        if shown.options.fail_fast {
            ", --fail-fast"
        } else {
            ""
        }
    ));
    for notice in notices {
        view.say(&notice);
    }
    for p in planned {
        if let Some(note) = &p.note {
            view.say(&format!("[{}] {note}", p.task.name));
        }
    }
    let observers: Vec<Arc<dyn Observer>> = (0..names.len()).map(|i| view.observer(i)).collect();
    let seen = view.clone();
    let ended = move |index: usize, end: &Ended| {
        seen.ended(index, end);
        if json {
            outln!("{}", run_line(&seen.name(index), end));
        }
    };
    let finished = session.run(observers, shown.options, interrupts, ended).await;
    view.finish();
    let summary = Summary::new(&batch_id, &names, &finished.ended, finished.interrupted);
    if let Some(path) = &shown.timeline {
        let reports: Vec<RunReport> = finished
            .ended
            .iter()
            .filter_map(|end| match end {
                Ended::Ran(report) => Some((**report).clone()),
                Ended::Reported(JournaledEnd::Report(report)) => Some((**report).clone()),
                _ => None,
            })
            .collect();
        super::runs::write_timeline(path, &format!("batch {batch_id}"), &reports)?;
    }
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
        Ended::Failed(why) => serde_json::to_string(&RunLine {
            kind: "run",
            report: &serde_json::json!({
                "task": task, "outcome": "error", "exit_code": why.exit_code(), "message": why.message(),
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
