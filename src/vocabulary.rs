//! The words every part of kpo uses for a run: how it ended, which container is which, what the
//! plugins said, which attempt failed why. Its own layer, importing none of kpo's other modules
//! but the table of exit codes, so that the task file, the pod builder, the supervisor, the
//! plugin host and the report can all speak of a run without reaching into one another.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::exit;

/// The name of the task's own container in every pod kpo builds. Sidecars and templates may add
/// others; this one decides the outcome.
pub const MAIN_CONTAINER: &str = "base";

/// How a run ended, from kpo's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// A plugin refused the pod (a policy said no): no pod was created.
    Refused,
    /// kpo was interrupted (Ctrl-C, SIGTERM) before the pod finished.
    Interrupted,
}

impl Outcome {
    /// The exit code of an outcome; a failure uses the main container's own code when it has one.
    pub fn exit_code(self, main_exit: Option<i32>) -> i32 {
        match self {
            Outcome::Succeeded => exit::SUCCESS,
            Outcome::Failed => failed_exit(main_exit),
            Outcome::NeverStarted => exit::NEVER_STARTED,
            Outcome::TimedOut => exit::TIMED_OUT,
            Outcome::Rejected => exit::REJECTED,
            Outcome::Refused => exit::REFUSED,
            Outcome::Interrupted => exit::INTERRUPTED,
        }
    }

    /// The name the report and the plugin contract use (`never_started`).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::NeverStarted => "never_started",
            Outcome::TimedOut => "timed_out",
            Outcome::Rejected => "rejected",
            Outcome::Refused => "refused",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// How a sentence about the run ends: "task x never started".
    pub fn phrase(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::NeverStarted => "never started",
            Outcome::TimedOut => "timed out",
            Outcome::Rejected => "was rejected",
            Outcome::Refused => "was refused",
            Outcome::Interrupted => "was interrupted",
        }
    }
}

/// A failed run exits with its main container's own code (1-255), else with [`exit::FAILED`].
pub fn failed_exit(main_exit: Option<i32>) -> i32 {
    main_exit.filter(|c| *c != 0).map_or(exit::FAILED, |c| c & 0xff)
}

/// What a container is to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRole {
    /// The task's own container, [`MAIN_CONTAINER`]: its exit decides the run.
    Main,
    /// Another regular container, beside the main one (e.g. kpo's result sidecar).
    Sidecar,
    /// An init container, run to completion before the others.
    Init,
    /// An init container with `restartPolicy: Always`, running beside the main one.
    NativeSidecar,
}

impl ContainerRole {
    /// The name the report and the plugin contract use.
    pub fn name(self) -> &'static str {
        match self {
            ContainerRole::Main => "main",
            ContainerRole::Sidecar => "sidecar",
            ContainerRole::Init => "init",
            ContainerRole::NativeSidecar => "native_sidecar",
        }
    }
}

/// An interpreter's judgement of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Success,
    Skip,
    Retry,
    Failure,
}

impl Verdict {
    /// The exit code the verdict gives a run: a skip or success overrides a failed exit, a
    /// failure (or a retry that is not taken) overrides a clean one.
    pub fn exit_code(self, main_exit: Option<i32>) -> i32 {
        match self {
            Verdict::Success => exit::SUCCESS,
            Verdict::Skip => exit::SKIPPED,
            Verdict::Retry | Verdict::Failure => failed_exit(main_exit),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Skip => "skip",
            Verdict::Retry => "retry",
            Verdict::Failure => "failure",
        }
    }

    /// How a sentence about the run ends: "task x was skipped".
    pub fn phrase(self) -> &'static str {
        match self {
            Verdict::Success => "succeeded",
            Verdict::Skip => "was skipped",
            Verdict::Retry => "failed (a plugin suggests a retry)",
            Verdict::Failure => "failed",
        }
    }
}

/// The combined judgement of all interpreters.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    /// The strictest verdict: failure beats retry beats skip beats success.
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// The interpreter whose verdict won (the first of the strictest).
    pub plugin: String,
    /// Each interpreter's outputs, under its name.
    pub outputs: BTreeMap<String, Value>,
}

/// What one mutator changed, as an RFC 6902 JSON patch against the pod it was given.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Mutation {
    pub plugin: String,
    pub patch: json_patch::Patch,
}

/// What a policy does when it refuses a pod: `enforce` stops the run, `monitor` (audit mode)
/// reports the refusal and lets the pod go — Kubewarden's protect/monitor, Gatekeeper's
/// deny/dryrun. A policy is rolled out in `monitor` and switched to `enforce` once it is quiet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    #[default]
    Enforce,
    Monitor,
}

