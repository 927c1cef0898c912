//! Files the kubelet skipped. Its follower of a container's log reads the file it opened to the
//! end, then reopens the log's path: when the log was rotated more than once meanwhile — a
//! follower behind a fast container on a loaded node; seen on v1.20, where 388 721 of a million
//! lines arrived — whole files are skipped, and nothing in the stream says so. The kubelet serves
//! only the current file, so what was skipped cannot be read again; kpo can only know and say.
//!
//! While output flows, kpo asks now and then for the first bytes of the current file: the
//! timestamp its first record carries. A file is current for at least the kubelet's check
//! interval (10 s), longer than [`SAMPLE_EVERY`], so the start of every file a fast log passes
//! through is seen. A file whose first record the delivered log goes past without delivering it
//! was skipped.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::AsyncReadExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::watch;

use super::records::{self, Cursor};

/// How often the start of the current file is asked for while output flows.
const SAMPLE_EVERY: Duration = Duration::from_secs(3);
/// How much output since the last look makes the next one worth it: a file rotates only once
/// it holds the kubelet's `containerLogMaxSize` (10 MiB by default), and a follower falls a
/// whole file behind only on a fast log — a quiet one costs no request.
const SAMPLE_AFTER: u64 = 64 * 1024;
/// Enough of a body for the timestamp of its first record.
const HEAD_BYTES: i64 = 64;

/// What is known of the log's files against what was delivered of it.
#[derive(Debug, Default)]
pub struct Witness {
    /// Starts of files not reached yet by what was delivered.
    ahead: BTreeSet<Timestamp>,
    /// The latest record delivered.
    last: Option<Timestamp>,
    /// Output delivered since the last look at the current file.
    unsampled: u64,
    /// A file that was skipped: the last record delivered before it, and its start.
    skipped: Option<(Option<Timestamp>, Timestamp)>,
}

impl Witness {
    /// A witness of a log delivered up to `from` (a reattaching kpo's cursor): what lies before
    /// was delivered by an earlier kpo.
    pub fn from(from: &Cursor) -> Self {
        Self {
            last: from.at(),
            ..Self::default()
        }
    }

    /// `bytes` more were delivered, up to `at`.
    pub fn delivered(&mut self, bytes: usize, at: &Cursor) {
        self.unsampled += bytes as u64;
        let Some(now) = at.at() else {
            return;
        };
        while let Some(&start) = self.ahead.first().filter(|s| **s <= now) {
            self.ahead.remove(&start);
            if start < now && self.skipped.is_none() {
                self.skipped = Some((self.last, start));
            }
        }
        self.last = Some(now);
    }

    /// The current file begins with a record stamped `start`.
    pub fn file_starts_at(&mut self, start: Timestamp) {
        if self.last.is_none_or(|last| start > last) {
            self.ahead.insert(start);
        }
    }

    /// Why the log lacks output, when a file was skipped.
    pub fn skipped(&self) -> Option<String> {
        let (before, start) = self.skipped?;
        let from = before.map_or_else(|| "its start".to_owned(), |b| b.to_string());
        Some(format!(
            "the node's kubelet skipped a rotated log file: output written between {from} and {start} is missing"
        ))
    }
}

/// Looks at the start of the current file of `container`'s log every [`SAMPLE_EVERY`] while
/// output flows, until the container has exited or the run stops watching the pod.
pub async fn watch_files(
    api: Api<Pod>,
    pod: String,
    container: String,
    pods: watch::Receiver<Option<Pod>>,
    witness: Arc<Mutex<Witness>>,
) {
    let params = LogParams {
        container: Some(container.clone()),
        timestamps: true,
        limit_bytes: Some(HEAD_BYTES),
        ..Default::default()
    };
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let gone = pods.has_changed().is_err();
        if gone
            || pods
                .borrow()
                .as_ref()
                .is_none_or(|p| crate::status::terminated(p, &container))
        {
            return;
        }
        let due = {
            let mut w = witness.lock().unwrap_or_else(|e| e.into_inner());
            let due = w.unsampled >= SAMPLE_AFTER;
            if due {
                w.unsampled = 0;
            }
            due
        };
        if !due {
            continue;
        }
        let mut head = Vec::new();
        let read = async {
            let mut body = api.log_stream(&pod, &params).await?;
            body.read_to_end(&mut head)
                .await
                .map_err(kube::Error::ReadEvents)?;
            Ok::<_, kube::Error>(())
        };
        match read.await {
            Ok(()) => {
                if let Some(start) = records::first_stamp(&head) {
                    witness
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .file_starts_at(start);
                }
            }
            Err(e) => tracing::debug!(%container, "cannot read the start of the log file: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor_at(secs: i64) -> Cursor {
        let mut c = Cursor::default();
        let mut reader = c.reader();
        let record = format!("{} x\n", Timestamp::from_second(secs).unwrap());
        reader.feed(record.as_bytes(), &mut |_, _| {}).unwrap();
        c
    }

    #[test]
    fn a_file_start_the_log_passes_without_delivering_was_skipped() {
        let mut w = Witness::default();
        w.delivered(10, &cursor_at(100));
        w.file_starts_at(Timestamp::from_second(110).unwrap());
        w.file_starts_at(Timestamp::from_second(120).unwrap());
        // The start of the first file ahead is delivered: it was read.
        w.delivered(10, &cursor_at(110));
        assert_eq!(w.skipped(), None);
        // The log goes on past the start of the next without it: skipped.
        w.delivered(10, &cursor_at(130));
        let why = w.skipped().unwrap();
        assert!(
            why.contains("between 1970-01-01T00:01:50Z and 1970-01-01T00:02:00Z"),
            "{why}"
        );
    }

    #[test]
    fn a_reattached_log_starts_where_the_earlier_kpo_left_it() {
        // The current file began before the cursor the earlier kpo left: no evidence of a skip.
        let mut w = Witness::from(&cursor_at(100));
        w.file_starts_at(Timestamp::from_second(90).unwrap());
        w.delivered(10, &cursor_at(101));
        assert_eq!(w.skipped(), None);
    }

    #[test]
    fn starts_behind_what_was_delivered_are_no_evidence() {
        let mut w = Witness::default();
        w.delivered(10, &cursor_at(100));
        w.file_starts_at(Timestamp::from_second(90).unwrap());
        w.delivered(10, &cursor_at(130));
        assert_eq!(w.skipped(), None);
    }
}
