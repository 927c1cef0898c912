//! The simulated scheduler's one question: does the pod fit the one node?

use k8s_openapi::api::core::v1::Pod;

use super::NODE_NAME;

/// Annotation that keeps a pod from ever being scheduled.
pub const SCHEDULE_ANNOTATION: &str = "pod.sim.kpo.dev/schedule";

/// What the node offers; pods requesting more stay Pending with the scheduler's reason.
const NODE_CPU_MILLIS: f64 = 4000.0;

const NODE_MEMORY_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

const NODE_LABELS: [(&str, &str); 3] = [
    ("kubernetes.io/hostname", NODE_NAME),
    ("kubernetes.io/os", "linux"),
    ("kubernetes.io/arch", "amd64"),
];

/// Why the scheduler would leave this pod Pending on the simulated node, in its own words.
pub(super) fn unschedulable(pod: &Pod) -> Option<String> {
    let forced = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCHEDULE_ANNOTATION))
        .is_some_and(|v| v == "never");
    if forced {
        return Some("0/1 nodes are available: 1 node(s) were unschedulable.".into());
    }
    let spec = pod.spec.as_ref()?;
    let selector_fits = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| NODE_LABELS.iter().any(|(nk, nv)| nk == k && nv == v));
    if !selector_fits {
        return Some("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity.".into());
    }
    let requested = |resource: &str| -> f64 {
        spec.containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .map(|q| crate::names::quantity_value(&q.0))
            .sum()
    };
    let mut short = Vec::new();
    if requested("cpu") * 1000.0 > NODE_CPU_MILLIS {
        short.push("1 Insufficient cpu");
    }
    if requested("memory") > NODE_MEMORY_BYTES {
        short.push("1 Insufficient memory");
    }
    (!short.is_empty()).then(|| format!("0/1 nodes are available: {}.", short.join(", ")))
}
