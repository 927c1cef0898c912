//! What a person sees of a batch: on a terminal, a live view — how many tasks wait, are pending,
//! run, succeeded, failed or wait to retry, and the latest phase changes — above which the logs
//! scroll, each line prefixed by its task; piped, the same as plain prefixed lines. At the end,
//! a summary table.

use crate::said::shown;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use indicatif::ProgressBar;

use super::progress::{Prefixer, spinner};
use crate::batch::{Ended, Summary};
use crate::report::TimelineEntry;
use crate::supervise::Observer;

/// How many phase changes the live view shows.
const RECENT: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Pending,
    Running,
    Retrying,
    Succeeded,
    Failed,
}

/// The terminal side of a batch.
pub struct BatchView {
    bar: Option<ProgressBar>,
    started: Instant,
    /// Logs go to stderr when stdout carries JSON Lines.
    logs_to_stderr: bool,
    names: Vec<String>,
    /// Per task: whether several of its containers are followed (lines say which).
    several: Vec<bool>,
    state: Mutex<Seen>,
    out: Mutex<Prefixer>,
    log_file: Option<(Mutex<std::fs::File>, Mutex<Prefixer>)>,
}

struct Seen {
    states: Vec<State>,
    recent: VecDeque<String>,
}

impl BatchView {
    pub fn new(
        interactive: bool,
        logs_to_stderr: bool,
        names: &[String],
        several: Vec<bool>,
        log_file: Option<std::fs::File>,
    ) -> Self {
        let bar = interactive.then(|| spinner("{spinner} [{elapsed}] {msg}"));
        let view = Self {
            bar,
            started: Instant::now(),
            logs_to_stderr,
            names: names.to_vec(),
            several,
            state: Mutex::new(Seen {
                states: vec![State::Waiting; names.len()],
                recent: VecDeque::new(),
            }),
            out: Mutex::default(),
            log_file: log_file.map(|f| (Mutex::new(f), Mutex::default())),
        };
        view.redraw(&lock(&view.state));
        view
    }

    /// The observer of task `index`'s run.
    pub fn observer(self: &Arc<Self>, index: usize) -> Arc<dyn Observer> {
        Arc::new(TaskView {
            view: self.clone(),
            index,
        })
    }

    pub fn name(&self, index: usize) -> String {
        self.names.get(index).cloned().unwrap_or_default()
    }

    /// Prints a line on stderr without tearing the live view.
    pub fn say(&self, line: &str) {
        self.above(|| eprintln!("kpo: {}", shown(line)));
    }

    /// Task `index` ended.
    pub fn ended(&self, index: usize, end: &Ended) {
        let state = if end.ok() { State::Succeeded } else { State::Failed };
        let what = match end {
            Ended::Ran(r) => format!("{} (exit code {})", r.phrase(), r.exit_code),
            Ended::Reported(end) => format!("finished earlier (exit code {})", end.exit_code()),
            Ended::Failed(why) => format!("error (exit code {}): {}", why.exit_code(), why.message()),
            Ended::NotStarted(why) => why.clone(),
        };
        self.change(index, Some(state), format!("[{}] {what}", self.name(index)));
    }

