//! The three roles a plugin can have, and what crosses kpo's contract for each, typed.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::pod::Pod;

/// What every plugin has: its config's type, and a check of a config beyond its shape (run
/// when kpo loads the plugin, before any pod).
pub trait Plugin {
    /// The plugin's `config` table; [`crate::NoConfig`] for a plugin that takes none.
    type Config: DeserializeOwned;

    /// A check beyond what the config's type says (a list that must not be empty, say); run
    /// when kpo loads the plugin and before every call.
    fn check_config(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }
}

/// Changes the pod before it is submitted. `Ok` carries warnings for the user; `Err(reason)`
/// refuses the pod, and no pod is created.
pub trait Mutator: Plugin {
    fn mutate(pod: &mut Pod, context: &Context<Self::Config>) -> Result<Vec<String>, String>;
}

/// Accepts or refuses the final pod, after every mutator.
pub trait Policy: Plugin {
    fn validate(pod: &Pod, context: &Context<Self::Config>) -> Admission;
}

/// Judges a run after its pod finished.
pub trait Interpreter: Plugin {
    fn interpret(outcome: &Outcome, context: &Context<Self::Config>) -> Judgement;
}

/// Where and why the plugin is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Context<C> {
    pub task: String,
    pub namespace: String,
    pub run_id: String,
    /// 1 for the first attempt of a run.
    pub attempt: u32,
    pub config: C,
    /// How the run's earlier attempts ended, oldest first.
    pub earlier: Vec<Outcome>,
}

impl<C> Context<C> {
    /// A first attempt of task `test` with `config`: for a plugin's own tests.
    pub fn with_config(config: C) -> Self {
        Self {
            task: "test".into(),
            namespace: "default".into(),
            run_id: "test".into(),
            attempt: 1,
            config,
            earlier: Vec::new(),
        }
    }
}

/// kpo's reading of how an attempt ended; printed in kpo's words (`never_started`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Succeeded,
    Failed,
    NeverStarted,
    TimedOut,
    Rejected,
    Refused,
    Interrupted,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::NeverStarted => "never_started",
            Status::TimedOut => "timed_out",
            Status::Rejected => "rejected",
            Status::Refused => "refused",
            Status::Interrupted => "interrupted",
        })
    }
}

/// What a container was in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Main,
    Sidecar,
    Init,
    NativeSidecar,
}

/// How one container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOutcome {
    pub name: String,
    pub role: Role,
    pub exit_code: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled`, or a waiting reason such as `ErrImagePull`.
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub attempt: u32,
    pub status: Status,
    /// The exit code kpo would use without plugins.
    pub exit_code: i32,
    /// The pod's final phase, empty if it never existed.
    pub phase: String,
    pub containers: Vec<ContainerOutcome>,
    /// The last lines of the main container's log.
    pub log_tail: Vec<String>,
    /// The task's result document.
    pub result: Option<Value>,
    /// The final pod as Kubernetes JSON, empty if it never existed; [`Outcome::pod`] reads it.
    pub pod_json: String,
}

impl Outcome {
    /// The final pod, if there was one.
    pub fn pod(&self) -> Option<Pod> {
        Pod::parse(&self.pod_json).ok()
    }

    /// The main container's outcome.
    pub fn main(&self) -> Option<&ContainerOutcome> {
        self.containers.iter().find(|c| c.role == Role::Main)
    }
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// The pod may go; the user is told these.
    Warn(Vec<String>),
    /// The pod must not go, for this reason.
    Refuse(String),
}

impl Admission {
    /// Refuses for every reason given, accepts where there is none: `refuse_any(problems)`.
    pub fn refuse_any(reasons: Vec<String>) -> Self {
        if reasons.is_empty() {
            Admission::Accept
        } else {
            Admission::Refuse(reasons.join("; "))
        }
    }

    /// Warns of every warning given, accepts where there is none.
    pub fn warn_any(warnings: Vec<String>) -> Self {
        if warnings.is_empty() {
            Admission::Accept
        } else {
            Admission::Warn(warnings)
        }
    }
}

/// An interpreter's decision; the strictest of several wins: failure, retry, skip, success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure(String),
    Skip(String),
    Retry(String),
}

impl fmt::Display for Verdict {
    /// In kpo's words: `failure: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Success => f.write_str("success"),
            Verdict::Failure(r) => write!(f, "failure: {r}"),
            Verdict::Skip(r) => write!(f, "skip: {r}"),
            Verdict::Retry(r) => write!(f, "retry: {r}"),
        }
    }
}

/// A verdict, and values to publish in the run report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// A JSON object, when there is something to publish.
    pub outputs: Option<Value>,
}

impl From<Verdict> for Judgement {
    fn from(verdict: Verdict) -> Self {
        Self {
            verdict,
            outputs: None,
        }
    }
}

impl Judgement {
    /// The same verdict, publishing `outputs` (a JSON object).
    pub fn with_outputs(self, outputs: Value) -> Self {
        Self {
            outputs: Some(outputs),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_print_as_kpos_words() {
        assert_eq!(Status::NeverStarted.to_string(), "never_started");
        assert_eq!(Verdict::Retry("flaky".into()).to_string(), "retry: flaky");
    }

    #[test]
    fn no_reason_accepts() {
        assert_eq!(Admission::refuse_any(vec![]), Admission::Accept);
        assert_eq!(
            Admission::refuse_any(vec!["a".into(), "b".into()]),
            Admission::Refuse("a; b".into())
        );
        assert_eq!(Admission::warn_any(vec!["w".into()]), Admission::Warn(vec!["w".into()]));
    }
}
