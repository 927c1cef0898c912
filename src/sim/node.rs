//! One pod's life on the simulated node: what the kubelet, the runtime, the registry and the
//! disruptions of the neighbouring modules share about it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::faults::Faults;
use super::store::Store;

/// One pod's life on the node.
pub(super) struct Node {
    pub(super) store: Arc<Store>,
    pub(super) faults: Arc<Faults>,
    pub(super) ns: String,
    pub(super) name: String,
    pub(super) uid: String,
    /// Containers are removed as soon as they exit (see `Faults::remove_containers`).
    pub(super) removes_containers: bool,
}

impl Node {
    pub(super) fn update(&self, f: impl FnOnce(&mut Pod)) -> Option<Pod> {
        self.store.update_pod(&self.ns, &self.name, &self.uid, f)
    }

    pub(super) fn event(&self, pod: &Pod, kind: &str, reason: &str, message: &str) {
        self.store.record_event(pod, kind, reason, message, "kubelet");
    }

    /// Waits until `seen` says something of the pod (`None` once it is removed), re-reading the
    /// store on every change rather than trusting a lagged channel. `None` when the store closes.
    pub(super) async fn until<T>(&self, seen: impl Fn(Option<&Pod>) -> Option<T>) -> Option<T> {
        let mut changes = self.store.subscribe();
        loop {
            if let Some(found) = seen(self.store.get_pod(&self.ns, &self.name, &self.uid).as_ref()) {
                return Some(found);
            }
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
                return None;
            }
        }
    }
}
