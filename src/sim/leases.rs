//! The `coordination.k8s.io/v1` Leases of the simulated API server, with the real API's
//! optimistic concurrency: a create of an existing Lease is 409 AlreadyExists, a replace or a
//! delete with a stale `resourceVersion` is 409 Conflict — what makes a Lease a claim. A Lease
//! owned by pods goes with the last of them (see `Inner::collect_orphans`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

use super::handlers::{Params, Sim, not_found, status};
use super::select::Selector;

fn parse(body: &Bytes) -> Result<Lease, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid Lease: {e}"))
}

fn conflict(name: &str) -> Response {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

pub async fn create(State(sim): State<Sim>, Path(ns): Path<String>, body: Bytes) -> Response {
    let mut lease = match parse(&body) {
        Ok(l) => l,
        Err(e) => return status(400, "BadRequest", e),
    };
    let name = lease.metadata.name.clone().unwrap_or_default();
    let mut inner = sim.store.lock();
    if inner.leases.contains_key(&(ns.clone(), name.clone())) {
        return status(
            409,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    inner.rv += 1;
    lease.metadata.namespace = Some(ns.clone());
    lease.metadata.resource_version = Some(inner.rv.to_string());
    lease.metadata.uid = Some(super::validate::uid());
    inner.leases.insert((ns, name), lease.clone());
    inner.collect_orphans();
    (StatusCode::CREATED, Json(lease)).into_response()
}

pub async fn list(State(sim): State<Sim>, Path(ns): Path<String>, params: Params) -> Response {
    let selector = match Selector::from_params(&params) {
        Ok(s) => s,
        Err(m) => return status(400, "BadRequest", m),
    };
    let inner = sim.store.lock();
    let items: Vec<&Lease> = inner
        .leases
        .iter()
        .filter(|((n, _), l)| *n == ns && selector.matches(*l))
        .map(|(_, l)| l)
        .collect();
    Json(serde_json::json!({
        "kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": items,
    }))
    .into_response()
}

pub async fn read(State(sim): State<Sim>, Path((ns, name)): Path<(String, String)>) -> Response {
    match sim.store.lock().leases.get(&(ns, name.clone())) {
        Some(lease) => Json(lease.clone()).into_response(),
        None => not_found("leases.coordination.k8s.io", &name),
    }
}

pub async fn replace(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut lease = match parse(&body) {
        Ok(l) => l,
        Err(e) => return status(400, "BadRequest", e),
    };
    let mut inner = sim.store.lock();
    let Some(current) = inner.leases.get(&(ns.clone(), name.clone())) else {
        return not_found("leases.coordination.k8s.io", &name);
    };
    let asked = lease.metadata.resource_version.as_deref();
    if asked.is_some_and(|rv| Some(rv) != current.metadata.resource_version.as_deref()) {
        return conflict(&name);
    }
    lease.metadata.uid = current.metadata.uid.clone();
    inner.rv += 1;
    lease.metadata.namespace = Some(ns.clone());
    lease.metadata.resource_version = Some(inner.rv.to_string());
    inner.leases.insert((ns, name), lease.clone());
    inner.collect_orphans();
    Json(lease).into_response()
}

pub async fn delete(
    State(sim): State<Sim>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let wanted = options["preconditions"]["resourceVersion"]
        .as_str()
        .map(String::from);
    let mut inner = sim.store.lock();
    let Some(current) = inner.leases.get(&(ns.clone(), name.clone())) else {
        return not_found("leases.coordination.k8s.io", &name);
    };
    if wanted.is_some() && wanted.as_deref() != current.metadata.resource_version.as_deref() {
        return conflict(&name);
    }
    inner.leases.remove(&(ns, name));
    Json(serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})).into_response()
}
