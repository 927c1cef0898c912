//! The simulated API server's HTTP surface: the subset of the Kubernetes REST API kpo uses,
//! with the real wire formats (JSON objects, `Status` errors, newline-delimited watch events,
//! plain-text logs) so the real `kube` client can talk to it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::SinkExt;
use futures::channel::mpsc;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::faults::{Faults, Target};
use super::kubelet;
use super::select::Selector;
use super::store::{ChangeKind, Store};
use super::validate;

/// What every handler can reach.
#[derive(Clone)]
pub struct Sim {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
}

type Params = Query<HashMap<String, String>>;

pub fn router(sim: Sim) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api/v1/namespaces", post(create_namespace))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_or_watch_pods).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod).delete(delete_pod).patch(patch_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route("/api/v1/namespaces/{ns}/pods/{name}/eviction", post(evict_pod))
        .route("/api/v1/namespaces/{ns}/events", get(list_events))
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults))
        .with_state(sim)
}

/// A Kubernetes `Status` error body, as every API error is answered.
pub fn status(code: u16, reason: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

fn not_found(what: &str, name: &str) -> Response {
    status(404, "NotFound", format!("{what} \"{name}\" not found"))
}

async fn inject_faults(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let latency = sim.faults.current_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !sim.faults.accepts(authorization) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    if sim.faults.is_down() {
        let mut r = status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (simulated outage)",
        );
        r.headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return r;
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let target = match (req.method(), path) {
        (&Method::POST, _) => Target::Create,
        (_, p) if p.ends_with("/log") => Target::Logs,
        (_, p) if p.ends_with("/events") => Target::Events,
        _ if query.contains("watch=true") || query.contains("watch=1") => Target::Watch,
        _ => Target::Any,
    };
    match sim.faults.take_failure(target) {
        Some(429) => {
            let mut r = status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        Some(403) => status(
            403,
            "Forbidden",
            "pods is forbidden: User \"kpo\" cannot create resource \"pods\" (simulated fault)",
        ),
        Some(code) => status(
            code,
            "InternalError",
            "an error on the server (\"simulated fault\") has prevented the request from succeeding",
        ),
        None => next.run(req).await,
    }
}

async fn version() -> Json<Value> {
    Json(json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kpo-sim",
        "platform": "linux/amd64", "goVersion": "kpo-sim",
    }))
}

async fn create_pod(State(sim): State<Sim>, Path(ns): Path<String>, params: Params, body: Bytes) -> Response {
    let mut pod: Pod = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return status(
                400,
                "BadRequest",
                format!("the object provided is unrecognized: {e}"),
            );
        }
    };
    let dry_run = params.get("dryRun").is_some_and(|d| d == "All");
    if let Some(body_ns) = &pod.metadata.namespace
        && body_ns != &ns
    {
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        );
    }
    if pod.metadata.name.is_none()
        && let Some(prefix) = &pod.metadata.generate_name
    {
        pod.metadata.name = Some(format!("{prefix}{}", crate::names::random_suffix(5)));
    }
    let mut inner = sim.store.lock();
    if !inner.namespaces.contains(&ns) {
        return not_found("namespaces", &ns);
    }
    if let Err(invalid) = validate::pod(&pod) {
        return invalid.into_response();
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let enforced = inner
        .namespace_labels
        .get(&ns)
        .and_then(|l| l.get(crate::pss::ENFORCE_LABEL))
        .map(String::as_str);
    if enforced == Some("restricted") {
        let violations = crate::pss::restricted_violations(&pod);
        if !violations.is_empty() {
            let message = format!(
                "pods \"{name}\" is forbidden: violates PodSecurity \"restricted:latest\": {}",
                violations.join("; ")
            );
            return status(403, "Forbidden", message);
        }
    }
    if inner.pods.contains_key(&(ns.clone(), name.clone())) {
        return status(409, "AlreadyExists", format!("pods \"{name}\" already exists"));
    }
    pod.metadata.namespace = Some(ns.clone());
    validate::apply_defaults(&mut pod);
    if dry_run {
        pod.metadata.resource_version = None;
        return (StatusCode::CREATED, Json(pod)).into_response();
    }
    let pod = sim.store.commit(&mut inner, ChangeKind::Added, pod);
    drop(inner);
    tokio::spawn(kubelet::run(sim.store.clone(), sim.faults.clone(), pod.clone()));
    (StatusCode::CREATED, Json(pod)).into_response()
}

