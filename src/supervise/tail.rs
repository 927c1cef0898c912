//! Keeps the last lines of the main container's log for interpreters, and the `::kpo-output`
//! lines it printed, passing every byte on unchanged.
//!
//! This is the one place where log output becomes text: interpreters receive strings, so the
//! lines kept here are converted lossily (an invalid UTF-8 byte becomes U+FFFD).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::Observer;
use crate::report::TimelineEntry;
use crate::result::Outputs;
use crate::vocabulary::MAIN_CONTAINER;

/// At most this many lines ...
const MAX_LINES: usize = 200;
/// ... and this many bytes are kept.
const MAX_BYTES: usize = 64 * 1024;

pub struct Tail {
    inner: Arc<dyn Observer>,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    lines: VecDeque<String>,
    bytes: usize,
    /// The line being printed, up to [`MAX_BYTES`] of it.
    open: Vec<u8>,
    outputs: Outputs,
}

impl Kept {
    fn push(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        self.outputs.read(&line);
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > MAX_LINES || self.bytes > MAX_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

impl Tail {
    pub fn new(inner: Arc<dyn Observer>) -> Self {
        Self {
            inner,
            kept: Mutex::default(),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `::kpo-output` values printed so far, a last line without its newline included.
    pub fn outputs(&self) -> Outputs {
        let kept = self.kept();
        let mut outputs = kept.outputs.clone();
        if !kept.open.is_empty() {
            outputs.read(&String::from_utf8_lossy(&kept.open));
        }
        outputs
    }

    /// The last lines, a last line without its newline included.
    pub fn lines(&self) -> Vec<String> {
        let kept = self.kept();
        let open = (!kept.open.is_empty()).then(|| String::from_utf8_lossy(&kept.open).into_owned());
        kept.lines.iter().cloned().chain(open).collect()
    }
}

impl Observer for Tail {
    fn status(&self, entry: &TimelineEntry) {
        self.inner.status(entry);
    }

    fn log_bytes(&self, container: &str, bytes: &[u8]) {
        self.inner.log_bytes(container, bytes);
        if container != MAIN_CONTAINER {
            return;
        }
        let mut kept = self.kept();
        let mut rest = bytes;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..nl];
            if kept.open.is_empty() {
                kept.push(&piece[..piece.len().min(MAX_BYTES)]);
            } else {
                let room = MAX_BYTES.saturating_sub(kept.open.len());
                kept.open.extend_from_slice(&piece[..piece.len().min(room)]);
                let line = std::mem::take(&mut kept.open);
                kept.push(&line);
            }
            rest = &rest[nl + 1..];
        }
        let room = MAX_BYTES.saturating_sub(kept.open.len());
        kept.open.extend_from_slice(&rest[..rest.len().min(room)]);
    }

    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }

    fn created(&self, pod: &k8s_openapi::api::core::v1::Pod) {
        self.inner.created(pod);
    }

    fn log_checkpoint(&self, container: &str, cursor: &super::Cursor) {
        self.inner.log_checkpoint(container, cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl Observer for Nothing {}

    #[test]
    fn lines_are_assembled_from_pieces_and_kept_lossily() {
        let tail = Tail::new(Arc::new(Nothing));
        tail.log_bytes(MAIN_CONTAINER, b"one\ntw");
        tail.log_bytes(MAIN_CONTAINER, b"o \xff\n::kpo-output rows=4");
        tail.log_bytes("sidecar", b"not kept\n");
        assert_eq!(tail.lines(), ["one", "two \u{fffd}", "::kpo-output rows=4"]);
        assert_eq!(tail.outputs().values.get("rows").map(String::as_str), Some("4"));
    }
}
