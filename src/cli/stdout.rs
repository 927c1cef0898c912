//! kpo's own output on stdout (reports, tables, YAML, the man page). A reader that went away
//! (`kpo list | head -1`) ends that output quietly — never a panic, never an error — and kpo
//! finishes its work (a run still cleans up its pod) with the exit code it would have had.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout; a closed pipe drops it, another failure is logged.
pub fn put(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        gone(&e);
    }
}

/// Runs `write` against stdout, with a closed pipe taken as the end of the output.
///
/// # Errors
/// Any other failure to write.
pub fn with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn gone(e: &std::io::Error) {
    if e.kind() != ErrorKind::BrokenPipe {
        tracing::warn!("cannot write to stdout: {e}");
    }
}

/// `println!` to stdout through [`put`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::put(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