/// Creates a namespace (with its labels: a Pod Security level to enforce, say).
async fn create_namespace(
    State(sim): State<Sim>,
    Json(namespace): Json<k8s_openapi::api::core::v1::Namespace>,
) -> Response {
    let Some(name) = namespace.metadata.name.clone() else {
        return status(
            422,
            "Invalid",
            "Namespace \"\" is invalid: metadata.name: Required value",
        );
    };
    let mut inner = sim.store.lock();
    if !inner.namespaces.insert(name.clone()) {
        return status(
            409,
            "AlreadyExists",
            format!("namespaces \"{name}\" already exists"),
        );
    }
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    inner.namespace_labels.insert(name, labels.into_iter().collect());
    (StatusCode::CREATED, Json(namespace)).into_response()
}

/// The Eviction API, as a v1.20 API server without disruption budgets answers it: a graceful
/// deletion, with no DisruptionTarget condition (Kubernetes sets one from 1.26 on).
async fn evict_pod(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let eviction: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let options = eviction.get("deleteOptions").cloned().unwrap_or(Value::Null);
    let options = Bytes::from(serde_json::to_vec(&options).unwrap_or_default());
    let deleted = delete_pod(State(sim), Path((ns, name)), Query(HashMap::new()), options).await;
    if !deleted.status().is_success() {
        return deleted;
    }
    let done =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    (StatusCode::CREATED, Json(done)).into_response()
}

/// A JSON merge patch (RFC 7396) of a pod, as `kubectl annotate` sends; a `metadata.uid` in the
/// patch is a precondition, as on the real API server.
async fn patch_pod(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return status(400, "BadRequest", format!("the patch is not JSON: {e}")),
    };
    let mut inner = sim.store.lock();
    let Some(pod) = inner.pods.get(&(ns, name.clone())).cloned() else {
        return not_found("pods", &name);
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(wanted) = patch.pointer("/metadata/uid").and_then(Value::as_str)
        && wanted != uid
    {
        let message =
            format!("Precondition failed: UID in precondition: {wanted}, UID in object meta: {uid}");
        return status(409, "Conflict", message);
    }
    let mut value = serde_json::to_value(&pod).unwrap_or(Value::Null);
    json_patch::merge(&mut value, &patch);
    let patched: Pod = match serde_json::from_value(value) {
        Ok(p) => p,
        Err(e) => return status(422, "Invalid", format!("the patched pod is invalid: {e}")),
    };
    let pod = sim.store.commit(&mut inner, ChangeKind::Modified, patched);
    Json(pod).into_response()
}

async fn get_pod(State(sim): State<Sim>, Path((ns, name)): Path<(String, String)>) -> Response {
    match sim.store.lock().pods.get(&(ns, name.clone())) {
        Some(pod) => Json(pod.clone()).into_response(),
        None => not_found("pods", &name),
    }
}

