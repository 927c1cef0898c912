//! Following one container's log: live while it runs, then to its end, every byte exactly once.
//!
//! Logs are requested with timestamps and read as records ([`super::records`]). After a cut,
//! the stream is reopened from the last timestamp delivered and what was delivered already is
//! skipped.
//!
//! **When a log is read to its end.** Once the watch says the container has terminated, the
//! live stream is dropped (a v1.20 kubelet ends it only on its next one-second check) and the
//! log is read once more with a plain request from the last record delivered. A runtime stores a
//! container's output before it reports the container exited — containerd's CRI waits for the
//! container's output to be copied before it records the exit, as dockershim waits for its log
//! copier and CRI-O's conmon drains the pipes before it writes the exit file — and the kubelet
//! reports only what the runtime says; so once a whole answer that began after the exit was seen
//! ends with a whole line and is known to reach the log's last record, the log is read to its
//! end, and kpo waits no longer. (On the test cluster, containerd 1.6 under load, 80 logs probed
//! when their exit was seen already held all the node would ever store.) An answer cut short on
//! its way through the API server ends as cleanly as a whole one, so reaching the end is shown
//! by one of two things: the answer brought nothing new (what came before it was delivered
//! already), or it ends with exactly the bytes of the log's last record — asked for alongside
//! the first read (`tailLines=1`) where no live stream was open at the exit, so that a container
//! too quick for the live stream costs one round trip at its end, not two. Otherwise the read is
//! followed by another at once. Where the end is ambiguous — in the middle of a line, or with
//! bytes held back that might begin a record — the runtime may still be writing it: the log is
//! read again until it stays unchanged for [`SETTLE`]; what a runtime lost, it lost for good, so
//! a log that still ends in the middle of a line is reported. Where the end cannot be had — the
//! log is still growing after [`GROWTH_LIMIT`], the pod is gone, the server answers with
//! something other than the log — the follower says so, and the run's report lists the log as
//! possibly incomplete.
//!
//! A container still running when the run ends (a sidecar) is asked to wrap up: its stream is
//! dropped and what its runtime stored so far is read once.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use super::Observer;
use super::records::{Cursor, NotALog};
use super::rotations::{self, Witness};
use crate::claim::Warrant;
use crate::status;

/// Pause before reopening a cut stream.
pub(super) const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// How long the log of an exited container that ends ambiguously (in the middle of a line) must
/// stay unchanged to count as read to its end.
const SETTLE: Duration = Duration::from_millis(100);
/// How long after the exit reads that keep bringing new output are repeated.
const GROWTH_LIMIT: Duration = Duration::from_secs(60);
/// How long a plain read of the log is retried through API-server trouble.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// The most of a log's last record compared with the end of a read (a runtime splits longer
/// lines into records of 16 KiB); a longer one is confirmed by a second read instead.
const LAST_RECORD_MAX: usize = 64 * 1024;

/// Why a container's log may lack some of its output. The run report lists these.
pub type Incomplete = String;

/// Delivers new output to the observer and remembers when it last did.
struct Sink {
    observer: Arc<dyn Observer>,
    witness: Arc<std::sync::Mutex<Witness>>,
    container: String,
    delivered: u64,
    last_new: Option<Instant>,
    /// Whether the output delivered so far ends in the middle of a line.
    mid_line: bool,
}

impl Sink {
    fn put(&mut self, bytes: &[u8], at: &Cursor) {
        self.observer.log_bytes(&self.container, bytes);
        // After the bytes were passed on: a kill in between repeats at most this piece.
        self.observer.log_checkpoint(&self.container, at);
        self.witness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delivered(bytes.len(), at);
        self.delivered += bytes.len() as u64;
        self.last_new = Some(Instant::now());
        self.mid_line = bytes.last() != Some(&b'\n');
    }
}

type Body = Pin<Box<dyn AsyncBufRead + Send>>;

/// The next piece of a response body; `None` at its clean end.
async fn next_chunk(body: &mut Body) -> std::io::Result<Option<Vec<u8>>> {
    let chunk = body.fill_buf().await?;
    if chunk.is_empty() {
        return Ok(None);
    }
    let owned = chunk.to_vec();
    body.as_mut().consume(owned.len());
    Ok(Some(owned))
}

