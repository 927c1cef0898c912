//! A whole run of a task: build the pod, let the mutators change it, let the policies accept or
//! refuse it, supervise it, let the interpreters judge it — and when the task's `[retry]` policy
//! covers the failure, do it all again with a new pod, after a capped, jittered pause. Never two
//! pods of a run at once: the next attempt starts only after the previous pod has finished.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;

use crate::plugin::{self, PluginError, TaskPlugins};
use crate::pod::{self, RunIdentity};
use crate::report::RunReport;
use crate::supervise::{self, Interrupt, Observer, RunError};
use crate::task::{RetryPolicy, Task};
use crate::vocabulary::{
    Admission, AttemptReport, FailureClass, Mutation, Outcome, PolicyCheck, PolicyMode, Verdict, Warning,
};

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

/// Runs `task` to its final outcome, retrying per its policy. A run a plugin refuses (a mutator
/// or a policy in `enforce` mode) is a report too, of outcome `refused`: no pod was created.
///
/// An interrupt heard while the plugins prepare the pod stops them and ends the run with no pod
/// (outcome `interrupted`); one heard while the interpreters judge the run stops them.
///
/// # Errors
/// A plugin that fails (before the attempt's pod exists), or a cluster that cannot be reached
/// to create a pod.
#[allow(clippy::too_many_arguments)]
pub async fn run_task(
    cluster: impl Into<supervise::Cluster>,
    task: &Task,
    plugins: Option<&TaskPlugins>,
    mut identity: RunIdentity,
    namespace: &str,
    observer: Arc<dyn Observer>,
    mut interrupts: impl Stream<Item = Interrupt> + Unpin,
    mut turn: Option<&mut Turn>,
) -> Result<RunReport, RunTaskError> {
    let cluster = cluster.into();
    let mut attempts = Vec::new();
    let mut used = [0u32; 3];
    let mut pause = task.retry.backoff;
    let first_start = jiff::Timestamp::now();
    // How the earlier attempts ended, as plugins see them: mutators of a retry learn from them.
    let mut earlier = Vec::new();
    loop {
        let ctx = context(task, &identity, namespace, &earlier);
        let unsubmitted = |ending: Ending, prepared: Prepared, attempts: Vec<AttemptReport>| {
            unsubmitted(
                task,
                &identity,
                namespace,
                ending,
                prepared,
                attempts,
                first_start,
            )
        };
        let prepared = tokio::select! {
            biased;
            Some(asked) = interrupts.next() => {
                let ending = Ending::interrupted(&asked);
                return Ok(unsubmitted(ending, Prepared::default(), attempts));
            }
            prepared = prepare(task, &identity, namespace, plugins, &earlier) => prepared,
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e @ PluginError::Refused { .. }) => {
                return Ok(unsubmitted(Ending::refused(&e), Prepared::default(), attempts));
            }
            Err(e) => {
                observer.failed_before_the_pod(e.exit_code(), &e.to_string());
                return Err(e.into());
            }
        };
        announce(observer.as_ref(), &prepared);
        if let Some(e) = prepared.denial() {
            return Ok(unsubmitted(Ending::refused(&e), prepared, attempts));
        }
        if identity.attempt > 1 {
            observer.notice(&format!(
                "attempt {}: pod {namespace}/{}",
                identity.attempt, identity.pod_name
            ));
        }
        let Prepared {
            pod,
            mutations,
            warnings,
            policies,
        } = prepared;
        let mut report =
            supervise::run(cluster.clone(), pod, &task.run, observer.clone(), &mut interrupts).await?;
        report.attempt = identity.attempt;
        report.mutations = mutations;
        report.warnings = warnings;
        report.policies = policies;
        if let Some(p) = plugins
            && report.uid.is_some()
        {
            let judged = tokio::select! {
                biased;
                Some(asked) = interrupts.next() => Err(asked),
                judged = p.interpret(&report, &ctx) => Ok(judged),
            };
            match judged {
                Ok(Ok(Some(decision))) => report.apply(decision),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    report.message = format!("{} (then: {e})", report.message);
                    report.exit_code = e.exit_code();
                }
                Err(asked) => {
                    let ending = Ending::interrupted(&asked);
                    report.outcome = ending.outcome;
                    report.exit_code = ending.exit_code;
                    report.message = format!(
                        "{} while the interpreters judged the run; before that: {}",
                        ending.cause, report.message
                    );
                    report.attempts = attempts;
                    report.started_at = first_start;
                    return Ok(report);
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
        if let Some(t) = turn.as_deref_mut() {
            t.give_back();
        }
        let waited = async {
            tokio::time::sleep(wait).await;
            if let Some(t) = turn.as_deref_mut() {
                t.take().await;
            }
        };
        tokio::select! {
            () = waited => {}
            Some(asked) = interrupts.next() => {
                let ending = Ending::interrupted(&asked);
                report.outcome = ending.outcome;
                report.exit_code = ending.exit_code;
                report.message = format!("{} while waiting to retry; the last attempt: {}", ending.cause, report.message);
                report.attempts = attempts;
                return Ok(report);
            }
        }
        pause = (pause * 2).min(task.retry.max_backoff);
        earlier.push(plugin::outcome_of(&report));
        identity = identity.next_attempt(&task.name);
    }
}

/// A run's turn among others — one of a batch's `--parallel` slots: held while an attempt runs,
/// given back while the run waits to retry, so that a backoff of minutes does not keep a task
/// that could run waiting.
pub struct Turn {
    slots: Arc<tokio::sync::Semaphore>,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Turn {
    /// The turn `held`, one of `slots`.
    pub fn new(slots: Arc<tokio::sync::Semaphore>, held: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self {
            slots,
            held: Some(held),
        }
    }

    fn give_back(&mut self) {
        self.held = None;
    }

    /// Waits for a slot again (in line with the tasks not yet started: the semaphore is fair).
    async fn take(&mut self) {
        if self.held.is_none() {
            self.held = self.slots.clone().acquire_owned().await.ok();
        }
    }
}

/// The pod of an attempt as it will be submitted, and what the plugins said on the way.
#[derive(Debug, Default)]
pub struct Prepared {
    pub pod: Pod,
    pub mutations: Vec<Mutation>,
    pub warnings: Vec<Warning>,
    /// Every policy's answer about the final pod.
    pub policies: Vec<PolicyCheck>,
}

impl Prepared {
    /// The refusal of the run, when a policy in `enforce` mode said no.
    pub fn denial(&self) -> Option<PluginError> {
        plugin::denial(&self.policies)
    }
}

/// Builds the pod of an attempt, lets the mutators change it in order, then asks every policy
/// about the final pod: what `run` submits and `render` prints, one code path so that the two
/// can never differ. `earlier` is how the run's earlier attempts ended.
///
/// # Errors
/// A mutator that fails, refuses the pod or changes what it may not; a policy in `enforce` mode
/// that fails. (A policy's refusal is in [`Prepared::denial`].)
///
pub async fn prepare(
    task: &Task,
    identity: &RunIdentity,
    namespace: &str,
    plugins: Option<&TaskPlugins>,
    earlier: &[plugin::Outcome],
) -> Result<Prepared, PluginError> {
    let pod = pod::build(task, identity, namespace);
    let Some(plugins) = plugins else {
        return Ok(Prepared {
            pod,
            ..Default::default()
        });
    };
    let ctx = context(task, identity, namespace, earlier);
    let mutated = plugins.mutate(pod, &ctx).await?;
    let (policies, warned) = plugins.admit(&mutated.pod, &ctx).await?;
    let mut warnings = mutated.warnings;
    warnings.extend(warned);
    Ok(Prepared {
        pod: mutated.pod,
        mutations: mutated.mutations,
        warnings,
        policies,
    })
}

/// Tells the user what the plugins did and said about the pod before it goes.
fn announce(observer: &dyn Observer, prepared: &Prepared) {
    if !prepared.mutations.is_empty() {
        let applied: Vec<String> = prepared
            .mutations
            .iter()
            .map(|m| format!("{} ({} change(s))", m.plugin, m.patch.0.len()))
            .collect();
        observer.notice(&format!("mutators applied: {}", applied.join(", ")));
    }
    for w in &prepared.warnings {
        observer.notice(&format!("warning from {}: {}", w.plugin, w.message));
    }
    for c in prepared.policies.iter().filter(|c| c.mode == PolicyMode::Monitor) {
        let why = c.reason.as_deref().unwrap_or("no reason given");
        match c.admission {
            Admission::Refused => observer.notice(&format!(
                "policy {} (monitor mode, {}) would refuse the pod: {why}; letting it go",
                c.policy, c.source
            )),
            Admission::Failed => observer.notice(&format!(
                "policy {} (monitor mode, {}) failed: {why}; letting the pod go",
                c.policy, c.source
            )),
            Admission::Accepted | Admission::Warned => {}
        }
    }
}

/// How an attempt ended that never had a pod.
struct Ending {
    outcome: Outcome,
    exit_code: i32,
    message: String,
    /// What stopped it, as the start of a sentence.
    cause: String,
}

impl Ending {
    /// A plugin refused the pod.
    fn refused(why: &PluginError) -> Self {
        Self {
            outcome: Outcome::Refused,
            exit_code: why.exit_code(),
            message: format!("{why}; no pod was created"),
            cause: why.to_string(),
        }
    }

    /// An interrupt came before the pod was created (while the plugins prepared it, say): a
    /// lost claim is no interruption of the user's, but both stop the run there.
    fn interrupted(asked: &Interrupt) -> Self {
        match asked {
            Interrupt::Lost(why) => Self {
                outcome: Outcome::Interrupted,
                exit_code: crate::exit::CLAIMED,
                message: format!("{why}: stopped before its pod was created"),
                cause: format!("{why}: stopped"),
            },
            Interrupt::Stop | Interrupt::Detach => Self {
                outcome: Outcome::Interrupted,
                exit_code: crate::exit::INTERRUPTED,
                message: "interrupted before its pod was created".into(),
                cause: "interrupted".into(),
            },
        }
    }
}

/// The report of an attempt that ended before its pod was created: a plugin refused it, or
/// kpo was interrupted while the plugins prepared it.
fn unsubmitted(
    task: &Task,
    identity: &RunIdentity,
    namespace: &str,
    ending: Ending,
    prepared: Prepared,
    mut attempts: Vec<AttemptReport>,
    first_start: jiff::Timestamp,
) -> RunReport {
    let pod = pod::build(task, identity, namespace);
    let mut report = supervise::new_report(&pod, &task.run);
    let Ending {
        outcome,
        exit_code,
        message,
        ..
    } = ending;
    report.pod = String::new();
    report.outcome = outcome;
    report.exit_code = exit_code;
    report.message = message.clone();
    report.started_at = first_start;
    report.attempt = identity.attempt;
    report.mutations = prepared.mutations;
    report.warnings = prepared.warnings;
    report.policies = prepared.policies;
    if !attempts.is_empty() {
        attempts.push(AttemptReport {
            attempt: identity.attempt,
            pod: String::new(),
            outcome,
            exit_code,
            message,
            class: None,
            retried: false,
        });
    }
    report.attempts = attempts;
    report
}

/// What a plugin is told about the attempt it works on.
fn context(
    task: &Task,
    identity: &RunIdentity,
    namespace: &str,
    earlier: &[plugin::Outcome],
) -> plugin::Context {
    plugin::Context {
        attempt: identity.attempt,
        earlier: earlier.to_vec(),
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
    // Success needs no retry; a run whose claim was lost is another supervisor's to retry.
    if [crate::exit::SUCCESS, crate::exit::CLAIMED].contains(&report.exit_code) {
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