async fn delete_pod(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Response {
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let requested = options
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| params.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    let mut inner = sim.store.lock();
    let Some(mut pod) = inner.pods.get(&(ns, name.clone())).cloned() else {
        return not_found("pods", &name);
    };
    let spec_grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let grace = requested.unwrap_or(spec_grace).max(0);
    let scheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let finished = matches!(phase(&pod), "Succeeded" | "Failed");
    if grace == 0 || !scheduled || finished {
        // Nothing is running (or the caller forces it): the object goes at once.
        let pod = sim.store.commit(&mut inner, ChangeKind::Deleted, pod);
        return Json(pod).into_response();
    }
    let shorter = pod
        .metadata
        .deletion_grace_period_seconds
        .is_none_or(|g| grace < g);
    if shorter {
        pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        pod = sim.store.commit(&mut inner, ChangeKind::Modified, pod);
    }
    Json(pod).into_response()
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

async fn list_or_watch_pods(State(sim): State<Sim>, Path(ns): Path<String>, params: Params) -> Response {
    let selector = match Selector::from_params(&params) {
        Ok(s) => s,
        Err(m) => return status(400, "BadRequest", m),
    };
    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return watch_pods(sim, ns, selector, &params);
    }
    let inner = sim.store.lock();
    let items: Vec<&Pod> = inner
        .pods
        .values()
        .filter(|p| p.metadata.namespace.as_deref() == Some(&ns) && selector.matches(p))
        .collect();
    Json(json!({
        "kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": items,
    }))
    .into_response()
}

fn watch_pods(sim: Sim, ns: String, selector: Selector, params: &HashMap<String, String>) -> Response {
    let since: Option<u64> = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let bookmarks = params.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let relevant = move |pod: &Pod| pod.metadata.namespace.as_deref() == Some(&ns) && selector.matches(pod);

    let inner = sim.store.lock();
    let gone = since.is_some_and(|rv| rv < inner.oldest_rv) || (since.is_some() && sim.faults.take_gone());
    let mut replay: Vec<(ChangeKind, Arc<Pod>)> = match since {
        _ if gone => Vec::new(),
        Some(rv) => inner
            .history
            .iter()
            .filter(|c| c.rv > rv)
            .map(|c| (c.kind, c.pod.clone()))
            .collect(),
        None => inner
            .pods
            .values()
            .map(|p| (ChangeKind::Added, Arc::new(p.clone())))
            .collect(),
    };
    replay.retain(|(_, p)| relevant(p));
    let mut last_rv = inner.rv;
    let mut changes = sim.store.subscribe();
    drop(inner);
    let drop_after = sim.faults.take_watch_drop();
    let faults = sim.faults.clone();

    tokio::spawn(async move {
        if gone {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {} ({})", since.unwrap_or_default(), last_rv),
                "reason": "Expired", "code": 410});
            let _ = tx.send(Ok(event_line("ERROR", &status))).await;
            return;
        }
        let mut sent = 0usize;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(Duration::from_secs(5));
        bookmark.tick().await;
        for (kind, pod) in replay {
            if tx.send(Ok(event_line(kind.as_str(), &*pod))).await.is_err() {
                return;
            }
            sent += 1;
        }
        loop {
            if drop_after.is_some_and(|n| sent >= n) {
                return;
            }
            tokio::select! {
                () = faults.outage_started() => return,
                change = changes.recv() => match change {
                    Ok(c) if relevant(&c.pod) => {
                        last_rv = c.rv;
                        if tx.send(Ok(event_line(c.kind.as_str(), &*c.pod))).await.is_err() {
                            return;
                        }
                        sent += 1;
                    }
                    Ok(c) => last_rv = c.rv,
                    // A slow watcher lost events: end the stream, the client resumes from its version.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
                _ = bookmark.tick(), if bookmarks => {
                    let mark = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(Ok(event_line("BOOKMARK", &mark))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(rx))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot build response"))
}

fn event_line(kind: &str, object: &impl serde::Serialize) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

async fn pod_log(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    let Some(pod) = sim.store.lock().pods.get(&(ns, name.clone())).cloned() else {
        return not_found("pods", &name);
    };
    let container = match kubelet::log_container(&pod, params.get("container").map(String::as_str)) {
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
    } else {
        sim.faults.take_log_read_cut()
    };
    let stall = follow && sim.faults.take_log_stall();
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
        let mut sent = 0usize;
        // The kubelet stamps the first record of a response, and after that every record (v1.20)
        // or only those that start a line (newer kubelets).
        let mut line_start = true;
        loop {
            if faults.is_down() {
                return;
            }
            let notified = store.log_grew.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, finished) = {
                let inner = store.lock();
                match inner.logs.get(&key) {
                    Some(log) => (log.records[next.min(log.records.len())..].to_vec(), log.finished),
                    None => (Vec::new(), false),
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
                if out.len() >= 64 * 1024 && tx.send(Ok(Bytes::from(std::mem::take(&mut out)))).await.is_err()
                {
                    return;
                }
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
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

async fn list_events(State(sim): State<Sim>, Path(ns): Path<String>, params: Params) -> Response {
    let selector = match Selector::from_params(&params) {
        Ok(s) => s,
        Err(m) => return status(400, "BadRequest", m),
    };
    let inner = sim.store.lock();
    let items: Vec<_> = inner
        .events
        .iter()
        .filter(|e| e.metadata.namespace.as_deref() == Some(&ns) && selector.matches(*e))
        .collect();
    Json(json!({
        "kind": "EventList", "apiVersion": "v1",
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": items,
    }))
    .into_response()
}
