//! Live log streaming with exactly-once delivery across reconnects.
//!
//! Logs are requested with timestamps. After a cut, the stream is reopened from the last
//! timestamp seen (floored to the second, the API's precision for `sinceTime`) and the lines
//! already delivered are skipped, counting duplicates of the last timestamp. A stream that goes
//! quiet after its container has exited is abandoned, because a kubelet that never closes it
//! must not hold the run open; the rest is fetched with plain requests until one brings nothing
//! new.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::watch;

use super::Observer;
use crate::status;

/// How long a log stream may stay silent after its container exited before it counts as stalled.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Pause before reopening a cut stream.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// How many plain reads the end of a log gets at most, and the pause between two of them.
const REST_READS: usize = 10;
const REST_PAUSE: Duration = Duration::from_millis(100);

/// Where a container's log has been read up to. Kept in the run journal, so that a kpo that
/// reattaches to a run continues the log without repeating or skipping a line.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    last: Option<Timestamp>,
    /// How many delivered lines carry exactly the `last` timestamp.
    at_last: usize,
}

/// Reading one (re)opened stream against the cursor.
pub struct Reader<'a> {
    cursor: &'a mut Cursor,
    skip: usize,
}

impl Cursor {
    /// The `sinceTime` to reopen from: the last timestamp, truncated to whole seconds, so the
    /// API's rounding can never move it past a line not yet seen.
    pub fn since(&self) -> Option<Timestamp> {
        let round = TimestampRound::new()
            .smallest(Unit::Second)
            .mode(RoundMode::Trunc);
        self.last.map(|t| t.round(round).unwrap_or(t))
    }

    pub fn reader(&mut self) -> Reader<'_> {
        let skip = self.at_last;
        Reader { cursor: self, skip }
    }
}

impl Reader<'_> {
    /// The cursor as it stands after the lines accepted so far.
    pub fn cursor(&self) -> &Cursor {
        self.cursor
    }

    /// Takes a raw `TIMESTAMP text` line; returns the text if it was not delivered before.
    pub fn accept<'l>(&mut self, raw: &'l str) -> Option<&'l str> {
        let Some((ts, text)) = raw
            .split_once(' ')
            .and_then(|(t, rest)| Some((t.parse::<Timestamp>().ok()?, rest)))
        else {
            return Some(raw);
        };
        let c = &mut *self.cursor;
        match c.last {
            Some(last) if ts < last => None,
            Some(last) if ts == last && self.skip > 0 => {
                self.skip -= 1;
                None
            }
            Some(last) if ts == last => {
                c.at_last += 1;
                Some(text)
            }
            _ => {
                c.last = Some(ts);
                c.at_last = 1;
                self.skip = 0;
                Some(text)
            }
        }
    }
}

