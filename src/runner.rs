//! A whole run of a task: build the pod, let the mutators change it, supervise it, let the
//! interpreters judge it — and when the task's `[retry]` policy covers the failure, do it all
//! again with a new pod, after a capped, jittered pause. Never two pods of a run at once: the
//! next attempt starts only after the previous pod has finished.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;

use crate::plugin::{self, PluginError, TaskPlugins};
use crate::pod::{self, RunIdentity};
use crate::report::RunReport;
use crate::supervise::{self, Interrupt, Observer, RunError};
use crate::task::{RetryPolicy, Task};
use crate::vocabulary::{AttemptReport, FailureClass, Mutation, Outcome, Verdict};

/// Errors that end a run before it has a report.
#[derive(Debug, thiserror::Error)]
pub enum RunTaskError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Cluster(#[from] RunError),
}

impl RunTaskError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunTaskError::Plugin(e) => e.exit_code(),
            RunTaskError::Cluster(_) => crate::exit::CLUSTER_UNAVAILABLE,
        }
    }
}

/// Runs `task` to its final outcome, retrying per its policy.
///
/// # Errors
/// A mutator that fails or refuses (before the attempt's pod exists), or a cluster that cannot
/// be reached to create a pod.
///
/// # Panics
/// When `plugins` is given, on a current-thread Tokio runtime: plugin calls are synchronous
/// WebAssembly and run under `block_in_place`, which needs the multi-threaded runtime.
pub async fn run_task(
    cluster: impl Into<supervise::Cluster>,
    task: &Task,
    plugins: Option<&TaskPlugins>,
    mut identity: RunIdentity,
    namespace: &str,
    observer: Arc<dyn Observer>,
    mut interrupts: impl Stream<Item = Interrupt> + Unpin,
) -> Result<RunReport, RunTaskError> {
    let cluster = cluster.into();
    let mut attempts = Vec::new();
    let mut used = [0u32; 3];
    let mut pause = task.retry.backoff;
    let first_start = jiff::Timestamp::now();
    loop {
        let ctx = context(task, &identity, namespace);
        let (pod, mutations) = prepare(task, &identity, namespace, plugins)?;
        if !mutations.is_empty() {
            let applied: Vec<String> = mutations
                .iter()
                .map(|m| format!("{} ({} change(s))", m.plugin, m.patch.0.len()))
                .collect();
            observer.notice(&format!("mutators applied: {}", applied.join(", ")));
        }
        if identity.attempt > 1 {
            observer.notice(&format!(
                "attempt {}: pod {namespace}/{}",
                identity.attempt, identity.pod_name
            ));
        }
        let mut report =
            supervise::run(cluster.clone(), pod, &task.run, observer.clone(), &mut interrupts).await?;
        report.attempt = identity.attempt;
        report.mutations = mutations;
        if let Some(p) = plugins
            && report.uid.is_some()
        {
            match tokio::task::block_in_place(|| p.interpret(&report, &ctx)) {
                Ok(Some(decision)) => report.apply(decision),
                Ok(None) => {}
                Err(e) => {
                    report.message = format!("{} (then: {e})", report.message);
                    report.exit_code = e.exit_code();
                }
            }
        }
        let class = classify(&report, &task.retry);
        let slot = class.map(|c| c as usize);
        let budget = [task.retry.infrastructure, task.retry.user, task.retry.plugin];
        let retry = slot.is_some_and(|s| used[s] < budget[s]);
        attempts.push(AttemptReport {
            attempt: identity.attempt,
            pod: report.pod.clone(),
            outcome: report.outcome,
            exit_code: report.exit_code,
            message: report.message.clone(),
            class,
            retried: retry,
        });
        if !retry {
            report.attempts = attempts;
            // The run started with its first attempt.
            report.started_at = first_start;
            return Ok(report);
        }
        if let Some(s) = slot {
            used[s] += 1;
        }
        let wait = jittered(pause);
        observer.notice(&format!(
            "attempt {} failed ({}): {}; attempt {} in {:.1}s",
            identity.attempt,
            class_name(class),
            report.message,
            identity.attempt + 1,
            wait.as_secs_f64()
        ));
        observer.retrying(identity.attempt + 1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Some(_) = interrupts.next() => {
                report.outcome = Outcome::Interrupted;
                report.exit_code = crate::exit::INTERRUPTED;
                report.message = format!("interrupted while waiting to retry; the last attempt: {}", report.message);
                report.attempts = attempts;
                return Ok(report);
            }
        }
        pause = (pause * 2).min(task.retry.max_backoff);
        identity = identity.next_attempt(&task.name);
    }
}

/// Builds the pod of an attempt and lets the mutators change it, in order: what `run` submits
/// and `render` prints, one code path so that the two can never differ.
///
/// # Errors
/// A mutator that fails, refuses the pod or changes what it may not.
///
/// # Panics
/// With plugins, on a current-thread Tokio runtime (see [`run_task`]).
pub fn prepare(
    task: &Task,
    identity: &RunIdentity,
    namespace: &str,
    plugins: Option<&TaskPlugins>,
) -> Result<(Pod, Vec<Mutation>), PluginError> {
    let pod = pod::build(task, identity, namespace);
    match plugins {
        Some(p) => tokio::task::block_in_place(|| p.mutate(pod, &context(task, identity, namespace))),
        None => Ok((pod, Vec::new())),
    }
}

/// What a plugin is told about the attempt it works on.
fn context(task: &Task, identity: &RunIdentity, namespace: &str) -> plugin::Context {
    plugin::Context {
        attempt: identity.attempt,
        ..plugin::context(&task.name, namespace, &identity.run_id)
    }
}

fn class_name(class: Option<FailureClass>) -> &'static str {
    class.map_or("final", FailureClass::name)
}

/// Between half and one and a half times `d`, so that many runs do not retry in step.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64())
}

/// Which retry budget a finished attempt draws on, if any.
pub fn classify(report: &RunReport, policy: &RetryPolicy) -> Option<FailureClass> {
    if report
        .decision
        .as_ref()
        .is_some_and(|d| d.verdict == Verdict::Retry)
    {
        return Some(FailureClass::Plugin);
    }
    if report.exit_code == crate::exit::SUCCESS {
        return None;
    }
    // Stopped on purpose (`kpo delete`, `kpo gc`): nothing a retry should undo.
    if report
        .final_pod
        .as_ref()
        .and_then(crate::stop::stopped_by)
        .is_some()
    {
        return None;
    }
    let disrupted = report.disruption.is_some();
    let rate_limited = report.outcome == Outcome::NeverStarted
        && ["toomanyrequests", "429 Too Many Requests", "rate limit"]
            .iter()
            .any(|m| report.message.contains(m) || report.events.iter().any(|e| e.message.contains(m)));
    if disrupted || rate_limited {
        return Some(FailureClass::Infrastructure);
    }
    match (report.outcome, report.main_exit()) {
        (Outcome::Failed, Some(code))
            if code != 0 && (policy.on_exit_codes.is_empty() || policy.on_exit_codes.contains(&code)) =>
        {
            Some(FailureClass::User)
        }
        _ => None,
    }
}
