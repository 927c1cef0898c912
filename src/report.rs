//! The run report: everything a person or a script needs to know about how a run went.
//! Printed as JSON by `--output json`; its field names are part of kpo's interface.

use jiff::Timestamp;
use serde::Serialize;

use crate::exit;
use crate::task::OnFinish;
use crate::vocabulary::{AttemptReport, ContainerRole, Decision, Mutation, Outcome};

/// What one container did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub role: ContainerRole,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The container's termination message (`terminationMessagePath`).
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One step of the pod's life as kpo saw it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    /// Pod phase (`Pending`, `Running`, ...) or a kpo step (`Submitted`, `Deleted`).
    pub phase: String,
    /// Why, when the cluster says: `ErrImagePull: ...`, `Unschedulable: ...`.
    pub detail: Option<String>,
}

/// A Kubernetes event about the pod, kept when the run fails.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EventReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<Timestamp>,
}

/// What happened to the pod after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    Deleted,
    /// Deleted after its main container ended, while sidecars still ran: kpo did not wait for
    /// their grace period (the pod is gone within it).
    Stopping,
    Kept,
    /// Kept though its main container never started, and stopped from starting it later: its
    /// `activeDeadlineSeconds` was cut to 1, which its kubelet has already seen pass.
    Fenced,
    /// Deleted though `on_finish` keeps pods like it: its main container never started and
    /// kept it could start later with no one supervising it (never scheduled under `keep`, any
    /// under `delete_succeeded`). Its events are in the report.
    DeletedUnstarted,
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
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
    #[serde(default)]
    pub events: Vec<EventReport>,
    /// The task's result document, when it wrote one (see `[result]`).
    pub result: Option<serde_json::Value>,
    /// The result document exactly as the task wrote it (for `--result-file`).
    #[serde(skip)]
    pub result_bytes: Option<Vec<u8>>,
    /// Why the result could not be used, when it could not.
    pub result_error: Option<String>,
    /// Named outputs the task printed as `::kpo-output name=value` lines.
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, String>,
    /// `::kpo-output` lines kpo did not keep (past [`crate::result::MAX_OUTPUTS`] names, or a
    /// value over [`crate::result::MAX_OUTPUT_VALUE`] bytes); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outputs_ignored: u64,
    /// The task file's parameters and their values (a secret one `[redacted]`); absent when it
    /// has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
    /// Which attempt of the run this report is about (1 unless the run was retried).
    pub attempt: u32,
    /// Every attempt of the run, in order, when it has the report of its last one.
    #[serde(default)]
    pub attempts: Vec<AttemptReport>,
    /// What each mutator plugin changed in the pod before it was submitted.
    #[serde(default)]
    pub mutations: Vec<Mutation>,
    /// What the plugins warned of about the pod, each under its name.
    #[serde(default)]
    pub warnings: Vec<crate::vocabulary::Warning>,
    /// Every validating policy that saw the final pod: source, mode, answer.
    #[serde(default)]
    pub policies: Vec<crate::vocabulary::PolicyCheck>,
    /// The interpreter plugins' combined verdict and outputs, when the task has interpreters.
    pub decision: Option<Decision>,
    /// Why the pod was taken away from outside, when it was (an eviction, a preemption, a
    /// deletion no kpo command made): such a failure is an infrastructure one, retried under
    /// `[retry] infrastructure`.
    pub disruption: Option<String>,
    /// Why the main container never started, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_failure: Option<crate::vocabulary::StartFailure>,
    /// Logs that may lack some of the container's output, and why. Empty when every log followed
    /// was read to its end.
    #[serde(default)]
    pub incomplete_logs: Vec<IncompleteLog>,
    /// The last lines of the main container's log, for interpreters (converted to UTF-8
    /// lossily: an invalid byte becomes U+FFFD here, never in what kpo prints).
    #[serde(skip)]
    pub log_tail: Vec<String>,
    /// The pod as last seen, for interpreters.
    #[serde(skip)]
    pub final_pod: Option<k8s_openapi::api::core::v1::Pod>,
    /// Whatever else had a say in how the run ended (its exit code is decided from them).
    #[serde(skip)]
    pub overruled: Overruled,
}