impl PolicyMode {
    pub fn name(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Monitor => "monitor",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [PolicyMode::Enforce, PolicyMode::Monitor]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// Something a plugin wants the user to know about the pod, under the plugin's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Warning {
    pub plugin: String,
    pub message: String,
}

/// How one validating policy answered about the final pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    Accepted,
    /// Accepted, with warnings.
    Warned,
    /// Refused: the run stopped (`enforce`) or the refusal was only reported (`monitor`).
    Refused,
    /// The policy itself failed (trapped, timed out...): fatal in `enforce` mode, reported in
    /// `monitor` mode.
    Failed,
}

impl Admission {
    pub fn name(self) -> &'static str {
        match self {
            Admission::Accepted => "accepted",
            Admission::Warned => "warned",
            Admission::Refused => "refused",
            Admission::Failed => "failed",
        }
    }
}

/// One policy's part in a run: which, from where, in which mode, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PolicyCheck {
    pub policy: String,
    /// Where the policy came from: the task file, `--policy FILE`, a configuration folder.
    pub source: String,
    pub mode: PolicyMode,
    pub admission: Admission,
    /// The refusal or failure, or the warnings joined.
    pub reason: Option<String>,
}

/// Why a run's main container never started: whether a new pod could do better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFailure {
    /// No node took the pod within `schedule_timeout`.
    ScheduleTimeout,
    /// The main container did not run within `startup_timeout`: not scheduled, or a pull
    /// back-off, a volume or a Secret that did not come in time.
    StartupTimeout,
    /// What a new pod would meet again: an image that does not exist or is refused, an
    /// invalid image name, an init container that failed.
    Unstartable,
}

/// Why an attempt failed, for the retry budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Eviction, preemption, node loss, the pod deleted by someone else, a pull rate limit.
    Infrastructure,
    /// The main container exited non-zero.
    User,
    /// An interpreter plugin judged the failure transient.
    Plugin,
    /// The main container never started, for a reason a new pod may not meet again.
    NeverStarted,
}

impl FailureClass {
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Infrastructure => "infrastructure",
            FailureClass::User => "user",
            FailureClass::Plugin => "plugin",
            FailureClass::NeverStarted => "never_started",
        }
    }
}

/// One attempt of a run, as listed in the final report.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttemptReport {
    pub attempt: u32,
    pub pod: String,
    pub outcome: Outcome,
    pub exit_code: i32,
    pub message: String,
    /// Why it failed, when it failed in a way the retry policy knows.
    pub class: Option<FailureClass>,
    /// Whether another attempt followed.
    pub retried: bool,
    /// When its pod was submitted, ran, and when the attempt ended: what `kpo timeline` draws
    /// (absent in reports of kpo versions that did not record them, and for a pod never made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<jiff::Timestamp>,
}

/// A duration as kpo writes it to people and as task files write it: `2m 30s`.
pub fn duration_words(d: std::time::Duration) -> String {
    jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |s| format!("{s:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        let outcomes = [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::NeverStarted,
            Outcome::TimedOut,
            Outcome::Rejected,
            Outcome::Refused,
            Outcome::Interrupted,
        ];
        for o in outcomes {
            assert_eq!(serde_json::to_value(o).unwrap(), o.name());
        }
        for r in [
            ContainerRole::Main,
            ContainerRole::Sidecar,
            ContainerRole::Init,
            ContainerRole::NativeSidecar,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
        for v in [Verdict::Success, Verdict::Skip, Verdict::Retry, Verdict::Failure] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
        for a in [
            Admission::Accepted,
            Admission::Warned,
            Admission::Refused,
            Admission::Failed,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
        for m in [PolicyMode::Enforce, PolicyMode::Monitor] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
        for c in [
            FailureClass::Infrastructure,
            FailureClass::User,
            FailureClass::Plugin,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
    }

    #[test]
    fn the_strictest_verdict_is_the_greatest() {
        assert!(Verdict::Failure > Verdict::Retry);
        assert!(Verdict::Retry > Verdict::Skip);
        assert!(Verdict::Skip > Verdict::Success);
    }

    #[test]
    fn a_failure_keeps_the_containers_own_code() {
        assert_eq!(Outcome::Failed.exit_code(Some(3)), 3);
        assert_eq!(Outcome::Failed.exit_code(Some(256 + 4)), 4);
        assert_eq!(Outcome::Failed.exit_code(None), exit::FAILED);
        assert_eq!(Verdict::Failure.exit_code(Some(0)), exit::FAILED);
        assert_eq!(Verdict::Skip.exit_code(Some(2)), exit::SKIPPED);
    }
}
