//! The run report: everything a person or a script needs to know about how a run went.
//! Printed as JSON by `--output json`; its field names are part of kpo's interface.

use jiff::Timestamp;
use serde::Serialize;

use crate::exit;
use crate::task::OnFinish;

/// How a run ended, from kpo's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The main container exited 0.
    Succeeded,
    /// The main container exited non-zero, or the pod failed around it.
    Failed,
    /// The pod never got its main container running (unschedulable, image errors, startup timeout).
    NeverStarted,
    /// The run's timeout or the pod's active deadline passed.
    TimedOut,
    /// The API server refused the pod.
    Rejected,
    /// kpo was interrupted (Ctrl-C, SIGTERM) before the pod finished.
    Interrupted,
}

/// What one container did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerReport {
    pub name: String,
    /// `main`, `sidecar`, `init` or `native_sidecar`.
    pub role: &'static str,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The container's termination message (`terminationMessagePath`).
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One step of the pod's life as kpo saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    /// Pod phase (`Pending`, `Running`, ...) or a kpo step (`Submitted`, `Deleted`).
    pub phase: String,
    /// Why, when the cluster says: `ErrImagePull: ...`, `Unschedulable: ...`.
    pub detail: Option<String>,
}

/// A Kubernetes event about the pod, kept when the run fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<Timestamp>,
}

/// What happened to the pod after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    Deleted,
    Kept,
    /// There was no pod to clean up (rejected, or already gone).
    None,
    /// kpo asked to delete it and the API server refused; see the message.
    Failed,
    /// Interrupted with `--on-signal detach`: the pod runs on.
    Detached,
}

/// A container log kpo could not be sure to have read to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IncompleteLog {
    pub container: String,
    pub reason: String,
}

/// The machine-readable account of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub task: String,
    pub run_id: String,
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    pub outcome: Outcome,
    /// The process exit code kpo uses for this run; see [`exit`].
    pub exit_code: i32,
    /// One sentence on why the run ended as it did.
    pub message: String,
    pub on_finish: OnFinish,
    pub cleanup: Cleanup,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub timeline: Vec<TimelineEntry>,
    pub containers: Vec<ContainerReport>,
    pub events: Vec<EventReport>,
    /// The task's result document, when it wrote one (see `[result]`).
    pub result: Option<serde_json::Value>,
    /// The result document exactly as the task wrote it (for `--result-file`).
    #[serde(skip)]
    pub result_bytes: Option<Vec<u8>>,
    /// Why the result could not be used, when it could not.
    pub result_error: Option<String>,
    /// Named outputs the task printed as `::kpo-output name=value` lines.
    pub outputs: std::collections::BTreeMap<String, String>,
    /// Which attempt of the run this report is about (1 unless the run was retried).
    pub attempt: u32,
    /// Every attempt of the run, in order, when it has the report of its last one.
    pub attempts: Vec<crate::runner::AttemptReport>,
    /// What each mutator plugin changed in the pod before it was submitted.
    pub mutations: Vec<crate::plugin::Mutation>,
    /// The interpreter plugins' combined verdict and outputs, when the task has interpreters.
    pub decision: Option<crate::plugin::Decision>,
    /// Why the pod was taken away from outside, when it was (an eviction, a preemption, a
    /// deletion no kpo command made): such a failure is an infrastructure one, retried under
    /// `[retry] infrastructure`.
    pub disruption: Option<String>,
    /// Logs that may lack some of the container's output, and why. Empty when every log followed
    /// was read to its end.
    pub incomplete_logs: Vec<IncompleteLog>,
    /// The last lines of the main container's log, for interpreters (converted to UTF-8
    /// lossily: an invalid byte becomes U+FFFD here, never in what kpo prints).
    #[serde(skip)]
    pub log_tail: Vec<String>,
    /// The pod as last seen, for interpreters.
    #[serde(skip)]
    pub final_pod: Option<k8s_openapi::api::core::v1::Pod>,
}

impl RunReport {
    /// Lets the interpreters' verdict decide the exit code: a skip or success overrides a
    /// failed exit, a failure overrides a clean one.
    pub fn apply(&mut self, decision: crate::plugin::Decision) {
        let main_exit = self
            .containers
            .iter()
            .find(|c| c.role == "main")
            .and_then(|c| c.exit_code);
        self.exit_code = match decision.verdict {
            "success" => exit::SUCCESS,
            "skip" => exit::SKIPPED,
            _ => main_exit.filter(|c| *c != 0).map_or(exit::FAILED, |c| c & 0xff),
        };
        let why = decision
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        self.message = format!(
            "{} (judged {} by {}{why})",
            self.message, decision.verdict, decision.plugin
        );
        self.decision = Some(decision);
    }
}

impl Outcome {
    /// The exit code of an outcome; a failure uses the main container's own code when it has one.
    pub fn exit_code(self, main_exit: Option<i32>) -> i32 {
        match self {
            Outcome::Succeeded => exit::SUCCESS,
            Outcome::Failed => main_exit.filter(|c| *c != 0).map_or(exit::FAILED, |c| c & 0xff),
            Outcome::NeverStarted => exit::NEVER_STARTED,
            Outcome::TimedOut => exit::TIMED_OUT,
            Outcome::Rejected => exit::REJECTED,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }
}
