//! Reading a pod's container statuses, init and regular alike, by container name.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Every container status of the pod: init containers first, then regular ones.
pub fn all(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    pod.status.iter().flat_map(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
    })
}

/// The status of the container called `name`, if the kubelet reported one yet.
pub fn of<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    all(pod).find(|s| s.name == name)
}

/// Whether `container` has exited.
pub fn terminated(pod: &Pod, container: &str) -> bool {
    of(pod, container)
        .and_then(|s| s.state.as_ref())
        .is_some_and(|s| s.terminated.is_some())
}

/// Whether `container` has ever run: it runs, has exited, or ran before a restart.
pub fn ever_ran(pod: &Pod, container: &str) -> bool {
    of(pod, container).is_some_and(|s| {
        let now = s.state.as_ref();
        now.is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state.as_ref().is_some_and(|st| st.terminated.is_some())
    })
}

/// Whether the pod has finished (phase Succeeded or Failed): nothing in it runs any more, so it
/// can be deleted at once, as Kubernetes' pod garbage collector does.
pub fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether any container of the pod, init containers included, is running.
pub fn running(pod: &Pod) -> bool {
    all(pod).any(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
}

/// Whether the pod has finished and nothing in it runs any more. Not the same as
/// [`finished`]: a pod that fails its `activeDeadlineSeconds` is `Failed` at once, while the
/// kubelet is still stopping its containers (seen on v1.20).
pub fn stopped(pod: &Pod) -> bool {
    finished(pod) && !running(pod)
}
