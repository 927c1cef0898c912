//! The supervision state machine: reads each pod snapshot the watch delivers and says what
//! changed and whether the run is over. Pure, so every transition is unit-tested without a cluster.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::vocabulary::MAIN_CONTAINER;
use crate::vocabulary::Outcome;

/// What a snapshot means for the run (the interpreters' verdict is another matter:
/// `vocabulary::Verdict`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Keep watching.
    Continue,
    /// The run is over.
    Done { outcome: Outcome, message: String },
    /// A container cannot pull its image; whether that heals depends on the registry's answer,
    /// which after the first attempt only the pod's events still carry.
    PullFailing {
        container: String,
        message: Option<String>,
    },
}

/// A snapshot's phase and why, as shown to the user; compared to report only changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub phase: String,
    pub detail: Option<String>,
}

/// Follows one pod through its life.
#[derive(Debug, Default)]
pub struct Tracker {
    last: Option<Status>,
    /// Whether the main container has ever been seen running (or finished).
    pub main_started: bool,
    /// Whether the pod has ever been seen on a node.
    pub scheduled: bool,
}

impl Tracker {
    /// Reads a snapshot; returns the new status if it changed, and what it means.
    pub fn observe(&mut self, pod: &Pod) -> (Option<Status>, Reading) {
        let status = status_of(pod);
        let changed = (self.last.as_ref() != Some(&status)).then(|| status.clone());
        self.last = Some(status);
        let main = crate::status::of(pod, MAIN_CONTAINER);
        let main_state = main.and_then(|s| s.state.as_ref());
        if main_state.is_some_and(|s| s.running.is_some() || s.terminated.is_some()) {
            self.main_started = true;
        }
        self.scheduled |= pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        (changed, self.reading(pod, main))
    }

    fn reading(&self, pod: &Pod, main: Option<&ContainerStatus>) -> Reading {
        let pod_status = pod.status.as_ref();
        let disrupted = pod_status
            .and_then(|s| s.reason.as_deref())
            .filter(|r| DISRUPTIONS.contains(r));
        if let Some(reason) =
            disrupted.filter(|_| pod_status.and_then(|s| s.phase.as_deref()) == Some("Failed"))
        {
            let message = pod_status.and_then(|s| s.message.as_deref()).unwrap_or_default();
            return Reading::Done {
                outcome: Outcome::Failed,
                message: format!("pod {reason}{}", prefixed(message)),
            };
        }
        let state = main.and_then(|s| s.state.as_ref());
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            let reason = t.reason.clone().unwrap_or_else(|| "Terminated".into());
            let disrupted = disruption(pod);
            let after = match (&disrupted, crate::stop::stopped_by(pod)) {
                (Some(d), _) => format!(" after the pod was disrupted ({d})"),
                (None, Some(by)) => format!(" after {by} stopped it"),
                (None, None) => String::new(),
            };
            return if t.exit_code == 0 {
                let anyway = disrupted
                    .map(|d| format!(", though the pod was disrupted ({d}): completed anyway"))
                    .unwrap_or_default();
                Reading::Done {
                    outcome: Outcome::Succeeded,
                    message: format!("{MAIN_CONTAINER} exited 0 ({reason}){anyway}"),
                }
            } else {
                Reading::Done {
                    outcome: Outcome::Failed,
                    message: format!("{MAIN_CONTAINER} exited {} ({reason}){after}", t.exit_code),
                }
            };
        }
        let pod_status = pod.status.as_ref();
        let phase = pod_status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if matches!(phase, "Failed" | "Succeeded") {
            let reason = pod_status.and_then(|s| s.reason.clone());
            let message = pod_status.and_then(|s| s.message.clone());
            if reason.as_deref() == Some("DeadlineExceeded") {
                let why = message.unwrap_or_else(|| "the pod's active deadline passed".into());
                return Reading::Done {
                    outcome: Outcome::TimedOut,
                    message: why,
                };
            }
            if let Some(init) = failed_init_container(pod) {
                let outcome = if self.main_started {
                    Outcome::Failed
                } else {
                    Outcome::NeverStarted
                };
                return Reading::Done {
                    outcome,
                    message: init,
                };
            }
            let why = [reason, message]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            return Reading::Done {
                outcome: Outcome::Failed,
                message: format!("pod {phase} before {MAIN_CONTAINER} finished{}", prefixed(&why)),
            };
        }
        // Any container, init or regular, can hold the main one back with an image problem.
        for s in crate::status::all(pod) {
            let Some(w) = s.state.as_ref().and_then(|st| st.waiting.as_ref()) else {
                continue;
            };
            match w.reason.as_deref() {
                Some("InvalidImageName" | "ErrImageNeverPull") => {
                    let message = format!(
                        "container {} cannot start: {}{}",
                        s.name,
                        w.reason.as_deref().unwrap_or_default(),
                        prefixed(w.message.as_deref().unwrap_or_default())
                    );
                    return Reading::Done {
                        outcome: Outcome::NeverStarted,
                        message,
                    };
                }
                Some("ErrImagePull" | "ImagePullBackOff") => {
                    return Reading::PullFailing {
                        container: s.name.clone(),
                        message: w.message.clone(),
                    };
                }
                _ => {}
            }
        }
        Reading::Continue
    }
}

