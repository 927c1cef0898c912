//! How the kubelet writes a pod's status: container states, the phase computed from them, and
//! conditions.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::node::Node;

impl Node {
    pub(super) fn set_waiting(&self, container: &str, reason: &str, message: &str) {
        self.set_state(
            container,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                }),
                ..Default::default()
            },
        );
    }

    pub(super) fn set_state(&self, container: &str, state: ContainerState) {
        self.update(|p| {
            // A v1.20 kubelet never reports the containers of a pod that failed its deadline
            // again: they stay `running` in its status after they were killed.
            let deadline_exceeded =
                p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("DeadlineExceeded");
            let running = state.running.is_some();
            let Some(status) = status_of_mut(p, container).filter(|_| !deadline_exceeded) else {
                return;
            };
            if state.terminated.is_some() {
                status.last_state = None;
            }
            status.started = Some(running || status.started == Some(true));
            status.ready = running;
            status.state = Some(state);
            recompute_phase(p);
        });
    }
}

pub(super) fn waiting(c: &Container, reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status_of_mut<'a>(pod: &'a mut Pod, name: &str) -> Option<&'a mut ContainerStatus> {
    let status = pod.status.as_mut()?;
    status
        .init_container_statuses
        .iter_mut()
        .flatten()
        .chain(status.container_statuses.iter_mut().flatten())
        .find(|s| s.name == name)
}

/// Pod phase from container states, as the kubelet computes it for `restartPolicy: Never`.
fn recompute_phase(pod: &mut Pod) {
    let Some(status) = pod.status.as_mut() else {
        return;
    };
    let init_failed = status.init_container_statuses.iter().flatten().any(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    });
    let regular = status.container_statuses.as_deref().unwrap_or_default();
    let terminated: Vec<i32> = regular
        .iter()
        .filter_map(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .map(|t| t.exit_code)
        })
        .collect();
    let any_waiting = regular
        .iter()
        .any(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()));
    let phase = if init_failed {
        "Failed"
    } else if !regular.is_empty() && terminated.len() == regular.len() {
        if terminated.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if any_waiting {
        "Pending"
    } else {
        "Running"
    };
    let all_ready = !regular.is_empty() && regular.iter().all(|s| s.ready);
    status.phase = Some(phase.into());
    let ready = if all_ready { "True" } else { "False" };
    set_condition(pod, "ContainersReady", ready, None, None);
    set_condition(pod, "Ready", ready, None, None);
}

pub(super) fn set_condition(
    pod: &mut Pod,
    kind: &str,
    value: &str,
    reason: Option<&str>,
    message: Option<&str>,
) {
    let conditions = pod
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let now = Some(Time(Timestamp::now()));
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) if c.status == value => {}
        Some(c) => {
            c.status = value.into();
            c.reason = reason.map(Into::into);
            c.message = message.map(Into::into);
            c.last_transition_time = now;
        }
        None => conditions.push(PodCondition {
            type_: kind.into(),
            status: value.into(),
            reason: reason.map(Into::into),
            message: message.map(Into::into),
            last_transition_time: now,
            ..Default::default()
        }),
    }
}
