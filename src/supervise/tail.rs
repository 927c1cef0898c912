//! Keeps the last lines of the main container's log for interpreters, passing everything on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::Observer;
use crate::pod::MAIN_CONTAINER;
use crate::report::TimelineEntry;
use crate::result::Outputs;

/// At most this many lines ...
const MAX_LINES: usize = 200;
/// ... and this many bytes are kept.
const MAX_BYTES: usize = 64 * 1024;

pub struct Tail {
    inner: Arc<dyn Observer>,
    lines: Mutex<(VecDeque<String>, usize)>,
    outputs: Mutex<Outputs>,
}

impl Tail {
    pub fn new(inner: Arc<dyn Observer>) -> Self {
        Self {
            inner,
            lines: Mutex::new((VecDeque::new(), 0)),
            outputs: Mutex::default(),
        }
    }

    /// The `::kpo-output` values printed so far.
    pub fn outputs(&self) -> std::collections::BTreeMap<String, String> {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .iter()
            .cloned()
            .collect()
    }
}

impl Observer for Tail {
    fn status(&self, entry: &TimelineEntry) {
        self.inner.status(entry);
    }

    fn log_line(&self, container: &str, line: &str) {
        self.inner.log_line(container, line);
        if container != MAIN_CONTAINER {
            return;
        }
        self.outputs.lock().unwrap_or_else(|e| e.into_inner()).read(line);
        let mut guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let (lines, bytes) = &mut *guard;
        lines.push_back(line.to_owned());
        *bytes += line.len();
        while lines.len() > MAX_LINES || *bytes > MAX_BYTES {
            match lines.pop_front() {
                Some(old) => *bytes -= old.len(),
                None => break,
            }
        }
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