fn started(pod: &Pod, container: &str) -> bool {
    status::of(pod, container)
        .and_then(|s| s.state.as_ref())
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

fn terminated(pod: Option<&Pod>, container: &str) -> bool {
    pod.is_none_or(|p| status::terminated(p, container))
}

/// Streams one container's log to the observer until the container has exited and its log is
/// read to the end. `pods` carries the latest snapshot from the watch (`None` once deleted).
pub async fn follow(
    api: Api<Pod>,
    pod: String,
    container: String,
    mut pods: watch::Receiver<Option<Pod>>,
    observer: Arc<dyn Observer>,
    mut cursor: Cursor,
) {
    let emit = |text: &str, at: &Cursor| {
        observer.log_line(&container, text);
        observer.log_checkpoint(&container, at);
    };
    loop {
        let gone = match pods
            .wait_for(|p| p.as_ref().is_none_or(|p| started(p, &container)))
            .await
        {
            Ok(snapshot) => snapshot.is_none(),
            Err(_) => true,
        };
        if gone {
            return;
        }
        let done = terminated(pods.borrow().as_ref(), &container);
        if done {
            return read_rest(&api, &pod, &container, &mut cursor, emit).await;
        }
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: cursor.since(),
            ..Default::default()
        };
        let stream = match api.log_stream(&pod, &params).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%container, "cannot open log stream: {e}");
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        let mut lines = stream.lines();
        let mut reader = cursor.reader();
        let stall = tokio::time::sleep(Duration::MAX);
        tokio::pin!(stall);
        let mut exited = terminated(pods.borrow().as_ref(), &container);
        if exited {
            stall.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
        }
        loop {
            tokio::select! {
                line = lines.next() => match line {
                    Some(Ok(raw)) => {
                        if let Some(text) = reader.accept(&raw) {
                            emit(text, reader.cursor());
                        }
                        if exited {
                            stall.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(%container, "log stream cut: {e}");
                        break;
                    }
                    None => break,
                },
                changed = pods.changed(), if !exited => {
                    let done = changed.is_err() || terminated(pods.borrow().as_ref(), &container);
                    if done {
                        exited = true;
                        stall.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                    }
                }
                () = &mut stall => {
                    tracing::warn!(%container, "log stream stalled after the container exited; reading the rest directly");
                    break;
                }
            }
        }
        let done = exited || terminated(pods.borrow().as_ref(), &container);
        if done {
            return read_rest(&api, &pod, &container, &mut cursor, emit).await;
        }
        // Often the stream ended because the container did, and the watch has not said so yet:
        // its next change ends the pause early.
        tracing::debug!(%container, "log stream ended while the container runs; reopening");
        let _ = tokio::time::timeout(RECONNECT_PAUSE, pods.changed()).await;
    }
}

/// Plain requests for whatever the cursor has not delivered yet, repeated while they still
/// bring new lines: an answer can end early (cut short on its way through the API server, or
/// read while the runtime still copies the container's output), and only an answer with
/// nothing new shows that the log is read to its end.
async fn read_rest(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    cursor: &mut Cursor,
    emit: impl Fn(&str, &Cursor),
) {
    for _ in 0..REST_READS {
        let params = LogParams {
            container: Some(container.to_owned()),
            timestamps: true,
            since_time: cursor.since(),
            ..Default::default()
        };
        let read = || api.logs(pod, &params);
        let text = match super::retry::retrying("reading the log", Duration::from_secs(10), read).await {
            Ok(text) => text,
            Err(e) => {
                tracing::debug!(%container, "cannot read the rest of the log: {e}");
                return;
            }
        };
        let mut reader = cursor.reader();
        let mut new = 0;
        for raw in text.lines() {
            if let Some(line) = reader.accept(raw) {
                emit(line, reader.cursor());
                new += 1;
            }
        }
        if new == 0 {
            return;
        }
        tokio::time::sleep(REST_PAUSE).await;
    }
    tracing::warn!(%container, "the log was still growing after {REST_READS} reads; stopped reading");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_stream_skips_exactly_what_was_delivered() {
        let mut cursor = Cursor::default();
        let first = [
            "2026-01-01T00:00:01.5Z a",
            "2026-01-01T00:00:02.25Z b",
            "2026-01-01T00:00:02.25Z c",
        ];
        let mut r = cursor.reader();
        let got: Vec<_> = first.iter().filter_map(|l| r.accept(l)).collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(cursor.since().unwrap().to_string(), "2026-01-01T00:00:02Z");
        // Reopened from 00:00:02: the server repeats b and c, then a third line at the same instant.
        let again = [
            "2026-01-01T00:00:02.25Z b",
            "2026-01-01T00:00:02.25Z c",
            "2026-01-01T00:00:02.25Z d",
            "2026-01-01T00:00:03Z e",
        ];
        let mut r = cursor.reader();
        let got: Vec<_> = again.iter().filter_map(|l| r.accept(l)).collect();
        assert_eq!(got, ["d", "e"]);
    }

    #[test]
    fn since_never_rounds_up() {
        let mut cursor = Cursor::default();
        cursor.reader().accept("2026-01-01T00:00:01.9Z late");
        assert_eq!(cursor.since().unwrap().to_string(), "2026-01-01T00:00:01Z");
    }
}
