//! What a person sees during a run: the pod's phase with elapsed time (a spinner on a terminal,
//! plain lines when piped), the container logs, and notices. Implements [`Observer`].

use crate::said::shown;
use std::io::Write;
use std::sync::{Mutex, MutexGuard};
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
    /// Set when more than one container is streamed: lines get a `[container]` prefix.
    prefixed: Option<Mutex<Prefixer>>,
    log_file: Option<(Mutex<std::fs::File>, Mutex<Prefixer>)>,
}

impl Progress {
    /// `interactive` decides spinner vs plain lines; pass whether stderr is a terminal.
    pub fn new(interactive: bool, logs_to: LogStream, prefix: bool, log_file: Option<std::fs::File>) -> Self {
        let spinner = interactive.then(|| spinner("{spinner} {msg} [{elapsed}]"));
        Self {
            spinner,
            started: Instant::now(),
            logs_to,
            prefixed: prefix.then(Mutex::default),
            log_file: log_file.map(|f| (Mutex::new(f), Mutex::default())),
        }
    }

    /// Prints a line on stderr without tearing the spinner.
    pub fn say(&self, line: &str) {
        let print = || eprintln!("kpo: {}", shown(line));
        match &self.spinner {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Ends lines left open and removes the spinner before the final summary.
    pub fn finish(&self) {
        if let Some(p) = &self.prefixed {
            let _ = match self.logs_to {
                LogStream::Stdout => lock(p).end(&mut std::io::stdout().lock()),
                LogStream::Stderr => lock(p).end(&mut std::io::stderr().lock()),
            };
        }
        if let Some((file, prefixer)) = &self.log_file {
            let _ = lock(prefixer).end(&mut *lock(file));
        }
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
        let text = shown(&text).into_owned();
        match &self.spinner {
            Some(bar) => {
                bar.set_message(text.clone());
                bar.suspend(|| eprintln!("kpo: {text}"));
            }
            None => eprintln!("kpo: [{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn log_bytes(&self, container: &str, bytes: &[u8]) {
        let print = || {
            let result = match (self.logs_to, &self.prefixed) {
                (LogStream::Stdout, None) => write_raw(&mut std::io::stdout().lock(), bytes),
                (LogStream::Stderr, None) => write_raw(&mut std::io::stderr().lock(), bytes),
                (LogStream::Stdout, Some(p)) => {
                    lock(p).write(&mut std::io::stdout().lock(), container, bytes)
                }
                (LogStream::Stderr, Some(p)) => {
                    lock(p).write(&mut std::io::stderr().lock(), container, bytes)
                }
            };
            // A closed pipe (`kpo run ... | head`) is not an error worth reporting.
            drop(result);
        };
        match &self.spinner {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
        if let Some((file, prefixer)) = &self.log_file {
            let mut f = lock(file);
            if let Err(e) = lock(prefixer).write(&mut *f, container, bytes) {
                tracing::warn!("cannot write to the log file: {e}");
            }
        }
    }

    fn notice(&self, message: &str) {
        self.say(message);
    }
}

/// A spinner drawn with `template` (indicatif's), ticking on its own.
pub fn spinner(template: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a container's bytes exactly as they came, out of the process at once: the journal
/// records them as delivered right after.
fn write_raw(w: &mut (impl Write + ?Sized), bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

/// Puts `[container] ` before every line of several interleaved containers' output. A line
/// one container left open (a long line in pieces, output without a final newline) is ended
/// before another container's bytes, and its rest gets the prefix again.
#[derive(Debug, Default)]
pub struct Prefixer {
    /// The container whose line is open at the end of what was written.
    open: Option<String>,
}

impl Prefixer {
    pub fn write(
        &mut self,
        w: &mut (impl Write + ?Sized),
        container: &str,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(bytes.len() + 16);
        let mut continuing = match &self.open {
            Some(c) if c == container => true,
            Some(_) => {
                out.push(b'\n');
                false
            }
            None => false,
        };
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            if !continuing {
                out.extend_from_slice(format!("[{container}] ").as_bytes());
            }
            out.extend_from_slice(piece);
            continuing = !piece.ends_with(b"\n");
        }
        self.open = continuing.then(|| container.to_owned());
        write_raw(w, &out)
    }

    /// Ends a line left open.
    pub fn end(&mut self, w: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        match self.open.take() {
            Some(_) => write_raw(w, b"\n"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_every_line_and_ends_open_lines_before_others() {
        let mut p = Prefixer::default();
        let mut out = Vec::new();
        p.write(&mut out, "a", b"one\ntw").unwrap();
        p.write(&mut out, "a", b"o\n").unwrap();
        p.write(&mut out, "a", b"long").unwrap();
        p.write(&mut out, "b", b"\xffb\n").unwrap();
        p.write(&mut out, "a", b" rest").unwrap();
        p.end(&mut out).unwrap();
        assert_eq!(out, b"[a] one\n[a] two\n[a] long\n[b] \xffb\n[a]  rest\n");
    }
}