/// What, besides the pod's outcome and the interpreters' verdict, decides a run's exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overruled {
    /// The run's claim was lost: another kpo supervises it now.
    pub claim_lost: bool,
    /// kpo was interrupted when no pod of the run was running (before one was created, while
    /// the interpreters judged, while waiting to retry): the interrupt has the last word.
    pub interrupted: bool,
    /// The interpreters failed (their error's exit code): no verdict stands.
    pub interpreters_failed: Option<i32>,
}

impl RunReport {
    /// The main container's exit code, once it has one.
    pub fn main_exit(&self) -> Option<i32> {
        self.containers
            .iter()
            .find(|c| c.role == ContainerRole::Main)
            .and_then(|c| c.exit_code)
    }

    /// A report of the run `run_id` of task `task` in `namespace`, its pod `pod` (empty: none
    /// yet) being attempt `attempt`, before anything happened.
    pub fn new(
        task: &str,
        run_id: &str,
        namespace: &str,
        pod: &str,
        attempt: u32,
        on_finish: OnFinish,
    ) -> Self {
        let now = Timestamp::now();
        RunReport {
            task: task.to_owned(),
            run_id: run_id.to_owned(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            uid: None,
            outcome: Outcome::Rejected,
            exit_code: exit::SUCCESS,
            message: String::new(),
            on_finish,
            cleanup: Cleanup::None,
            started_at: now,
            finished_at: now,
            timeline: Vec::new(),
            containers: Vec::new(),
            events: Vec::new(),
            result: None,
            result_bytes: None,
            result_error: None,
            outputs: Default::default(),
            outputs_ignored: 0,
            params: Default::default(),
            attempt,
            attempts: Vec::new(),
            mutations: Vec::new(),
            warnings: Vec::new(),
            policies: Vec::new(),
            decision: None,
            disruption: None,
            start_failure: None,
            incomplete_logs: Vec::new(),
            log_tail: Vec::new(),
            final_pod: None,
            overruled: Overruled::default(),
        }
    }

    /// Decides the run's exit code from what ended it — the one place it is decided: a lost
    /// claim says 75 whatever else happened; an interrupt between pods, 130; failed
    /// interpreters, their error's code; a verdict, its code (a skip or success overrides a
    /// failed exit, a failure a clean one); else the outcome, with the main container's own
    /// code, and a clean run whose result is unusable exits 74.
    pub fn decide_exit_code(&mut self) {
        let main = self.main_exit();
        self.exit_code = match (self.overruled, &self.decision) {
            (Overruled { claim_lost: true, .. }, _) => exit::CLAIMED,
            (
                Overruled {
                    interrupted: true, ..
                },
                _,
            ) => exit::INTERRUPTED,
            (
                Overruled {
                    interpreters_failed: Some(code),
                    ..
                },
                _,
            ) => code,
            (_, Some(decision)) => decision.verdict.exit_code(main),
            (_, None) => match self.outcome.exit_code(main) {
                exit::SUCCESS if self.result_error.is_some() => exit::RESULT_INVALID,
                code => code,
            },
        };
    }

    /// `[run] skip_on_exit_codes`: a listed exit of the main container skips the run, as if an
    /// interpreter that ran first had said so — so an interpreter's `retry` or `failure` still
    /// wins, and its `success` does not undo the skip. A run the interpreters could not judge,
    /// or that was interrupted, is not skipped.
    pub fn skip_on_exit_codes(&mut self, codes: &[i32]) {
        let Some(code) = self.main_exit().filter(|c| codes.contains(c)) else {
            return;
        };
        let stricter = self
            .decision
            .as_ref()
            .is_some_and(|d| d.verdict > crate::vocabulary::Verdict::Skip);
        if stricter || self.outcome != Outcome::Failed || self.overruled != Overruled::default() {
            return;
        }
        let outputs = self.decision.take().map(|d| d.outputs).unwrap_or_default();
        self.apply(Decision {
            verdict: crate::vocabulary::Verdict::Skip,
            reason: Some(format!("exit code {code} is one of skip_on_exit_codes")),
            plugin: "[run] skip_on_exit_codes".into(),
            outputs,
        });
    }

    /// Lets the interpreters' verdict decide the exit code (see [`crate::vocabulary::Verdict`]).
    pub fn apply(&mut self, decision: Decision) {
        let why = decision
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        self.message = format!(
            "{} (judged {} by {}{why})",
            self.message,
            decision.verdict.name(),
            decision.plugin
        );
        self.decision = Some(decision);
        self.decide_exit_code();
    }

    /// How a sentence about the run ends: the interpreters' verdict when they gave one, else
    /// the outcome ("succeeded", "never started").
    pub fn phrase(&self) -> &'static str {
        self.decision
            .as_ref()
            .map_or_else(|| self.outcome.phrase(), |d| d.verdict.phrase())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Verdict;

    fn ended(outcome: Outcome, main_exit: Option<i32>) -> RunReport {
        let mut report = RunReport::new("t", "r", "ns", "p", 1, OnFinish::Delete);
        report.outcome = outcome;
        report.containers.push(ContainerReport {
            name: crate::vocabulary::MAIN_CONTAINER.into(),
            role: ContainerRole::Main,
            exit_code: main_exit,
            reason: None,
            message: None,
            started_at: None,
            finished_at: None,
        });
        report.decide_exit_code();
        report
    }

    fn judged(mut report: RunReport, verdict: Verdict) -> RunReport {
        report.apply(Decision {
            verdict,
            reason: None,
            plugin: "judge".into(),
            outputs: Default::default(),
        });
        report
    }

    /// `skip_on_exit_codes` acts as an interpreter that runs first: a stricter verdict wins,
    /// a success does not undo it, an interrupt or an unlisted exit is untouched.
    #[test]
    fn skip_codes_rank_as_the_first_interpreter() {
        let skipped = |mut r: RunReport| {
            r.skip_on_exit_codes(&[3]);
            (r.exit_code, r.decision.map(|d| d.plugin))
        };
        let by_codes = Some("[run] skip_on_exit_codes".to_owned());
        assert_eq!(
            skipped(ended(Outcome::Failed, Some(3))),
            (exit::SKIPPED, by_codes.clone())
        );
        assert_eq!(skipped(ended(Outcome::Failed, Some(4))), (4, None));
        let success = judged(ended(Outcome::Failed, Some(3)), Verdict::Success);
        assert_eq!(skipped(success), (exit::SKIPPED, by_codes));
        let retry = judged(ended(Outcome::Failed, Some(3)), Verdict::Retry);
        assert_eq!(skipped(retry), (3, Some("judge".to_owned())));
        let mut interrupted = ended(Outcome::Failed, Some(3));
        interrupted.overruled.interrupted = true;
        interrupted.decide_exit_code();
        assert_eq!(skipped(interrupted), (exit::INTERRUPTED, None));
    }

    /// Each thing that can have a say over a run's exit code, against the others it outranks.
    #[test]
    fn the_exit_code_is_decided_in_one_order() {
        assert_eq!(ended(Outcome::Failed, Some(3)).exit_code, 3);
        assert_eq!(ended(Outcome::Failed, Some(256 + 7)).exit_code, 7);
        let mut invalid = ended(Outcome::Succeeded, Some(0));
        invalid.result_error = Some("not JSON".into());
        invalid.decide_exit_code();
        assert_eq!(invalid.exit_code, exit::RESULT_INVALID);
        // A verdict outranks the outcome and the result, both ways.
        assert_eq!(judged(invalid, Verdict::Success).exit_code, exit::SUCCESS);
        assert_eq!(
            judged(ended(Outcome::Failed, Some(3)), Verdict::Skip).exit_code,
            exit::SKIPPED
        );
        assert_eq!(
            judged(ended(Outcome::Succeeded, Some(0)), Verdict::Failure).exit_code,
            exit::FAILED
        );
        // Failed interpreters outrank a verdict; an interrupt between pods, both; a lost claim, all.
        let mut failed = judged(ended(Outcome::Failed, Some(3)), Verdict::Success);
        failed.overruled.interpreters_failed = Some(exit::PLUGIN_FAILED);
        failed.decide_exit_code();
        assert_eq!(failed.exit_code, exit::PLUGIN_FAILED);
        failed.overruled.interrupted = true;
        failed.decide_exit_code();
        assert_eq!(failed.exit_code, exit::INTERRUPTED);
        let mut lost = judged(ended(Outcome::Succeeded, Some(0)), Verdict::Success);
        lost.overruled.claim_lost = true;
        lost.decide_exit_code();
        assert_eq!(lost.exit_code, exit::CLAIMED);
        // A verdict given after the claim was lost does not take the run back.
        assert_eq!(judged(lost, Verdict::Success).exit_code, exit::CLAIMED);
    }
}
