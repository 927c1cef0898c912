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
use crate::report::{Overruled, RunReport};
use crate::supervise::{self, Interrupt, Observer, RunError};
use crate::task::{RetryPolicy, Task};
use crate::vocabulary::{
    Admission, AttemptReport, FailureClass, Mutation, Outcome, PolicyCheck, PolicyMode, StartFailure,
    Verdict, Warning,
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
    let mut run = Attempts {
        task,
        first_start: jiff::Timestamp::now(),
        attempts: Vec::new(),
        earlier: Vec::new(),
        used: Vec::new(),
        pause: task.retry.backoff,
    };
    loop {
        let ctx = context(task, &identity, namespace, &run.earlier);
        let prepared = run
            .prepare(&identity, namespace, plugins, observer.as_ref(), &mut interrupts)
            .await?;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(ended) => return Ok(ended),
        };
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
            supervise::launch(cluster.clone(), pod, &task.run, observer.clone(), &mut interrupts).await?;
        report.attempt = identity.attempt;
        report.mutations = mutations;
        report.warnings = warnings;
        report.policies = policies;
        if report.uid.is_some()
            && let Err(asked) = judge(plugins, task, &mut report, &ctx, &mut interrupts).await
        {
            let when = "while the interpreters judged the run; before that";
            return Ok(run.interrupted(report, &asked, when));
        }
        let Some(wait) = run.retry(&report) else {
            return Ok(run.last(report));
        };
        observer.notice(&format!(
            "attempt {} failed ({}): {}; attempt {} in {:.1}s",
            identity.attempt,
            class_name(run.attempts.last().and_then(|a| a.class)),
            report.message,
            identity.attempt + 1,
            wait.as_secs_f64()
        ));
        observer.retrying(identity.attempt + 1);
        if let Err(asked) = wait_turn(wait, turn.as_deref_mut(), &mut interrupts).await {
            let when = "while waiting to retry; the last attempt";
            return Ok(run.interrupted(report, &asked, when));
        }
        run.earlier.push(plugin::outcome_of(&report));
        identity = identity.next_attempt(&task.name);
    }
}

/// A run's attempts so far: how each ended, what the plugins are told of them, the retry
/// budgets drawn on, the next pause.
struct Attempts<'a> {
    task: &'a Task,
    /// The run started with its first attempt.
    first_start: jiff::Timestamp,
    attempts: Vec<AttemptReport>,
    /// How the earlier attempts ended, as plugins see them: mutators of a retry learn from them.
    earlier: Vec<plugin::wit::Outcome>,
    /// One entry per retry taken, by the budget it drew on.
    used: Vec<FailureClass>,
    pause: Duration,
}

impl Attempts<'_> {
    /// The attempt's pod, built, mutated and admitted — or the run's report when it ends here:
    /// refused, or interrupted meanwhile.
    ///
    /// # Errors
    /// A plugin failed.
    async fn prepare(
        &mut self,
        identity: &RunIdentity,
        namespace: &str,
        plugins: Option<&TaskPlugins>,
        observer: &dyn Observer,
        interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
    ) -> Result<Result<Prepared, RunReport>, PluginError> {
        let prepared = tokio::select! {
            biased;
            Some(asked) = interrupts.next() => {
                let ending = Ending::interrupted(&asked);
                return Ok(Err(self.unsubmitted(identity, namespace, ending, Prepared::default())));
            }
            prepared = prepare(self.task, identity, namespace, plugins, &self.earlier) => prepared,
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e @ PluginError::Refused { .. }) => {
                let ending = Ending::refused(&e);
                return Ok(Err(self.unsubmitted(
                    identity,
                    namespace,
                    ending,
                    Prepared::default(),
                )));
            }
            Err(e) => {
                observer.failed_before_the_pod(e.exit_code(), &e.to_string());
                return Err(e);
            }
        };
        announce(observer, &prepared);
        match prepared.denial() {
            Some(e) => Ok(Err(self.unsubmitted(
                identity,
                namespace,
                Ending::refused(&e),
                prepared,
            ))),
            None => Ok(Ok(prepared)),
        }
    }

    /// Records the attempt `report` is about; how long to wait before the next one, if the
    /// task's retry budget for its failure allows one.
    fn retry(&mut self, report: &RunReport) -> Option<Duration> {
        let retry = &self.task.retry;
        let class = classify(report, retry);
        let allows = class.filter(|&c| {
            let budget = match c {
                FailureClass::Infrastructure => retry.infrastructure,
                FailureClass::User => retry.user,
                FailureClass::Plugin => retry.plugin,
                FailureClass::NeverStarted => retry.never_started,
            };
            self.used.iter().filter(|u| **u == c).count() < budget as usize
        });
        let at = |phase: &str| report.timeline.iter().find(|e| e.phase == phase).map(|e| e.at);
        self.attempts.push(AttemptReport {
            attempt: report.attempt,
            pod: report.pod.clone(),
            outcome: report.outcome,
            exit_code: report.exit_code,
            message: report.message.clone(),
            class,
            retried: allows.is_some(),
            submitted_at: at("Submitted"),
            running_at: at("Running"),
            ended_at: Some(report.finished_at),
        });
        self.used.push(allows?);
        let wait = jittered(self.pause);
        self.pause = (self.pause * 2).min(retry.max_backoff);
        Some(wait)
    }

    /// The run's report when `asked` stopped it after its last attempt's pod (`when`, as the
    /// sentence goes on to that attempt's message).
    fn interrupted(&mut self, mut report: RunReport, asked: &Interrupt, when: &str) -> RunReport {
        let ending = Ending::interrupted(asked);
        ending.overrule(&mut report);
        report.message = format!("{} {when}: {}", ending.cause, report.message);
        self.last(report)
    }

    /// The run's report: its last attempt's, with every attempt.
    fn last(&mut self, mut report: RunReport) -> RunReport {
        report.attempts = std::mem::take(&mut self.attempts);
        report.started_at = self.first_start;
        report.params = self
            .task
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shown().to_owned()))
            .collect();
        report
    }

    /// The report of an attempt that ended before its pod was created: a plugin refused it, or
    /// kpo was interrupted while the plugins prepared it.
    fn unsubmitted(
        &mut self,
        identity: &RunIdentity,
        namespace: &str,
        ending: Ending,
        prepared: Prepared,
    ) -> RunReport {
        let task = self.task;
        let mut report = RunReport::new(
            &task.name,
            &identity.run_id,
            namespace,
            "",
            identity.attempt,
            task.run.on_finish,
        );
        ending.overrule(&mut report);
        report.message = ending.message.clone();
        report.started_at = self.first_start;
        report.mutations = prepared.mutations;
        report.warnings = prepared.warnings;
        report.policies = prepared.policies;
        if !self.attempts.is_empty() {
            self.attempts.push(AttemptReport {
                attempt: identity.attempt,
                pod: String::new(),
                outcome: ending.outcome,
                exit_code: report.exit_code,
                message: ending.message,
                class: None,
                retried: false,
                submitted_at: None,
                running_at: None,
                ended_at: Some(jiff::Timestamp::now()),
            });
        }
        self.last(report)
    }
}

