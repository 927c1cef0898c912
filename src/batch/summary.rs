//! What a batch comes to: one line per task, counts by outcome, and the batch's exit code.

use serde::Serialize;

use super::Ended;
use crate::exit;

/// One task's line in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub task: String,
    /// The run's outcome (`succeeded`, `failed`, …), `error` when it could not run, or
    /// `not_started`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    /// From the first attempt's start to the end, in seconds (unknown for a task reported from
    /// an earlier life of the batch).
    pub seconds: Option<f64>,
    pub attempts: u32,
    pub pod: Option<String>,
    pub message: String,
}

/// How many tasks ended how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub succeeded: usize,
    pub skipped: usize,
    pub failed: usize,
    pub not_started: usize,
}

/// The batch's closing document: `kind = "batch"` in the JSON Lines output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub kind: &'static str,
    pub batch_id: String,
    pub exit_code: i32,
    pub counts: Counts,
    pub tasks: Vec<Line>,
}

impl Summary {
    /// Sums up the tasks `names` of batch `batch_id`, which ended as `ended` says.
    pub fn new(batch_id: &str, names: &[String], ended: &[Ended], interrupted: bool) -> Self {
        let tasks: Vec<Line> = names.iter().zip(ended).map(|(n, e)| line(n, e)).collect();
        let mut counts = Counts::default();
        for (line, end) in tasks.iter().zip(ended) {
            match line.exit_code {
                _ if matches!(end, Ended::NotStarted(_)) => counts.not_started += 1,
                Some(exit::SUCCESS) => counts.succeeded += 1,
                Some(exit::SKIPPED) => counts.skipped += 1,
                _ => counts.failed += 1,
            }
        }
        let exit_code = if interrupted {
            exit::INTERRUPTED
        } else if ended.iter().all(Ended::ok) {
            exit::SUCCESS
        } else {
            exit::BATCH_FAILED
        };
        Self {
            kind: "batch",
            batch_id: batch_id.to_owned(),
            exit_code,
            counts,
            tasks,
        }
    }
}

fn line(task: &str, end: &Ended) -> Line {
    let base = Line {
        task: task.to_owned(),
        outcome: String::new(),
        exit_code: None,
        seconds: None,
        attempts: 0,
        pod: None,
        message: String::new(),
    };
    match end {
        Ended::Ran(r) => Line {
            outcome: r.outcome.name().to_owned(),
            exit_code: Some(r.exit_code),
            seconds: Some(r.finished_at.duration_since(r.started_at).as_secs_f64()),
            attempts: r.attempt,
            pod: Some(r.pod.clone()),
            message: r.message.clone(),
            ..base
        },
        Ended::Reported(end) => Line {
            outcome: end.outcome().to_owned(),
            exit_code: Some(end.exit_code()),
            seconds: None,
            attempts: end.attempt(),
            pod: Some(end.pod().to_owned()),
            message: end.message().to_owned(),
            ..base
        },
        Ended::Failed(why) => Line {
            outcome: "error".into(),
            exit_code: Some(why.exit_code()),
            message: why.message(),
            ..base
        },
        Ended::NotStarted(why) => Line {
            outcome: "not_started".into(),
            message: why.clone(),
            ..base
        },
    }
}