/// Pod status reasons the kubelet and controllers give to pods they stopped from outside.
const DISRUPTIONS: [&str; 5] = ["Evicted", "Preempting", "NodeLost", "NodeShutdown", "Shutdown"];

/// Why the pod is being taken away from outside, if it is: the kubelet's reason (`Evicted: …`),
/// the DisruptionTarget condition (`PreemptionByScheduler: …`, Kubernetes 1.26+), or — on every
/// version — a deletion that no kpo command marked as its own (an eviction through the API, a
/// drain, `kubectl delete`): whatever the container does next, the run was disrupted.
pub fn disruption(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref();
    if let Some(reason) = status
        .and_then(|s| s.reason.as_deref())
        .filter(|r| DISRUPTIONS.contains(r))
    {
        let message = status.and_then(|s| s.message.as_deref()).unwrap_or_default();
        return Some(format!("{reason}{}", prefixed(message)));
    }
    let condition = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
        cs.iter()
            .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
    });
    if let Some(c) = condition {
        return Some(format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("DisruptionTarget"),
            c.message.as_deref().unwrap_or_default()
        ));
    }
    (pod.metadata.deletion_timestamp.is_some() && crate::stop::stopped_by(pod).is_none())
        .then(|| "deleted by someone else while it ran: an eviction, a drain or kubectl delete".to_owned())
}

/// Whether the cluster's words say a registry's rate limit was hit (Docker Hub's `429 Too Many
/// Requests ... toomanyrequests`, any registry's "rate limit"): the one list both the watch (it
/// may heal: wait) and the retry budgets (an infrastructure failure) read.
pub fn rate_limited(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["429 too many requests", "toomanyrequests", "rate limit"]
        .iter()
        .any(|t| m.contains(t))
}

/// Whether an image pull error will not heal by waiting: the image does not exist or the
/// registry refuses us. Rate limits and network trouble may heal, so they wait for the timeout.
pub fn pull_error_is_permanent(message: &str) -> bool {
    if rate_limited(message) {
        return false;
    }
    let m = message.to_ascii_lowercase();
    let transient = ["timeout", "connection refused", "i/o timeout"];
    let permanent = [
        "not found",
        "manifest unknown",
        "pull access denied",
        "unauthorized",
        "authorization failed",
        "authentication required",
        "403 forbidden",
        "repository does not exist",
    ];
    !transient.iter().any(|t| m.contains(t)) && permanent.iter().any(|p| m.contains(p))
}

/// The phase and the most useful reason behind it.
pub fn status_of(pod: &Pod) -> Status {
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let unscheduled = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
        cs.iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    });
    let detail = if let Some(c) = unscheduled {
        Some(format!(
            "{}{}",
            c.reason.as_deref().unwrap_or("Unschedulable"),
            prefixed(c.message.as_deref().unwrap_or_default())
        ))
    } else if phase == "Pending" {
        crate::status::all(pod).find_map(|s| {
            let w = s.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.clone()?;
            let quiet = matches!(reason.as_str(), "ContainerCreating" | "PodInitializing");
            let message = w.message.as_deref().filter(|_| !quiet).unwrap_or_default();
            Some(format!("{}: {reason}{}", s.name, prefixed(message)))
        })
    } else {
        status.and_then(|s| s.reason.clone())
    };
    Status { phase, detail }
}

fn prefixed(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim_end())
    }
}