/// Lets the interpreters judge the attempt `report` is about, unless an interrupt comes first
/// (then it is handed back); then the task's `skip_on_exit_codes`.
async fn judge(
    plugins: Option<&TaskPlugins>,
    task: &Task,
    report: &mut RunReport,
    ctx: &plugin::wit::Context,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
) -> Result<(), Interrupt> {
    let judged = match plugins {
        None => Ok(None),
        Some(plugins) => tokio::select! {
            biased;
            Some(asked) = interrupts.next() => return Err(asked),
            judged = plugins.interpret(report, ctx) => judged,
        },
    };
    match judged {
        Ok(Some(decision)) => report.apply(decision),
        Ok(None) => {}
        Err(e) => {
            report.message = format!("{} (then: {e})", report.message);
            report.overruled.interpreters_failed = Some(e.exit_code());
            report.decide_exit_code();
        }
    }
    report.skip_on_exit_codes(&task.run.skip_on_exit_codes);
    Ok(())
}

/// Waits `wait` before the next attempt, its batch slot given back meanwhile and taken again
/// at the end, unless an interrupt comes first (then it is handed back).
async fn wait_turn(
    wait: Duration,
    mut turn: Option<&mut Turn>,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
) -> Result<(), Interrupt> {
    if let Some(t) = turn.as_deref_mut() {
        t.give_back();
    }
    let waited = async {
        tokio::time::sleep(wait).await;
        if let Some(t) = turn {
            t.take().await;
        }
    };
    tokio::select! {
        () = waited => Ok(()),
        Some(asked) = interrupts.next() => Err(asked),
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
    earlier: &[plugin::wit::Outcome],
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
    /// What stopped it, beyond its outcome.
    overruled: Overruled,
    message: String,
    /// What stopped it, as the start of a sentence.
    cause: String,
}

impl Ending {
    /// A plugin refused the pod.
    fn refused(why: &PluginError) -> Self {
        Self {
            outcome: Outcome::Refused,
            overruled: Overruled::default(),
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
                overruled: Overruled {
                    claim_lost: true,
                    ..Overruled::default()
                },
                message: format!("{why}: stopped before its pod was created"),
                cause: format!("{why}: stopped"),
            },
            Interrupt::Stop | Interrupt::Detach => Self {
                outcome: Outcome::Interrupted,
                overruled: Overruled {
                    interrupted: true,
                    ..Overruled::default()
                },
                message: "interrupted before its pod was created".into(),
                cause: "interrupted".into(),
            },
        }
    }

    /// Makes this the end of the run `report` is about (its message aside).
    fn overrule(&self, report: &mut RunReport) {
        report.outcome = self.outcome;
        report.overruled.claim_lost |= self.overruled.claim_lost;
        report.overruled.interrupted |= self.overruled.interrupted;
        report.decide_exit_code();
    }
}

/// What a plugin is told about the attempt it works on.
fn context(
    task: &Task,
    identity: &RunIdentity,
    namespace: &str,
    earlier: &[plugin::wit::Outcome],
) -> plugin::wit::Context {
    plugin::wit::Context {
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
    // Success and a skip need no retry; a run whose claim was lost is another supervisor's.
    if [crate::exit::SUCCESS, crate::exit::SKIPPED, crate::exit::CLAIMED].contains(&report.exit_code) {
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
        && (supervise::rate_limited(&report.message)
            || report.events.iter().any(|e| supervise::rate_limited(&e.message)));
    if disrupted || rate_limited {
        return Some(FailureClass::Infrastructure);
    }
    if report.outcome == Outcome::NeverStarted
        && report
            .start_failure
            .is_some_and(|f| f != StartFailure::Unstartable)
    {
        return Some(FailureClass::NeverStarted);
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
