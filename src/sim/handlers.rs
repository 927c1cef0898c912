//! What every handler of the simulated API server has: the shared state, the query
//! parameters, and the API's error replies (a `Status` body).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::Faults;
use super::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct Sim {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub tally: Arc<super::tally::Tally>,
}

pub type Params = Query<HashMap<String, String>>;

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

pub fn not_found(what: &str, name: &str) -> Response {
    status(404, "NotFound", format!("{what} \"{name}\" not found"))
}