fn failed_init_container(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .init_container_statuses
        .iter()
        .flatten()
        .find_map(|s| {
            let t = s.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| {
                format!(
                    "init container {} exited {} ({})",
                    s.name,
                    t.exit_code,
                    t.reason.as_deref().unwrap_or("Error")
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn base(state: serde_json::Value) -> serde_json::Value {
        json!({"name": "base", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": state})
    }

    #[test]
    fn main_exit_decides_even_while_sidecars_run() {
        let p = pod(json!({"phase": "Running", "containerStatuses": [
            base(json!({"terminated": {"exitCode": 3, "reason": "Error"}})),
            {"name": "side", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}},
        ]}));
        let (_, v) = Tracker::default().observe(&p);
        assert_eq!(
            v,
            Reading::Done {
                outcome: Outcome::Failed,
                message: "base exited 3 (Error)".into()
            }
        );
    }

    #[test]
    fn a_deletion_no_kpo_command_made_is_a_disruption_whatever_the_exit() {
        let deleted = |code: i32, by: Option<&str>| {
            let mut p = pod(json!({"phase": "Running", "containerStatuses": [
                base(json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}})),
            ]}));
            p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::UNIX_EPOCH,
            ));
            if let Some(by) = by {
                p.metadata.annotations =
                    Some([(crate::stop::ANNOTATION_STOPPED_BY.to_owned(), by.to_owned())].into());
            }
            let (_, v) = Tracker::default().observe(&p);
            let Reading::Done { message, .. } = v else {
                panic!("{v:?}")
            };
            (message, disruption(&p).is_some())
        };
        let (evicted, disrupted) = deleted(143, None);
        assert!(
            evicted
                .starts_with("base exited 143 (Error) after the pod was disrupted (deleted by someone else"),
            "{evicted}"
        );
        assert!(disrupted);
        let (anyway, disrupted) = deleted(0, None);
        assert!(anyway.ends_with("completed anyway"), "{anyway}");
        assert!(disrupted);
        let (stopped, disrupted) = deleted(143, Some("kpo delete"));
        assert_eq!(stopped, "base exited 143 (Error) after kpo delete stopped it");
        assert!(!disrupted);
    }

    #[test]
    fn reports_changes_once() {
        let mut t = Tracker::default();
        let pending = pod(
            json!({"phase": "Pending", "containerStatuses": [base(json!({"waiting": {"reason": "ContainerCreating"}}))]}),
        );
        let (first, _) = t.observe(&pending);
        assert_eq!(first.unwrap().detail.as_deref(), Some("base: ContainerCreating"));
        assert_eq!(t.observe(&pending).0, None);
        assert!(!t.main_started);
        let running = pod(json!({"phase": "Running", "containerStatuses": [base(json!({"running": {}}))]}));
        assert_eq!(t.observe(&running).0.unwrap().phase, "Running");
        assert!(t.main_started);
    }

    #[test]
    fn invalid_image_fails_at_once_and_pull_errors_ask_for_events() {
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [base(json!({"waiting": {"reason": "InvalidImageName", "message": "bad"}}))]}),
        );
        assert!(matches!(
            Tracker::default().observe(&p).1,
            Reading::Done {
                outcome: Outcome::NeverStarted,
                ..
            }
        ));
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [base(json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}))]}),
        );
        assert!(matches!(
            Tracker::default().observe(&p).1,
            Reading::PullFailing { .. }
        ));
    }

    #[test]
    fn deadline_exceeded_is_a_timeout() {
        let p = pod(
            json!({"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}),
        );
        assert!(matches!(
            Tracker::default().observe(&p).1,
            Reading::Done {
                outcome: Outcome::TimedOut,
                ..
            }
        ));
    }

    #[test]
    fn unschedulable_detail_comes_from_the_condition() {
        let p = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient cpu."}]}),
        );
        let s = status_of(&p);
        assert_eq!(
            s.detail.as_deref(),
            Some("Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.")
        );
    }

    #[test]
    fn pull_errors_classified() {
        assert!(pull_error_is_permanent(
            "rpc error: code = NotFound desc = ... docker.io/library/x:1: not found"
        ));
        assert!(pull_error_is_permanent(
            "pull access denied, repository does not exist or may require authorization"
        ));
        assert!(!pull_error_is_permanent(
            "429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit."
        ));
        assert!(!pull_error_is_permanent("Back-off pulling image \"x\""));
        // An image whose name has a 429 in it is not rate limited for that.
        assert!(pull_error_is_permanent(
            "rpc error: code = NotFound desc = failed to resolve reference \"docker.io/library/x:1.4290\": not found"
        ));
        assert!(rate_limited(
            "unexpected status code 429 Too Many Requests - Server message: toomanyrequests"
        ));
        assert!(rate_limited("You have reached your pull rate limit."));
    }
}
