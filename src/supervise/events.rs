//! The pod's Kubernetes events: why a pod did not start is usually only written there.

use k8s_openapi::api::core::v1::Event;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;

use crate::claim::Warrant;
use crate::report::EventReport;

/// Events about the pod with `uid` (never those of an earlier pod of the same name), oldest first.
pub async fn for_pod(
    client: kube::Client,
    warrant: &Warrant,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Vec<EventReport>, kube::Error> {
    let api: Api<Event> = Api::namespaced(client, ns);
    let fields = format!("involvedObject.name={name},involvedObject.uid={uid}");
    let params = ListParams::default().fields(&fields);
    let list = super::retry::retrying("listing events", Duration::from_secs(10), warrant, || {
        api.list(&params)
    })
    .await?;
    let mut events: Vec<EventReport> = list
        .items
        .into_iter()
        .map(|e| EventReport {
            kind: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            count: e.count.unwrap_or(1),
            last_seen: e
                .last_timestamp
                .map(|t| t.0)
                .or(e.event_time.map(|t| t.0))
                .or(e.metadata.creation_timestamp.map(|t| t.0)),
        })
        .collect();
    // Sources stamp with different precision (seconds vs microseconds): compare whole seconds,
    // keeping the server's order within one.
    events.sort_by_key(|e| e.last_seen.map(|t| t.as_second()));
    Ok(events)
}

/// The registry's answer to the latest failed pull of `container`'s image, from the events.
pub fn last_pull_error(events: &[EventReport], image: &str) -> Option<String> {
    let prefix = format!("Failed to pull image \"{image}\": ");
    events
        .iter()
        .rev()
        .find_map(|e| e.message.strip_prefix(&prefix).map(String::from))
}
