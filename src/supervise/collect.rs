//! Reading the task's result once the main container has ended, before any clean-up: from the
//! termination message, or from the result sidecar's log once it has printed its frame.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use kube::runtime::wait::await_condition;

use crate::pod::MAIN_CONTAINER;
use crate::result::{self, ResultError, ResultSpec, SIDECAR, Via};

/// The result document, `None` if the task wrote none (and none is required).
pub async fn result(
    api: &Api<Pod>,
    name: &str,
    last: &Pod,
    spec: &ResultSpec,
) -> Result<Option<result::Document>, ResultError> {
    let bytes = match spec.via {
        Via::TerminationMessage => {
            let message = crate::status::of(last, MAIN_CONTAINER)
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.message.as_deref());
            result::from_message(message)?
        }
        Via::Sidecar => from_sidecar(api, name, spec).await?,
    };
    result::document(bytes, spec)
}

async fn from_sidecar(api: &Api<Pod>, name: &str, spec: &ResultSpec) -> Result<Option<Vec<u8>>, ResultError> {
    let done = |pod: Option<&Pod>| pod.is_none_or(|p| crate::status::terminated(p, SIDECAR));
    if tokio::time::timeout(spec.wait, await_condition(api.clone(), name, done))
        .await
        .is_err()
    {
        // The sidecar is still waiting for a file the task never wrote.
        tracing::debug!("no result from the {SIDECAR} sidecar within {:?}", spec.wait);
        return Ok(None);
    }
    let params = LogParams {
        container: Some(SIDECAR.into()),
        ..Default::default()
    };
    let read = || api.logs(name, &params);
    let log = super::retry::retrying("reading the result", std::time::Duration::from_secs(30), read)
        .await
        .map_err(|e| ResultError::Truncated(format!("cannot read the sidecar's log: {e}")))?;
    result::from_frame(&log, spec.max_size)
}