fn started(pod: &Pod, container: &str) -> bool {
    status::of(pod, container)
        .and_then(|s| s.state.as_ref())
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

fn terminated(pod: Option<&Pod>, container: &str) -> bool {
    pod.is_none_or(|p| status::terminated(p, container))
}

/// Whether the run has ended (or its supervisor is gone) while the container may still run.
fn wrapping_up(wrap_up: &watch::Receiver<bool>) -> bool {
    *wrap_up.borrow() || wrap_up.has_changed().is_err()
}

/// Whose log to follow, and under which claim.
pub struct Source {
    pub api: Api<Pod>,
    pub warrant: Warrant,
    pub pod: String,
    pub container: String,
}

/// Streams one container's log to the observer until the container has exited and its log is
/// read to the end, or until `wrap_up` turns true (the run has ended while the container still
/// runs): then what is stored so far is read and the follower ends. `pods` carries the latest
/// snapshot from the watch (`None` once deleted). Returns why the log may be incomplete, if it
/// may be.
pub async fn follow(
    source: Source,
    pods: watch::Receiver<Option<Pod>>,
    wrap_up: watch::Receiver<bool>,
    observer: Arc<dyn Observer>,
    cursor: Cursor,
) -> Option<Incomplete> {
    let witness = Arc::new(std::sync::Mutex::new(Witness::from(&cursor)));
    let files = tokio::spawn(rotations::watch_files(
        source.api.clone(),
        source.pod.clone(),
        source.container.clone(),
        pods.clone(),
        witness.clone(),
    ));
    let sink = Sink {
        observer,
        witness: witness.clone(),
        container: source.container.clone(),
        delivered: 0,
        last_new: None,
        mid_line: false,
    };
    let ending = follow_with(&source, pods, wrap_up, sink, cursor).await;
    files.abort();
    let skipped = witness.lock().unwrap_or_else(|e| e.into_inner()).skipped();
    match (ending, skipped) {
        (Some(ending), Some(skipped)) => Some(format!("{skipped}; and {ending}")),
        (ending, skipped) => ending.or(skipped),
    }
}

/// [`follow`], delivering to `sink`.
async fn follow_with(
    source: &Source,
    mut pods: watch::Receiver<Option<Pod>>,
    mut wrap_up: watch::Receiver<bool>,
    mut sink: Sink,
    mut cursor: Cursor,
) -> Option<Incomplete> {
    let Source {
        api,
        warrant,
        pod,
        container,
    } = source;
    let ran = match pods
        .wait_for(|p| p.as_ref().is_none_or(|p| started(p, container)))
        .await
    {
        Ok(snapshot) => snapshot.is_some(),
        Err(_) => false,
    };
    if !ran && cursor == Cursor::default() {
        // Deleted before the container ever started: there is no log to read.
        return None;
    }
    let mut gap = false;
    // Whether a live stream that had brought output was open when the exit was seen: then it
    // has most likely delivered the log already, and one read shows that by bringing nothing
    // new. A stream that brought nothing (opened as the container ended, or cut at once) says
    // nothing of the log: the log's last record is looked at beside the first read.
    let mut streaming = false;
    loop {
        if terminated(pods.borrow().as_ref(), container) {
            let end = End {
                exited: Instant::now(),
                gap,
                look_at_last: !streaming,
            };
            return to_end(api, warrant, pod, &mut cursor, &mut sink, end).await;
        }
        if wrapping_up(&wrap_up) {
            // Still running: what is stored so far, once; the rest is the container's own.
            let _ = read_once(api, warrant, pod, &mut cursor, &mut sink, false).await;
            return None;
        }
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: cursor.since(),
            ..Default::default()
        };
        let mut body: Body = match api.log_stream(pod, &params).await {
            Ok(s) => Box::pin(s),
            Err(e) => {
                tracing::debug!(%container, "cannot open log stream: {e}");
                let _ = tokio::time::timeout(RECONNECT_PAUSE, pods.changed()).await;
                continue;
            }
        };
        let mut reader = cursor.reader();
        let opened_at = sink.delivered;
        let mut put = |b: &[u8], c: &Cursor| sink.put(b, c);
        loop {
            tokio::select! {
                chunk = next_chunk(&mut body) => match chunk {
                    Ok(Some(bytes)) => {
                        if let Err(NotALog(text)) = reader.feed(&bytes, &mut put) {
                            tracing::debug!(%container, "the log stream answered {text:?}; reopening");
                            break;
                        }
                    }
                    Ok(None) => {
                        if let Err(NotALog(text)) = reader.end(false, &mut put) {
                            tracing::debug!(%container, "the log stream ended with {text:?}");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(%container, "log stream cut: {e}");
                        break;
                    }
                },
                // The exit, or the run's end: the stream is dropped, the rest read directly.
                changed = pods.changed() => {
                    if changed.is_err() || terminated(pods.borrow().as_ref(), container) {
                        streaming = sink.delivered > opened_at;
                        break;
                    }
                }
                _ = wrap_up.changed() => break,
            }
        }
        gap |= reader.gap();
        if !terminated(pods.borrow().as_ref(), container) && !wrapping_up(&wrap_up) {
            // Often the stream ended because the container did, and the watch has not said so
            // yet: its next change ends the pause early.
            tracing::debug!(%container, "log stream ended while the container runs; reopening");
            let _ = tokio::time::timeout(RECONNECT_PAUSE, pods.changed()).await;
        }
    }
}

/// Where the reading of an exited container's log begins.
struct End {
    /// When the exit was seen.
    exited: Instant,
    /// Whether output may have been lost on the way so far.
    gap: bool,
    /// Whether to ask for the log's last record beside the first read.
    look_at_last: bool,
}

/// Reads the log of an exited container to its end: once, or until it has settled where that
/// read was ambiguous (see the module's documentation).
async fn to_end(
    api: &Api<Pod>,
    warrant: &Warrant,
    pod: &str,
    cursor: &mut Cursor,
    sink: &mut Sink,
    end: End,
) -> Option<Incomplete> {
    let End {
        exited,
        mut gap,
        look_at_last: mut first,
    } = end;
    let mut pause = Duration::from_millis(100);
    loop {
        let began = Instant::now();
        let before = sink.delivered;
        // The last record is asked for beside the first read where no live stream was open at
        // the exit; it is waited for only where that read brought something (else the read
        // shows its end by itself).
        let probe = std::mem::take(&mut first).then(|| {
            let (api, pod, container) = (api.clone(), pod.to_owned(), sink.container.clone());
            AbortOnDropHandle::new(tokio::spawn(
                async move { last_record(&api, &pod, &container).await },
            ))
        });
        let read = read_once(api, warrant, pod, cursor, sink, false).await;
        let quiet_since = sink.last_new.map_or(exited, |t| t.max(exited));
        match read {
            Ok(read) => {
                gap |= read.gap;
                if sink.delivered > before {
                    tracing::debug!(
                        container = %sink.container,
                        bytes = sink.delivered - before,
                        after_exit = ?began.duration_since(exited),
                        "the log grew after the container's exit was seen"
                    );
                }
                let clear = !sink.mid_line && !read.held;
                let nothing_new = sink.delivered == before && (clear || began >= quiet_since + SETTLE);
                let reached_last = match probe {
                    Some(probe) if read.whole && clear && !nothing_new => probe
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|l| !l.is_empty() && read.raw_end.ends_with(&l)),
                    _ => false,
                };
                let settled = read.whole && (nothing_new || reached_last);
                if settled {
                    if read.held {
                        // The same end twice: what looked like the start of a timestamp is output.
                        if let Ok(last) = read_once(api, warrant, pod, cursor, sink, true).await {
                            gap |= last.gap;
                        }
                    }
                    if gap {
                        return Some(
                            "the log was rotated or removed while kpo reconnected: some output may be missing"
                                .to_owned(),
                        );
                    }
                    // containerd was seen storing a fast log's end cut off in the middle of a line
                    // (a partial record), with the container's exit 0: from here that looks like
                    // output without a last newline, so both are named.
                    return sink.mid_line.then(|| {
                        "it ends in the middle of a line: either the container printed no newline at the end, or the node's runtime did not store the rest of its output".to_owned()
                    });
                }
                if began >= exited + GROWTH_LIMIT {
                    return Some(format!(
                        "the log was still growing {} after the container exited; kpo stopped reading it",
                        super::human(GROWTH_LIMIT)
                    ));
                }
                match (read.whole, sink.delivered > before) {
                    // It brought the rest, or the rest of an answer cut short on its way (which
                    // ends cleanly too): the next read says which, at once.
                    (true, true) => {}
                    (true, false) => tokio::time::sleep_until(quiet_since + SETTLE).await,
                    (false, _) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
            Err(EndError::Gone) => {
                return Some("the pod was deleted before its log was read to the end".to_owned());
            }
            Err(EndError::NotALog(text)) => {
                return Some(format!(
                    "the rest of the log could not be read; the server answered: {text}"
                ));
            }
            Err(EndError::Api(e)) => return Some(format!("the rest of the log could not be read: {e}")),
        }
    }
}

/// What one plain read brought.
struct Read {
    /// The body arrived whole (it was not cut).
    whole: bool,
    gap: bool,
    /// Its last bytes were held back (see [`super::records::Reader::end`]).
    held: bool,
    /// Its last bytes as they came (timestamps included), at least [`LAST_RECORD_MAX`] of them.
    raw_end: Vec<u8>,
}

enum EndError {
    Gone,
    NotALog(String),
    Api(kube::Error),
}

/// One plain request for the log from the cursor on, passing on whatever is new.
async fn read_once(
    api: &Api<Pod>,
    warrant: &Warrant,
    pod: &str,
    cursor: &mut Cursor,
    sink: &mut Sink,
    release: bool,
) -> Result<Read, EndError> {
    let params = LogParams {
        container: Some(sink.container.clone()),
        timestamps: true,
        since_time: cursor.since(),
        ..Default::default()
    };
    let open = || api.log_stream(pod, &params);
    let mut body: Body = match super::retry::retrying("reading the log", READ_LIMIT, warrant, open).await {
        Ok(body) => Box::pin(body),
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(EndError::Gone),
        Err(e) => return Err(EndError::Api(e)),
    };
    let mut reader = cursor.reader();
    let mut put = |b: &[u8], c: &Cursor| sink.put(b, c);
    let mut raw_end = Vec::new();
    let whole = loop {
        match next_chunk(&mut body).await {
            Ok(Some(bytes)) => {
                keep_end(&mut raw_end, &bytes);
                reader
                    .feed(&bytes, &mut put)
                    .map_err(|e| EndError::NotALog(e.0))?;
            }
            Ok(None) => {
                reader
                    .end(release, &mut put)
                    .map_err(|e| EndError::NotALog(e.0))?;
                break true;
            }
            Err(e) => {
                tracing::debug!(container = %sink.container, "log read cut: {e}");
                break false;
            }
        }
    };
    Ok(Read {
        whole,
        gap: reader.gap(),
        held: reader.held_back(),
        raw_end,
    })
}

/// Appends `bytes` to `end`, which keeps at least its last [`LAST_RECORD_MAX`] bytes. It is
/// cut back only once it holds twice that, so a long read moves each byte at most once more.
fn keep_end(end: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[bytes.len().saturating_sub(LAST_RECORD_MAX)..];
    if end.len() + bytes.len() > 2 * LAST_RECORD_MAX {
        end.drain(..end.len().saturating_sub(LAST_RECORD_MAX - bytes.len()));
    }
    end.extend_from_slice(bytes);
}

/// The log's last record as the kubelet serves it (`tailLines=1`, timestamped), whole; `None`
/// where it cannot be had in one plain answer (an error, a cut, a record too long) — then a
/// second read shows the end instead.
async fn last_record(api: &Api<Pod>, pod: &str, container: &str) -> Option<Vec<u8>> {
    let params = LogParams {
        container: Some(container.to_owned()),
        timestamps: true,
        tail_lines: Some(1),
        limit_bytes: Some(LAST_RECORD_MAX as i64 + 1),
        ..Default::default()
    };
    let mut body: Body = Box::pin(api.log_stream(pod, &params).await.ok()?);
    let mut record = Vec::new();
    while let Some(bytes) = next_chunk(&mut body).await.ok()? {
        record.extend_from_slice(&bytes);
    }
    (record.len() <= LAST_RECORD_MAX).then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_read_is_kept_whatever_its_pieces() {
        let log: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for piece in [1000, 70_000, 300_000] {
            let mut end = Vec::new();
            log.chunks(piece).for_each(|c| keep_end(&mut end, c));
            assert!(
                end.len() >= LAST_RECORD_MAX && end.len() <= 2 * LAST_RECORD_MAX,
                "{piece}"
            );
            assert!(log.ends_with(&end), "{piece}");
        }
    }
}
