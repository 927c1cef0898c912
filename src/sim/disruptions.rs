//! Disruptions of a running pod as the control plane and the kubelet make them: a preemption
//! (condition, event, deletion) and an eviction (phase Failed, reason Evicted).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::NODE_NAME;
use super::node::Node;
use super::pod_status::set_condition;

impl Node {
    /// Waits until the pod runs, then preempts it as the scheduler does: a DisruptionTarget
    /// condition and a Preempted event, then a deletion.
    pub(super) async fn preemption(&self) {
        self.wait_running().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let message = "Kubernetes default scheduler: preempting to accommodate a higher priority pod";
        let Some(pod) = self.update(|p| {
            set_condition(
                p,
                "DisruptionTarget",
                "True",
                Some("PreemptionByScheduler"),
                Some(message),
            );
            p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            p.metadata.deletion_grace_period_seconds = Some(0);
        }) else {
            return;
        };
        let why = format!("Preempted by pod {} on node {NODE_NAME}", super::validate::uid());
        self.store
            .record_event(&pod, "Normal", "Preempted", &why, "default-scheduler");
    }

    /// Waits until the pod runs (or is gone).
    async fn wait_running(&self) {
        let running = |p: Option<&Pod>| {
            p.is_none_or(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .then_some(())
        };
        self.until(running).await;
    }

    /// Waits until the pod runs, then evicts it: containers killed, phase Failed, reason
    /// Evicted and a DisruptionTarget condition, in one status update, as the kubelet writes it.
    pub(super) async fn eviction(&self) {
        self.wait_running().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 20Mi. ";
        let Some(pod) = self.update(|p| {
            let now = Some(Time(Timestamp::now()));
            let status = p.status.get_or_insert_with(Default::default);
            for s in status
                .container_statuses
                .iter_mut()
                .flatten()
                .chain(status.init_container_statuses.iter_mut().flatten())
            {
                let started_at = s
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|r| r.started_at.clone());
                if s.state.as_ref().is_some_and(|st| st.terminated.is_none()) {
                    s.state = Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: 137,
                            reason: Some("Error".into()),
                            started_at,
                            finished_at: now.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    s.ready = false;
                }
            }
            status.phase = Some("Failed".into());
            status.reason = Some("Evicted".into());
            status.message = Some(message.into());
            set_condition(
                p,
                "DisruptionTarget",
                "True",
                Some("TerminationByKubelet"),
                Some(message),
            );
        }) else {
            return;
        };
        for s in crate::status::all(&pod) {
            self.store
                .finish_log(&self.uid, &s.name, self.faults.log_limits());
        }
        self.event(&pod, "Warning", "Evicted", message);
    }
}