    /// Ends open log lines and removes the live view.
    pub fn finish(&self) {
        let _ = self.with_logs(|w, p| p.end(w));
        if let Some((file, prefixer)) = &self.log_file {
            let _ = lock(prefixer).end(&mut *lock(file));
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The summary table, on stderr: one row per task, then what went wrong.
    pub fn table(&self, summary: &Summary) {
        let rows: Vec<[String; 6]> = summary
            .tasks
            .iter()
            .map(|l| {
                [
                    l.task.clone(),
                    l.outcome.clone(),
                    l.exit_code.map_or("-".into(), |c| c.to_string()),
                    l.seconds.map_or("-".into(), |s| format!("{s:.1}s")),
                    l.attempts.to_string(),
                    l.pod.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let header = ["TASK", "OUTCOME", "EXIT", "DURATION", "ATTEMPTS", "POD"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = std::io::stderr().lock();
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        for line in summary
            .tasks
            .iter()
            .filter(|l| !matches!(l.exit_code, Some(crate::exit::SUCCESS | crate::exit::SKIPPED)))
        {
            let _ = writeln!(out, "  {}: {}", line.task, shown(&line.message));
        }
        let c = &summary.counts;
        let _ = writeln!(
            out,
            "kpo: batch {}: {} succeeded, {} skipped, {} failed, {} not started (exit code {})",
            summary.batch_id, c.succeeded, c.skipped, c.failed, c.not_started, summary.exit_code
        );
    }

    /// Records a change of task `index` (a new state, if any) and shows it: in the live view's
    /// latest changes, or as a plain line.
    fn change(&self, index: usize, state: Option<State>, line: String) {
        let line = shown(&line).into_owned();
        let mut seen = lock(&self.state);
        if let Some(s) = state
            && let Some(known) = seen.states.get_mut(index)
        {
            *known = s;
        }
        match &self.bar {
            Some(_) => {
                seen.recent.push_back(line);
                while seen.recent.len() > RECENT {
                    seen.recent.pop_front();
                }
                self.redraw(&seen);
            }
            None => eprintln!("kpo: [{:>6.1}s] {line}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn redraw(&self, seen: &Seen) {
        let Some(bar) = &self.bar else { return };
        let count = |s: State| seen.states.iter().filter(|k| **k == s).count();
        let mut message = format!(
            "{} waiting · {} pending · {} running · {} succeeded · {} failed · {} retrying",
            count(State::Waiting),
            count(State::Pending),
            count(State::Running),
            count(State::Succeeded),
            count(State::Failed),
            count(State::Retrying),
        );
        for line in &seen.recent {
            message.push_str("\n  ");
            message.push_str(line);
        }
        bar.set_message(message);
    }

    fn above(&self, print: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn with_logs(
        &self,
        f: impl FnOnce(&mut dyn Write, &mut Prefixer) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut prefixer = lock(&self.out);
        if self.logs_to_stderr {
            f(&mut std::io::stderr().lock(), &mut prefixer)
        } else {
            f(&mut std::io::stdout().lock(), &mut prefixer)
        }
    }
}

/// One task's run, seen by the batch's view.
struct TaskView {
    view: Arc<BatchView>,
    index: usize,
}

impl Observer for TaskView {
    fn status(&self, entry: &TimelineEntry) {
        let state = match entry.phase.as_str() {
            "Submitted" | "Pending" | "Reattached" => Some(State::Pending),
            "Running" => Some(State::Running),
            _ => None,
        };
        let text = match &entry.detail {
            Some(d) => format!("{} ({d})", entry.phase),
            None => entry.phase.clone(),
        };
        let line = format!("[{}] {text}", self.view.name(self.index));
        self.view.change(self.index, state, line);
    }

    fn log_bytes(&self, container: &str, bytes: &[u8]) {
        let name = self.view.name(self.index);
        let label = match self.view.several.get(self.index) {
            Some(true) => format!("{name}/{container}"),
            _ => name,
        };
        // A closed pipe (`kpo run ... | head`) is not an error worth reporting.
        self.view
            .above(|| drop(self.view.with_logs(|w, p| p.write(w, &label, bytes))));
        if let Some((file, prefixer)) = &self.view.log_file
            && let Err(e) = lock(prefixer).write(&mut *lock(file), &label, bytes)
        {
            tracing::warn!("cannot write to the log file: {e}");
        }
    }

    fn notice(&self, message: &str) {
        self.view
            .say(&format!("[{}] {message}", self.view.name(self.index)));
    }

    fn retrying(&self, next: u32) {
        let line = format!("[{}] retrying: attempt {next}", self.view.name(self.index));
        self.view.change(self.index, Some(State::Retrying), line);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
