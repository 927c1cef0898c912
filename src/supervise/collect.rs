//! Reading the task's result once the main container has ended, before any clean-up: from the
//! termination message, or from the result sidecar's log once it has printed its frame.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use kube::runtime::wait::await_condition;

use crate::claim::Warrant;
use crate::result::{self, ResultError, ResultSpec, SIDECAR, Via};
use crate::vocabulary::MAIN_CONTAINER;

/// How long an ended sidecar's log may take to show the whole frame.
const LOG_SETTLE: Duration = Duration::from_secs(10);

/// The result document, `None` if the task wrote none (and none is required).
pub async fn result(
    api: &Api<Pod>,
    warrant: &Warrant,
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
        Via::Sidecar => from_sidecar(api, warrant, name, spec).await?,
    };
    result::document(bytes, spec)
}

async fn from_sidecar(
    api: &Api<Pod>,
    warrant: &Warrant,
    name: &str,
    spec: &ResultSpec,
) -> Result<Option<Vec<u8>>, ResultError> {
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
    let read_frame = || async {
        let read = || api.logs(name, &params);
        let log = super::retry::retrying("reading the result", Duration::from_secs(30), warrant, read)
            .await
            .map_err(|e| ResultError::Unreadable(e.to_string()))?;
        result::from_frame(&log, spec.max_size)
    };
    // A log read right after the sidecar ended once lacked the end of the frame (containerd 1.6,
    // in CI: a runtime still copying output, or a read cut short on the way): a frame without
    // its end marker is read again for a while before it counts as truncated.
    let settle = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .without_max_times()
        .with_total_delay(Some(LOG_SETTLE));
    read_frame
        .retry(settle)
        .when(|e| matches!(e, ResultError::Unterminated(_)))
        .notify(|e, wait| tracing::debug!("{e}; reading the log again in {wait:?}"))
        .await
}
