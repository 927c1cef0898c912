//! kpo's own deletions of running pods (`kpo delete`, `kpo gc`), marked on the pod first so that
//! its supervisor never takes them for a disruption — an eviction or a drain, which a retry may
//! heal — and retries the run.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};

/// The annotation a kpo command puts on a pod before it deletes it: who stopped it.
pub const ANNOTATION_STOPPED_BY: &str = "kpo.dev/stopped-by";

/// Marks the pod with `uid` as stopped by `by` (`"kpo delete"`, `"kpo gc"`), then deletes it,
/// both only if it is still that pod.
///
/// # Errors
/// The API server's, for either request (a UID mismatch among them).
pub async fn stop(
    api: &Api<Pod>,
    name: &str,
    uid: &str,
    by: &str,
    grace: Option<u32>,
) -> Result<(), kube::Error> {
    // A merge patch that names the UID fails if the pod by that name is another one.
    let mark = serde_json::json!({"metadata": {"uid": uid, "annotations": {ANNOTATION_STOPPED_BY: by}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&mark))
        .await?;
    let params = DeleteParams {
        grace_period_seconds: grace,
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    };
    api.delete(name, &params).await.map(drop)
}

/// Who of kpo stopped the pod, if a kpo command did.
pub fn stopped_by(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_STOPPED_BY)
        .map(String::as_str)
}
