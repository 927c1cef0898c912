//! The simulated API server's HTTP surface: the subset of the Kubernetes REST API kpo uses,
//! with the real wire formats (JSON objects, `Status` errors, newline-delimited watch events,
//! plain-text logs) so the real `kube` client can talk to it.

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::faults::Target;
use super::handlers::{Params, Sim, status};
use super::select::Selector;
use super::{leases, pod_log, pods};

pub fn router(sim: Sim) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api/v1/namespaces", post(create_namespace))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(pods::list_or_watch)
                .post(pods::create)
                .delete(pods::delete_collection),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(pods::read).delete(pods::delete).patch(pods::patch),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log::serve))
        .route("/api/v1/namespaces/{ns}/pods/{name}/eviction", post(pods::evict))
        .route("/api/v1/namespaces/{ns}/events", get(list_events))
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            get(leases::list).post(leases::create),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(leases::read).put(leases::replace).delete(leases::delete),
        )
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults))
        .with_state(sim)
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
    if sim.faults.is_down() || sim.faults.cut_off(authorization) {
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
    sim.tally
        .request(req.method() == Method::DELETE, target, path, query);
    if req.method() != Method::GET {
        let client = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(String::from);
        sim.tally.write(client, req.method().as_str(), path);
    }
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
