//! The simulated API server's pod log endpoint: the container's records as the kubelet serves
//! them (`follow`, `timestamps`, `sinceTime`, `tailLines`, `limitBytes`), and its refusals in the API
//! server's words.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use futures::SinkExt;
use futures::channel::mpsc;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::handlers::{Params, Sim, not_found, status};

pub(super) async fn serve(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    let Some(pod) = sim.store.lock().pods.get(&(ns, name.clone())).cloned() else {
        return not_found("pods", &name);
    };
    let container = match log_container(&pod, params.get("container").map(String::as_str)) {
        Ok(c) => c,
        Err(message) => return status(400, "BadRequest", message),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let follow = params.get("follow").is_some_and(|f| f == "true");
    let timestamps = params.get("timestamps").is_some_and(|t| t == "true");
    let since: Option<Timestamp> = match params.get("sinceTime") {
        Some(t) => match t.parse() {
            Ok(t) => Some(t),
            Err(e) => return status(400, "BadRequest", format!("invalid sinceTime {t:?}: {e}")),
        },
        None => params
            .get("sinceSeconds")
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| Timestamp::now() - jiff::SignedDuration::from_secs(s)),
    };
    let tail: Option<usize> = params.get("tailLines").and_then(|t| t.parse().ok());
    let drop_after = if follow {
        sim.faults.take_log_drop()
    } else if tail.is_none() {
        sim.faults.take_log_read_cut()
    } else {
        // A cut is staged for a read of the log, not for a look at its last lines.
        None
    };
    let stall = follow && sim.faults.take_log_stall();
    let throttle = if follow {
        sim.faults.log_stream_rate()
    } else {
        sim.faults.log_read_rate()
    };
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let store = sim.store.clone();
    let faults = sim.faults.clone();

    if sim
        .store
        .lock()
        .removed
        .contains(&(uid.clone(), container.clone()))
    {
        // What a kubelet answers once the runtime has removed the container: a 200 with its
        // own words instead of the log.
        let text = format!(
            "unable to retrieve container logs for containerd://{}",
            "0123456789abcdef".repeat(4)
        );
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(text))
            .unwrap_or_else(|_| status(500, "InternalError", "cannot build response"));
    }
    let whole_line_prefixes = sim.faults.whole_line_prefixes();
    tokio::spawn(async move {
        let key = (uid, container);
        let mut next = {
            let inner = store.lock();
            inner.logs.get(&key).map_or(0, |log| {
                // The kubelet reads only the current file; `tailLines` counts records here.
                let first = log.current;
                tail.map_or(first, |t| first.max(log.records.len().saturating_sub(t)))
            })
        };
        let signal = store.log_signal(&key.0, &key.1);
        let mut seen = false;
        let mut sent = 0usize;
        // The kubelet stamps the first record of a response, and after that every record (v1.20)
        // or only those that start a line (newer kubelets).
        let mut line_start = true;
        loop {
            if faults.is_down() {
                return;
            }
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if tx.is_closed() {
                return;
            }
            let (batch, finished) = {
                let inner = store.lock();
                match inner.logs.get(&key) {
                    Some(log) if follow => {
                        seen = true;
                        // A follower reads the file it opened to its end, then reopens the path.
                        let (from, end) = log.reader_at(next.min(log.records.len()));
                        next = from;
                        (
                            log.records[from..end].to_vec(),
                            log.finished && end == log.records.len(),
                        )
                    }
                    Some(log) => {
                        seen = true;
                        (log.records[next.min(log.records.len())..].to_vec(), log.finished)
                    }
                    // Removed with its pod: nothing more will come.
                    None => (Vec::new(), seen),
                }
            };
            let mut out = Vec::new();
            for record in batch {
                next += 1;
                if since.is_some_and(|s| record.at < s) {
                    continue;
                }
                let from = out.len();
                if timestamps && (line_start || !whole_line_prefixes) {
                    // Nine fractional digits always, as the kubelet writes them (RFC3339NanoFixed).
                    out.extend_from_slice(format!("{:.9} ", record.at).as_bytes());
                }
                line_start = record.ends_line();
                out.extend_from_slice(&record.bytes);
                if drop_after.is_some_and(|n| sent >= n) {
                    // Cut in the middle of the next record, as a connection cut anywhere would.
                    out.truncate(from + (out.len() - from) / 2);
                    let _ = tx.send(Ok(Bytes::from(out))).await;
                    return;
                }
                sent += 1;
                if out.len() >= 64 * 1024 && !send_paced(&mut tx, std::mem::take(&mut out), throttle).await {
                    return;
                }
            }
            if !out.is_empty() && !send_paced(&mut tx, out, throttle).await {
                return;
            }
            if !follow {
                return;
            }
            if finished {
                while stall && !tx.is_closed() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(rx))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build response"))
}

/// Sends `chunk`, then, for a stream slowed to `rate` bytes a second, waits as long as sending
/// it took at that rate. Whether the reader is still there.
async fn send_paced(
    tx: &mut mpsc::Sender<Result<Bytes, Infallible>>,
    chunk: Vec<u8>,
    rate: Option<usize>,
) -> bool {
    let pace = rate.map(|rate| Duration::from_secs_f64(chunk.len() as f64 / rate.max(1) as f64));
    if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
        return false;
    }
    if let Some(pace) = pace {
        tokio::time::sleep(pace).await;
    }
    true
}

/// Which container a log request reads, with the API server's errors for bad requests.
pub fn log_container(pod: &Pod, requested: Option<&str>) -> Result<String, String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let container = match requested {
        Some(c) => c.to_owned(),
        None if spec.containers.len() == 1 => spec.containers[0].name.clone(),
        None => {
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            ));
        }
    };
    if !all.iter().any(|c| c.name == container) {
        return Err(format!("container {container} is not valid for pod {name}"));
    }
    let status = crate::status::of(pod, &container);
    let waiting = status
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let never_ran = status.is_none_or(|s| {
        s.last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .is_none()
    });
    if let Some(w) = waiting
        .filter(|_| never_ran)
        .map(|w| w.reason.clone().unwrap_or_default())
        .or_else(|| status.is_none().then(|| "ContainerCreating".to_owned()))
    {
        return Err(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {w}"
        ));
    }
    Ok(container)
}
