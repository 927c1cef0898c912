//! What a person sees during a run: the pod's phase with elapsed time (a spinner on a terminal,
//! plain lines when piped), the container logs, and notices. Implements [`Observer`].

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::TimelineEntry;
use crate::supervise::Observer;

/// Where log lines go: stdout normally, stderr when stdout carries the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// The terminal side of a run.
pub struct Progress {
    spinner: Option<ProgressBar>,
    started: Instant,
    logs_to: LogStream,
    /// Prefix lines with `[container]` when more than one container is streamed.
    prefix: bool,
    log_file: Option<Mutex<std::fs::File>>,
}

impl Progress {
    /// `interactive` decides spinner vs plain lines; pass whether stderr is a terminal.
    pub fn new(interactive: bool, logs_to: LogStream, prefix: bool, log_file: Option<std::fs::File>) -> Self {
        let spinner = interactive.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            spinner,
            started: Instant::now(),
            logs_to,
            prefix,
            log_file: log_file.map(Mutex::new),
        }
    }

    /// Prints a line on stderr without tearing the spinner.
    pub fn say(&self, line: &str) {
        let print = || eprintln!("kpo: {line}");
        match &self.spinner {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Removes the spinner before the final summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn status(&self, entry: &TimelineEntry) {
        let text = match &entry.detail {
            Some(d) => format!("{} ({d})", entry.phase),
            None => entry.phase.clone(),
        };
        match &self.spinner {
            Some(bar) => {
                bar.set_message(text.clone());
                bar.suspend(|| eprintln!("kpo: {text}"));
            }
            None => eprintln!("kpo: [{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn log_line(&self, container: &str, line: &str) {
        let text = if self.prefix {
            format!("[{container}] {line}")
        } else {
            line.to_owned()
        };
        let print = || match self.logs_to {
            LogStream::Stdout => {
                let mut out = std::io::stdout().lock();
                // A closed pipe (`kpo run ... | head`) is not an error worth reporting.
                let _ = writeln!(out, "{text}");
            }
            LogStream::Stderr => eprintln!("{text}"),
        };
        match &self.spinner {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
        if let Some(file) = &self.log_file {
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = writeln!(f, "[{container}] {line}") {
                tracing::warn!("cannot write to the log file: {e}");
            }
        }
    }

    fn notice(&self, message: &str) {
        self.say(message);
    }
}
