//! The pods resource of the simulated API server: create (with admission and validation), get,
//! patch, delete with grace periods and preconditions, evict, list and watch.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::channel::mpsc;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::handlers::{Params, Sim, not_found, status};
use super::kubelet;
use super::select::Selector;
use super::store::ChangeKind;
use super::validate;

pub(super) async fn create(
    State(sim): State<Sim>,
    Path(ns): Path<String>,
    params: Params,
    body: Bytes,
) -> Response {
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
    let run_id = pod.metadata.labels.as_ref().and_then(|l| l.get("kpo.dev/run-id"));
    sim.tally.created(run_id.map(String::as_str), inner.pods.len());
    drop(inner);
    tokio::spawn(kubelet::run(sim.store.clone(), sim.faults.clone(), pod.clone()));
    (StatusCode::CREATED, Json(pod)).into_response()
}

/// The Eviction API, as a v1.20 API server without disruption budgets answers it: a graceful
/// deletion, with no DisruptionTarget condition (Kubernetes sets one from 1.26 on).
pub(super) async fn evict(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let eviction: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let options = eviction.get("deleteOptions").cloned().unwrap_or(Value::Null);
    let options = Bytes::from(serde_json::to_vec(&options).unwrap_or_default());
    let deleted = delete(State(sim), Path((ns, name)), Query(HashMap::new()), options).await;
    if !deleted.status().is_success() {
        return deleted;
    }
    let done =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    (StatusCode::CREATED, Json(done)).into_response()
}

/// A JSON merge patch (RFC 7396) of a pod, as `kubectl annotate` sends; a `metadata.uid` in the
/// patch is a precondition, as on the real API server.
pub(super) async fn patch(
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
    if let Err(invalid) = validate::update(&pod, &patched) {
        return invalid.into_response();
    }
    let pod = sim.store.commit(&mut inner, ChangeKind::Modified, patched);
    Json(pod).into_response()
}

pub(super) async fn read(State(sim): State<Sim>, Path((ns, name)): Path<(String, String)>) -> Response {
    match sim.store.lock().pods.get(&(ns, name.clone())) {
        Some(pod) => Json(pod.clone()).into_response(),
        None => not_found("pods", &name),
    }
}

pub(super) async fn delete(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Response {
    let requested = requested_grace(&params, &body);
    let mut inner = sim.store.lock();
    let Some(pod) = inner.pods.get(&(ns, name.clone())).cloned() else {
        return not_found("pods", &name);
    };
    Json(delete_one(&sim, &mut inner, pod, requested)).into_response()
}

/// `DELETE .../pods?labelSelector=…` (deletecollection): every selected pod, as one DELETE each.
pub(super) async fn delete_collection(
    State(sim): State<Sim>,
    Path(ns): Path<String>,
    params: Params,
    body: Bytes,
) -> Response {
    let selector = match Selector::from_params(&params) {
        Ok(s) => s,
        Err(m) => return status(400, "BadRequest", m),
    };
    let requested = requested_grace(&params, &body);
    let mut inner = sim.store.lock();
    let selected: Vec<Pod> = inner
        .pods
        .iter()
        .filter(|((n, _), p)| *n == ns && selector.matches(*p))
        .map(|(_, p)| p.clone())
        .collect();
    let items: Vec<Pod> = selected
        .into_iter()
        .map(|pod| delete_one(&sim, &mut inner, pod, requested))
        .collect();
    Json(serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}))
        .into_response()
}

/// The grace period a DELETE asks for, in its body (DeleteOptions) or its query.
fn requested_grace(params: &Params, body: &Bytes) -> Option<i64> {
    let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    options
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| params.get("gracePeriodSeconds").and_then(|g| g.parse().ok()))
}

/// Deletes `pod` as the API server does: at once when nothing runs in it (or the caller forces
/// it), else gracefully — a deletion timestamp, and the kubelet stops it.
fn delete_one(sim: &Sim, inner: &mut super::store::Inner, mut pod: Pod, requested: Option<i64>) -> Pod {
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
        return sim.store.commit(inner, ChangeKind::Deleted, pod);
    }
    let shorter = pod
        .metadata
        .deletion_grace_period_seconds
        .is_none_or(|g| grace < g);
    if shorter {
        pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        pod = sim.store.commit(inner, ChangeKind::Modified, pod);
    }
    pod
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub(super) async fn list_or_watch(
    State(sim): State<Sim>,
    Path(ns): Path<String>,
    params: Params,
) -> Response {
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
