//! Supervising one run: create the pod, follow it with one watch, stream its logs, decide the
//! outcome, clean up. A library function over a shared `kube::Client`, so many runs can share
//! one process.

mod collect;
mod events;
mod logs;
mod pauses;
mod records;
mod retry;
mod rotations;
mod shared_watch;
mod state;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

pub use records::Cursor;
use retry::ActError;
pub use shared_watch::SharedWatch;
use state::{Tracker, Verdict, pull_error_is_permanent};

use crate::claim::record::Entry;
use crate::claim::{Lost, Warrant};
use crate::pod::{LABEL_RUN_ID, LABEL_TASK};
use crate::report::{Cleanup, ContainerReport, EventReport, IncompleteLog, RunReport, TimelineEntry};
use crate::task::{LogSelection, OnFinish, RunPolicy};
use crate::vocabulary::{MAIN_CONTAINER, Outcome, Role};
use crate::{exit, status};

/// How long kpo keeps trying to delete the pod through API-server trouble.
const CLEANUP_LIMIT: Duration = Duration::from_secs(60);
/// How long past its grace period kpo waits for a deleted pod to be gone. A v1.20 kubelet took
/// ~30 s to remove a pod whose container never started (a missing Secret) even with a 1 s grace
/// period, and over a minute on a loaded node (seen in CI).
const GONE_LIMIT: Duration = Duration::from_secs(180);
/// The grace period of a pod in which no container runs: nothing to stop but its sandbox.
const NOTHING_RUNS_GRACE: Duration = Duration::from_secs(1);
/// How long past a deleted pod's grace period its kubelet may take to have killed what still ran.
const KILL_MARGIN: Duration = Duration::from_secs(2);
/// How long followers of containers that still run get to read what is stored of their logs.
const LIVE_LOG_GRACE: Duration = Duration::from_millis(300);

/// Receives what happens during a run, as it happens. The CLI draws progress and prints logs
/// with it; tests record it.
pub trait Observer: Send + Sync {
    /// The pod's phase or its reason changed.
    fn status(&self, _entry: &TimelineEntry) {}
    /// The next bytes of `container`'s output, exactly as it wrote them, each delivered once: one
    /// or more whole lines with their newlines, or part of a line (a line longer than the
    /// runtime's record limit, or output that does not end with a newline). Not necessarily UTF-8.
    fn log_bytes(&self, _container: &str, _bytes: &[u8]) {}
    /// Something worth telling the user: the pod was created, deleted, a retry happened.
    fn notice(&self, _message: &str) {}
    /// An attempt failed and attempt `next` starts after a pause (the notice says why).
    fn retrying(&self, _next: u32) {}
    /// The pod exists now (its UID identifies the run from here on): a journal records it.
    fn created(&self, _pod: &Pod) {}
    /// `container`'s log has been delivered up to `cursor`: a journal records it, so that a
    /// reattaching kpo can continue from there.
    fn log_checkpoint(&self, _container: &str, _cursor: &Cursor) {}
    /// The run ended before it could have a report — a plugin failed while the pod was being
    /// prepared — with this exit code and message: a journal records it, so that the run shows
    /// as ended (`kpo list`) and a later `kpo run --run-id` reports it.
    fn failed_before_the_pod(&self, _exit_code: i32, _message: &str) {}
}

/// What the person at the controls asked for by interrupting (Ctrl-C, SIGTERM): the command
/// line's `--on-signal`, not the task's business. A second interrupt of either kind skips the
/// pod's grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// Delete the pod and wait until it is gone (unless `on_finish = "keep"`).
    Stop,
    /// Leave the pod running and say how to follow it.
    Detach,
    /// This kpo lost its claim on the run (see [`crate::claim`]): another supervisor may hold
    /// it now, so stop acting on the pod at once — no deletion, no retry — and say why.
    Lost(String),
}

/// The cluster a run talks to, where it learns about its pod — a watch of its own, or the
/// watch its batch shares (see [`SharedWatch`]) — and by what right it acts on the pod: the
/// run's claim, asked before every create and delete.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub shared: Option<SharedWatch>,
    pub warrant: Warrant,
}

impl From<Client> for Cluster {
    fn from(client: Client) -> Self {
        Self {
            client,
            shared: None,
            warrant: Warrant::unconditional(),
        }
    }
}

/// A run's feed of its pod's events, subscribed before the pod exists so that nothing is missed.
enum Feed {
    Own,
    Shared(Box<shared_watch::Subscription>),
}

impl Cluster {
    fn feed(&self, pod: &str) -> Feed {
        self.shared
            .as_ref()
            .map_or(Feed::Own, |w| Feed::Shared(Box::new(w.subscribe(pod))))
    }
}

type PodEvents = futures::stream::BoxStream<'static, Result<shared_watch::PodEvent, watcher::Error>>;

impl Feed {
    /// The events of pod `name`. `known` is the pod as the caller found it, when it existed
    /// before the subscription: a shared watch that has listed and does not know it says it is
    /// gone.
    fn events(self, api: &Api<Pod>, name: &str, known: Option<&Pod>) -> PodEvents {
        match self {
            Feed::Own => {
                let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
                watcher(api.clone(), config).backoff(watch_backoff()).boxed()
            }
            Feed::Shared(sub) => {
                let sub = *sub;
                let first = match (sub.current, known) {
                    (Some(current), _) => Some(watcher::Event::Apply(current)),
                    (None, Some(known)) if sub.listed => Some(watcher::Event::Delete(known.clone())),
                    _ => None,
                };
                let rest = receiver_stream(sub.events).map(|event| *event);
                futures::stream::iter(first).chain(rest).map(Ok).boxed()
            }
        }
    }
}

/// How a broken watch is retried: through an outage of the API server too, and picked up within
/// 2 s of its return (kube's default backoff grows to 30 s, which an outage of a minute reaches).
fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .into()
}

fn receiver_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Errors that leave no run to report on: kpo could not talk to the cluster at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pod could not be created for a reason other than the API server refusing it.
    #[error("cannot reach the cluster to create pod {namespace}/{pod}")]
    Unavailable {
        namespace: String,
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// Runs `pod` to completion on the cluster behind `client` and reports how it went.
///
/// The pod must come from [`crate::pod::build`] (and any mutators): its labels name the task and
/// the run. `interrupt` resolving (Ctrl-C, SIGTERM) ends the run as [`Outcome::Interrupted`] and
/// deletes the pod unless the policy keeps it.
///
/// # Errors
/// Only when the cluster cannot be reached to create the pod; every other ending, including the
/// API server rejecting the pod, is a [`RunReport`].
pub async fn run(
    cluster: impl Into<Cluster>,
    pod: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    interrupts: impl Stream<Item = Interrupt> + Unpin,
) -> Result<RunReport, RunError> {
    let cluster = cluster.into();
    let pauses = pauses::Pauses::watch(&cluster.warrant, observer.clone());
    let mut report = Box::pin(create_and_supervise(cluster, pod, policy, observer, interrupts)).await?;
    pauses.into_timeline(&mut report.timeline);
    Ok(report)
}

/// [`run`], but for the pauses.
async fn create_and_supervise(
    cluster: Cluster,
    pod: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    interrupts: impl Stream<Item = Interrupt> + Unpin,
) -> Result<RunReport, RunError> {
    let mut report = new_report(&pod, policy);
    let (namespace, name) = (report.namespace.clone(), report.pod.clone());
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let feed = cluster.feed(&name);
    let (api_ref, pod_ref, name_ref, run_id) = (&api, &pod, &name, &report.run_id);
    let create = || async move {
        match api_ref.create(&PostParams::default(), pod_ref).await {
            // A create that failed in transit may still have happened: a pod of this very run
            // that already exists is ours.
            Err(kube::Error::Api(s)) if s.code == 409 => match api_ref.get(name_ref).await {
                Ok(existing) if existing.labels().get(LABEL_RUN_ID) == Some(run_id) => Ok(existing),
                _ => Err(kube::Error::Api(s)),
            },
            other => other,
        }
    };
    // The pod is the run's only once its record says so: recorded before it exists.
    let recorded = cluster.warrant.record(Entry::creating(&namespace, &name));
    // Boxed, as the other steps that come once: a run's future stays as small as its watch
    // needs, which counts when a batch holds a thousand of them.
    let created = match recorded.await {
        Ok(()) => {
            Box::pin(retry::acting(
                "creating the pod",
                policy.startup_timeout,
                &cluster.warrant,
                create,
            ))
            .await
        }
        Err(lost) => Err(ActError::Lost(lost)),
    };
    let created = match created {
        Ok(p) => p,
        Err(ActError::Api(kube::Error::Api(status)))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            cluster.warrant.forget(&namespace, &name);
            report.message = format!("the API server rejected the pod: {}", status.message);
            return Ok(finish(report, None));
        }
        Err(ActError::Lost(why)) => {
            report.outcome = Outcome::Interrupted;
            report.message = format!("{why}: stopped before its pod was created");
            let mut report = finish(report, None);
            report.exit_code = exit::CLAIMED;
            return Ok(report);
        }
        Err(ActError::Api(source)) => {
            return Err(RunError::Unavailable {
                namespace,
                pod: name,
                source,
            });
        }
    };
    report.uid = created.uid();
    cluster.warrant.note(Entry::created(&created));
    observer.created(&created);
    let events = feed.events(&api, &name, None);
    Ok(supervise(
        cluster,
        events,
        created,
        policy,
        observer,
        interrupts,
        report,
        BTreeMap::new(),
    )
    .await)
}

/// Supervises a pod that already exists — found again by a kpo that restarted — from where an
/// earlier kpo left off: `cursors` say how far each container's log was delivered.
///
/// The caller must have matched the pod by UID, never by name alone: a pod with the same name
/// may be another run's.
pub async fn attach(
    cluster: impl Into<Cluster>,
    pod: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    interrupts: impl Stream<Item = Interrupt> + Unpin,
    cursors: BTreeMap<String, Cursor>,
) -> RunReport {
    let cluster = cluster.into();
    let pauses = pauses::Pauses::watch(&cluster.warrant, observer.clone());
    let mut report = new_report(&pod, policy);
    record(&mut report, observer.as_ref(), "Reattached".into(), None);
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &report.namespace);
    let events = cluster.feed(&report.pod).events(&api, &report.pod, Some(&pod));
    let mut report = supervise(
        cluster, events, pod, policy, observer, interrupts, report, cursors,
    )
    .await;
    pauses.into_timeline(&mut report.timeline);
    report
}

/// Adds a step to the run's timeline and shows it.
fn record(report: &mut RunReport, observer: &dyn Observer, phase: String, detail: Option<String>) {
    let entry = TimelineEntry {
        at: Timestamp::now(),
        phase,
        detail,
    };
    observer.status(&entry);
    report.timeline.push(entry);
}

/// The report of a run of `pod`, before anything happened.
pub(crate) fn new_report(pod: &Pod, policy: &RunPolicy) -> RunReport {
    let labels = pod.labels();
    RunReport {
        task: labels.get(LABEL_TASK).cloned().unwrap_or_default(),
        run_id: labels.get(LABEL_RUN_ID).cloned().unwrap_or_default(),
        namespace: pod.namespace().unwrap_or_else(|| "default".into()),
        pod: pod.name_any(),
        uid: pod.uid(),
        outcome: Outcome::Rejected,
        exit_code: 0,
        message: String::new(),
        on_finish: policy.on_finish,
        cleanup: Cleanup::None,
        started_at: Timestamp::now(),
        finished_at: Timestamp::now(),
        timeline: Vec::new(),
        containers: Vec::new(),
        events: Vec::new(),
        result: None,
        result_bytes: None,
        result_error: None,
        outputs: Default::default(),
        outputs_ignored: 0,
        attempt: labels
            .get(crate::pod::LABEL_ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1),
        attempts: Vec::new(),
        mutations: Vec::new(),
        warnings: Vec::new(),
        policies: Vec::new(),
        decision: None,
        log_tail: Vec::new(),
        disruption: None,
        incomplete_logs: Vec::new(),
        final_pod: None,
    }
}

/// Follows an existing pod to the end of the run; even a panic on the way deletes it (per
/// policy) before it is passed on.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    cluster: Cluster,
    events: PodEvents,
    pod: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    interrupts: impl Stream<Item = Interrupt> + Unpin,
    report: RunReport,
    cursors: BTreeMap<String, Cursor>,
) -> RunReport {
    let (namespace, name) = (report.namespace.clone(), report.pod.clone());
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let warrant = cluster.warrant.clone();
    // Whatever happens from here on, the pod exists: even a panic must not leave it behind.
    // Boxed: the whole run is one large future, better on the heap than on a caller's stack.
    let supervised = AssertUnwindSafe(Box::pin(follow(
        cluster, events, pod, policy, observer, interrupts, report, cursors,
    )));
    match supervised.catch_unwind().await {
        Ok(report) => report,
        Err(panic) => {
            if policy.on_finish != OnFinish::Keep {
                let params = DeleteParams::default();
                let delete = || api.delete(&name, &params);
                if let Err(e) = retry::acting("deleting the pod", CLEANUP_LIMIT, &warrant, delete).await {
                    tracing::error!("could not delete pod {namespace}/{name} after an internal error: {e}");
                }
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Supervises the created pod to the end of the run, step by step: follow its logs, watch it
/// until the outcome is decided, read its logs to their end, gather the report, read the result,
/// clean up.
#[allow(clippy::too_many_arguments)]
async fn follow(
    cluster: Cluster,
    events: PodEvents,
    created: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    mut interrupts: impl Stream<Item = Interrupt> + Unpin,
    mut report: RunReport,
    mut cursors: BTreeMap<String, Cursor>,
) -> RunReport {
    let client = cluster.client.clone();
    let api: Api<Pod> = Api::namespaced(client.clone(), &report.namespace);
    if report.timeline.is_empty() {
        let pod = format!("pod {}/{}", report.namespace, report.pod);
        record(&mut report, observer.as_ref(), "Submitted".into(), Some(pod));
    }
    let started = tokio::time::Instant::now();
    let tail = Arc::new(tail::Tail::new(observer.clone()));
    let observer: Arc<dyn Observer> = tail.clone();
    let (pods_tx, pods_rx) = watch::channel(Some(created.clone()));
    let (wrap_up, wrap_up_rx) = watch::channel(false);
    let followers: Vec<_> = log_containers(&created, &policy.logs)
        .into_iter()
        .map(|c| {
            let from = cursors.remove(&c).unwrap_or_default();
            let source = logs::Source {
                api: api.clone(),
                warrant: cluster.warrant.clone(),
                pod: report.pod.clone(),
                container: c.clone(),
            };
            let task = logs::follow(
                source,
                pods_rx.clone(),
                wrap_up_rx.clone(),
                observer.clone(),
                from,
            );
            (c, tokio::spawn(task))
        })
        .collect();
    let watching = Watching {
        client: &client,
        warrant: &cluster.warrant,
        policy,
        observer: observer.as_ref(),
        pods: &pods_tx,
    };
    let decided = watching
        .decide(created, events, &mut interrupts, &mut report)
        .await;
    tracing::debug!(elapsed = ?started.elapsed(), outcome = ?decided.outcome, "run decided");
    if report.disruption.is_none() && decided.outcome != Outcome::Interrupted {
        report.disruption = state::disruption(&decided.last);
    }
    let heard = Box::pin(drain(
        followers,
        &wrap_up,
        &decided.last,
        &mut interrupts,
        observer.as_ref(),
        &mut report,
    ))
    .await;
    let mut lost = decided.lost.clone();
    if let (None, Some(Interrupt::Lost(why))) = (&lost, heard) {
        lost = Some(why);
    }
    if decided.outcome != Outcome::Succeeded && policy.events_on_failure {
        let uid = report.uid.clone().unwrap_or_default();
        match Box::pin(events::for_pod(
            client.clone(),
            &cluster.warrant,
            &report.namespace,
            &report.pod,
            &uid,
        ))
        .await
        {
            Ok(ev) => report.events = ev,
            Err(e) => tracing::warn!("cannot read the pod's events: {e}"),
        }
    }
    report.outcome = decided.outcome;
    report.message = decided.message;
    report.containers = containers(&decided.last);
    report.log_tail = tail.lines();
    let outputs = tail.outputs();
    if outputs.ignored > 0 {
        observer.notice(&format!(
            "{} ::kpo-output line(s) ignored: kpo keeps {} names and values of at most {} bytes",
            outputs.ignored,
            crate::result::MAX_OUTPUTS,
            crate::result::MAX_OUTPUT_VALUE
        ));
    }
    report.outputs = outputs.values;
    report.outputs_ignored = outputs.ignored;
    // The result is read before any clean-up: deleting the pod would lose it.
    let result_error = Box::pin(read_result(
        &api,
        &cluster.warrant,
        policy,
        &decided.last,
        &mut report,
    ))
    .await;
    report.final_pod = Some(decided.last);
    let current = pods_tx.borrow().clone();
    // A run whose claim is lost belongs to another supervisor now: not even advice on its pod.
    if lost.is_none() {
        let cleaned = Box::pin(clean_up(
            &cluster,
            policy,
            current,
            decided.detach,
            &mut interrupts,
            observer.as_ref(),
            &report,
        ))
        .await;
        match cleaned {
            Ok(cleanup) => report.cleanup = cleanup,
            Err(Lost(why)) => lost = Some(why),
        }
    }
    if lost.is_some() {
        report.cleanup = Cleanup::Detached;
    }
    let mut report = conclude(report, result_error);
    if let Some(why) = lost {
        report.exit_code = exit::CLAIMED;
        if decided.lost.is_none() {
            report.message = format!("{}; then {why}: {LEFT_TO_THE_HOLDER}", report.message);
        }
    }
    report
}

/// What a supervisor that lost its claim did.
const LEFT_TO_THE_HOLDER: &str =
    "this kpo stopped supervising the run and left its pod to whoever holds the run now";

/// How often a deadline that passed during a pause looks again.
const PAUSED_RECHECK: Duration = Duration::from_secs(1);

/// What the watch decided.
struct Decided {
    outcome: Outcome,
    message: String,
    /// The interrupt asked to leave the pod running.
    detach: bool,
    /// The run's claim was lost (why): nothing more may be done to the pod.
    lost: Option<String>,
    /// The pod as last seen.
    last: Pod,
}

/// What the watch of one pod needs.
struct Watching<'a> {
    client: &'a Client,
    warrant: &'a Warrant,
    policy: &'a RunPolicy,
    observer: &'a dyn Observer,
    /// Every snapshot, for the log followers (`None` once the pod is gone).
    pods: &'a watch::Sender<Option<Pod>>,
}

impl Watching<'_> {
    /// Watches the pod (one watch, resumed after errors) until the state machine, a deadline,
    /// an interrupt or the pod's deletion decides the outcome.
    async fn decide(
        &self,
        created: Pod,
        events: PodEvents,
        interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
        report: &mut RunReport,
    ) -> Decided {
        let policy = self.policy;
        let uid = report.uid.clone().unwrap_or_default();
        let mut tracker = Tracker::default();
        let mut last = created;
        let mut checked_pull = None;
        let mut stream = events;
        let startup_deadline = tokio::time::sleep(policy.startup_timeout);
        let overall_deadline = tokio::time::sleep(policy.timeout.unwrap_or(Duration::MAX / 4));
        tokio::pin!(startup_deadline, overall_deadline);
        let mut seen_in_listing = false;
        let mut detach = false;
        let mut lost = None;
        let (outcome, message) = loop {
            let event = tokio::select! {
                Some(asked) = interrupts.next() => {
                    detach = asked != Interrupt::Stop;
                    match asked {
                        Interrupt::Lost(why) => {
                            let message = format!("{why}: {LEFT_TO_THE_HOLDER}");
                            lost = Some(why);
                            break (Outcome::Interrupted, message);
                        }
                        _ => break (Outcome::Interrupted, "interrupted; the run was stopped before the pod finished".to_owned()),
                    }
                }
                // A deadline that passes while the claim is paused waits for it: kpo may not
                // act, and what it knows of the pod is as old as the pause.
                () = &mut startup_deadline, if !tracker.main_started => {
                    if self.warrant.paused() {
                        startup_deadline.as_mut().reset(tokio::time::Instant::now() + PAUSED_RECHECK);
                        continue;
                    }
                    let why = state::status_of(&last).detail.map(|d| format!(" (last seen: {d})")).unwrap_or_default();
                    break (Outcome::NeverStarted, format!("{MAIN_CONTAINER} did not start within {}{why}", human(policy.startup_timeout)));
                }
                () = &mut overall_deadline => {
                    if self.warrant.paused() {
                        overall_deadline.as_mut().reset(tokio::time::Instant::now() + PAUSED_RECHECK);
                        continue;
                    }
                    break (Outcome::TimedOut, format!("the run did not finish within its timeout of {}", human(policy.timeout.unwrap_or_default())));
                }
                event = stream.next() => event,
            };
            let snapshot = match event {
                Some(Ok(watcher::Event::Init)) => {
                    seen_in_listing = false;
                    continue;
                }
                Some(Ok(watcher::Event::InitDone)) if !seen_in_listing => None,
                Some(Ok(watcher::Event::InitDone)) => continue,
                Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)))
                    if p.uid().as_deref() == Some(&uid) =>
                {
                    seen_in_listing = true;
                    Some(p)
                }
                Some(Ok(watcher::Event::Delete(p))) if p.uid().as_deref() == Some(&uid) => None,
                // Another pod that happens to have the same name: not ours.
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::debug!("watch interrupted, resuming: {e}");
                    continue;
                }
                None => {
                    break (
                        Outcome::Failed,
                        "the watch on the pod ended unexpectedly".to_owned(),
                    );
                }
            };
            let Some(pod) = snapshot else {
                self.pods.send_replace(None);
                break deleted(&last, report);
            };
            last = pod.clone();
            self.pods.send_replace(Some(pod.clone()));
            let (change, verdict) = tracker.observe(&pod);
            if let Some(s) = change {
                record(report, self.observer, s.phase, s.detail);
            }
            match verdict {
                Verdict::Continue => {}
                Verdict::Done { outcome, message } => break (outcome, message),
                Verdict::PullFailing { container, message } => {
                    // Events are read once per new waiting message, not on every update.
                    let seen = Some((container.clone(), message.clone()));
                    if checked_pull == seen {
                        continue;
                    }
                    checked_pull = seen;
                    if let Some(why) = self.permanent_pull_error(&pod, &container, message, &uid).await {
                        break (Outcome::NeverStarted, why);
                    }
                }
            }
        };
        Decided {
            outcome,
            message,
            detach,
            lost,
            last,
        }
    }

    /// Why the image of `container` will never be pulled, when the kubelet's message or the
    /// pod's events say so (a missing image does not heal; a rate limit may).
    async fn permanent_pull_error(
        &self,
        pod: &Pod,
        container: &str,
        message: Option<String>,
        uid: &str,
    ) -> Option<String> {
        let image = image_of(pod, container);
        let answer = match message.filter(|m| !m.starts_with("Back-off")) {
            Some(m) => Some(m),
            None => {
                let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
                events::for_pod(self.client.clone(), self.warrant, &namespace, &name, uid)
                    .await
                    .ok()
                    .and_then(|ev| events::last_pull_error(&ev, &image))
            }
        };
        answer
            .filter(|a| pull_error_is_permanent(a))
            .map(|a| format!("cannot pull image \"{image}\" for container {container}: {a}"))
    }
}

/// The outcome of a pod deleted before it finished: stopped by a kpo command (marked), or
/// disrupted (a preemption or a drain may say why in the DisruptionTarget condition).
fn deleted(last: &Pod, report: &mut RunReport) -> (Outcome, String) {
    if let Some(by) = crate::stop::stopped_by(last) {
        return (
            Outcome::Failed,
            format!("{by} deleted the pod before it finished"),
        );
    }
    let why = state::disruption(last).unwrap_or_else(|| "deleted by someone else".to_owned());
    report.disruption = Some(why.clone());
    (
        Outcome::Failed,
        format!("the pod was deleted by someone else before it finished ({why})"),
    )
}

/// Followers of finished containers read their logs to the end and stop by themselves, however
/// long that takes (the pod is not deleted before); an interrupt stops the wait. Those of
/// containers still running (sidecars, or everything after a timeout) are told to wrap up: they
/// read what is stored so far, bounded by [`LIVE_LOG_GRACE`], alongside. The interrupt that
/// stopped the wait, if one did.
async fn drain(
    followers: Vec<(String, tokio::task::JoinHandle<Option<String>>)>,
    wrap_up: &watch::Sender<bool>,
    last: &Pod,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
    observer: &dyn Observer,
    report: &mut RunReport,
) -> Option<Interrupt> {
    let (finished, running): (Vec<_>, Vec<_>) = followers
        .into_iter()
        .partition(|(c, _)| status::terminated(last, c));
    wrap_up.send_replace(true);
    let abort: Vec<_> = running.iter().map(|(_, f)| f.abort_handle()).collect();
    let running = futures::future::join_all(running.into_iter().map(|(_, f)| f));
    let wrapped = tokio::spawn(tokio::time::timeout(LIVE_LOG_GRACE, running));
    let draining: Vec<_> = finished
        .iter()
        .map(|(c, f)| (c.clone(), f.abort_handle()))
        .collect();
    let drained = futures::future::join_all(finished.into_iter().map(|(_, f)| f));
    tokio::pin!(drained);
    let mut heard = None;
    let endings = tokio::select! {
        endings = &mut drained => endings.into_iter().map(|e| e.ok().flatten()).collect(),
        Some(asked) = interrupts.next() => {
            draining.iter().for_each(|(_, f)| f.abort());
            heard = Some(asked);
            vec![Some("interrupted before the log was read to its end".to_owned()); draining.len()]
        }
    };
    for ((container, _), ending) in draining.iter().zip(endings) {
        if let Some(reason) = ending {
            observer.notice(&format!("the log of {container} may be incomplete: {reason}"));
            report.incomplete_logs.push(IncompleteLog {
                container: container.clone(),
                reason,
            });
        }
    }
    let _ = wrapped.await;
    abort.iter().for_each(|a| a.abort());
    heard
}

/// Reads the task's result document into the report, when the task has one and got to write
/// it; why it cannot be used otherwise.
async fn read_result(
    api: &Api<Pod>,
    warrant: &Warrant,
    policy: &RunPolicy,
    last: &Pod,
    report: &mut RunReport,
) -> Option<crate::result::ResultError> {
    let (Some(spec), Outcome::Succeeded | Outcome::Failed) = (&policy.result, report.outcome) else {
        return None;
    };
    match collect::result(api, warrant, &report.pod, last, spec).await {
        Ok(document) => {
            report.result = document.as_ref().map(|d| d.value.clone());
            report.result_bytes = document.map(|d| d.bytes);
            None
        }
        Err(e) => Some(e),
    }
}

/// Deletes the pod unless the policy keeps it or the interrupt detached from it. A pod that
/// has finished has nothing left to stop: it goes at once, as the pod garbage collector deletes
/// terminated pods. One whose main container has ended while sidecars still run is deleted
/// gracefully and left stopping: the task's work is over, its log and result are read, and what
/// still runs is being stopped by its kubelet within its grace period — waiting for a sidecar
/// that ignores SIGTERM would add the whole grace period to every run (`wait_for_deletion`
/// asks for the wait). Any other is deleted gracefully and waited for, so that nothing of a run
/// that did not end by itself — a timeout, an interrupt, a pod that never started — runs on
/// unsupervised once kpo has returned; one in which nothing runs (it never started) gets a short
/// grace period, as a v1.20 kubelet otherwise waits the whole period out.
async fn clean_up(
    cluster: &Cluster,
    policy: &RunPolicy,
    current: Option<Pod>,
    detach: bool,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
    observer: &dyn Observer,
    report: &RunReport,
) -> Result<Cleanup, Lost> {
    let (namespace, name) = (&report.namespace, &report.pod);
    let api: &Api<Pod> = &Api::namespaced(cluster.client.clone(), namespace);
    let Some(pod) = current else {
        return Ok(Cleanup::None);
    };
    if detach {
        observer.notice(&format!(
            "detached: pod {namespace}/{name} runs on; follow it with `kubectl logs -f -n {namespace} {name} -c {MAIN_CONTAINER}`, stop it with `kubectl delete pod -n {namespace} {name}`"
        ));
        return Ok(Cleanup::Detached);
    }
    if policy.on_finish.keeps(report.outcome == Outcome::Succeeded) {
        observer.notice(&format!(
            "keeping pod {namespace}/{name} (on_finish = {})",
            policy.on_finish.name()
        ));
        return Ok(Cleanup::Kept);
    }
    let finished = status::stopped(&pod);
    let grace = if finished {
        Duration::ZERO
    } else if status::running(&pod) {
        last_grace(Some(&pod))
    } else {
        last_grace(Some(&pod)).min(NOTHING_RUNS_GRACE)
    };
    let work_done = status::terminated(&pod, MAIN_CONTAINER)
        && matches!(report.outcome, Outcome::Succeeded | Outcome::Failed);
    let uid = report.uid.clone().unwrap_or_default();
    let params = DeleteParams {
        grace_period_seconds: Some(grace.as_secs() as u32),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let delete = || api.delete(name, &params);
    // A pod seen gone leaves the run's record; one that may still be there stays in it.
    let gone = || cluster.warrant.forget(namespace, name);
    match retry::acting("deleting the pod", CLEANUP_LIMIT, &cluster.warrant, delete).await {
        // Without a grace period the API server removes it at once.
        Ok(_) if finished => {
            gone();
            observer.notice(&format!("deleted pod {namespace}/{name}"));
            Ok(Cleanup::Deleted)
        }
        Ok(_) if work_done && !policy.wait_for_deletion => {
            observer.notice(&format!(
                "pod {namespace}/{name} is stopping (grace period {}): what still runs in it is not the task's work",
                human(grace)
            ));
            Ok(Cleanup::Stopping)
        }
        Ok(_) => {
            if wait_gone(cluster, api, name, &uid, grace, interrupts, observer).await? {
                gone();
            }
            observer.notice(&format!("deleted pod {namespace}/{name}"));
            Ok(Cleanup::Deleted)
        }
        // Gone, or replaced by another pod of that name (the UID precondition failed).
        Err(ActError::Api(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => {
            gone();
            Ok(Cleanup::None)
        }
        Err(ActError::Lost(lost)) => Err(lost),
        Err(ActError::Api(e)) => {
            observer.notice(&format!("could not delete pod {namespace}/{name}: {e}"));
            Ok(Cleanup::Failed)
        }
    }
}

/// The report's last words: the result's error if any, the exit code, the finishing time.
fn conclude(mut report: RunReport, result_error: Option<crate::result::ResultError>) -> RunReport {
    let result_failed = result_error.is_some();
    if let Some(e) = result_error {
        report.message = format!("{}; but {e}", report.message);
        report.result_error = Some(e.to_string());
    }
    let main_exit = report.main_exit();
    let mut report = finish(report, main_exit);
    if result_failed && report.exit_code == exit::SUCCESS {
        report.exit_code = exit::RESULT_INVALID;
    }
    report
}

/// The pod's termination grace period (30 s unless it says otherwise).
fn last_grace(pod: Option<&Pod>) -> Duration {
    let seconds = pod
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.termination_grace_period_seconds);
    Duration::from_secs(seconds.unwrap_or(30).max(0) as u64)
}

/// After deleting a pod that had not finished: waits until it is really gone (its containers
/// stopped), bounded by its grace period plus a margin; whether it was seen gone. Another interrupt meanwhile deletes it at
/// once. A pod that reaches a terminal phase while it is being deleted is deleted at once once
/// its containers have stopped, or once the grace period in which the kubelet kills them has
/// passed: a v1.20 kubelet never removes a pod that failed its `activeDeadlineSeconds` during a
/// graceful deletion, nor reports its containers as stopped.
async fn wait_gone(
    cluster: &Cluster,
    api: &Api<Pod>,
    name: &str,
    uid: &str,
    grace: Duration,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
    observer: &dyn Observer,
) -> Result<bool, Lost> {
    let killed_by = tokio::time::Instant::now() + grace + KILL_MARGIN;
    let other = |p: &Pod| p.uid().as_deref() != Some(uid);
    let settled = move |pod: Option<&Pod>| pod.is_none_or(|p| other(p) || status::finished(p));
    let stopped = move |pod: Option<&Pod>| pod.is_none_or(|p| other(p) || status::stopped(p));
    let waited = async {
        let pod = match until(cluster, api, name, grace + GONE_LIMIT, settled).await {
            None => return Err(()),
            Some(None) => return Ok(None),
            Some(Some(pod)) => pod,
        };
        if other(&pod) || status::stopped(&pod) {
            return Ok(Some(pod));
        }
        let rest = killed_by.saturating_duration_since(tokio::time::Instant::now());
        Ok(until(cluster, api, name, rest, stopped)
            .await
            .unwrap_or(Some(pod)))
    };
    // Boxed: watch futures are large, and this one sits deep in the run's future.
    let mut waited = Box::pin(waited);
    observer.notice(&format!(
        "waiting for pod {name} to stop (grace period {}; interrupt to skip it)",
        human(grace)
    ));
    tokio::select! {
        result = &mut waited => match result {
            Err(()) => {
                observer.notice(&format!("pod {name} did not stop within {}; it is left being deleted", human(grace + GONE_LIMIT)));
                return Ok(false);
            }
            Ok(None) => {
                tracing::debug!("pod {name} is gone");
                return Ok(true);
            }
            Ok(Some(pod)) if other(&pod) => return Ok(true),
            Ok(Some(_)) => tracing::debug!("pod {name} has finished; deleting it at once"),
        },
        Some(asked) = interrupts.next() => {
            if let Interrupt::Lost(why) = asked {
                return Err(Lost(why));
            }
            observer.notice("interrupted again: deleting the pod without its grace period");
        }
    }
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    };
    cluster.warrant.may_act().await?;
    if let Err(e) = api.delete(name, &now).await {
        tracing::debug!("immediate delete failed: {e}");
    }
    let gone = |pod: Option<&Pod>| pod.is_none_or(|p| p.uid().as_deref() != Some(uid));
    let seen = Box::pin(until(cluster, api, name, CLEANUP_LIMIT, gone)).await;
    if seen.is_none() {
        observer.notice(&format!("pod {name} is still being deleted"));
    }
    Ok(seen.is_some())
}

/// Waits until `condition` holds for the pod called `name`, watching again after a watch error
/// (under load a watch can fail, and returning then would leave a pod behind), for at most
/// `limit`. `None` when the limit passed first; otherwise the pod as it was then.
async fn until(
    cluster: &Cluster,
    api: &Api<Pod>,
    name: &str,
    limit: Duration,
    condition: impl Fn(Option<&Pod>) -> bool + Copy,
) -> Option<Option<Pod>> {
    let deadline = tokio::time::Instant::now() + limit;
    if let Some(shared) = &cluster.shared {
        let found = shared_until(shared.subscribe(name), condition);
        return tokio::time::timeout_at(deadline, found).await.ok();
    }
    loop {
        match tokio::time::timeout_at(deadline, await_condition(api.clone(), name, condition)).await {
            Ok(Ok(found)) => return Some(found),
            Ok(Err(e)) => {
                tracing::debug!("watching pod {name} failed ({e}); watching again");
                tokio::time::sleep(
                    logs::RECONNECT_PAUSE
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                )
                .await;
            }
            Err(_) => return None,
        }
    }
}

/// [`until`] on a shared watch: from the pod's state as last seen, then its events.
async fn shared_until(
    sub: shared_watch::Subscription,
    condition: impl Fn(Option<&Pod>) -> bool,
) -> Option<Pod> {
    let mut current = sub.current;
    if !sub.listed || current.is_some() {
        let mut events = sub.events;
        let mut seen_in_listing = true;
        while !condition(current.as_ref()) {
            match events.recv().await.map(|event| *event) {
                Some(watcher::Event::Init) => seen_in_listing = false,
                Some(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    seen_in_listing = true;
                    current = Some(p);
                }
                Some(watcher::Event::Delete(_)) => current = None,
                Some(watcher::Event::InitDone) if !seen_in_listing => current = None,
                Some(watcher::Event::InitDone) => {}
                // The batch's watch is gone: nothing more will be learnt.
                None => std::future::pending::<()>().await,
            }
        }
    }
    current
}

fn finish(mut report: RunReport, main_exit: Option<i32>) -> RunReport {
    report.exit_code = report.outcome.exit_code(main_exit);
    report.finished_at = Timestamp::now();
    report
}

fn human(d: Duration) -> String {
    jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |s| format!("{s:#}"))
}

fn image_of(pod: &Pod, container: &str) -> String {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Which containers to stream, by the task's log selection.
fn log_containers(pod: &Pod, selection: &LogSelection) -> Vec<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone());
    match selection {
        LogSelection::None => Vec::new(),
        LogSelection::Main => vec![MAIN_CONTAINER.to_owned()],
        // The result sidecar's log is the result itself, framed: not for people.
        LogSelection::All => all.filter(|c| c != crate::result::SIDECAR).collect(),
        LogSelection::Containers(names) => names.clone(),
    }
}

/// Per-container results from the last snapshot of the pod.
fn containers(pod: &Pod) -> Vec<ContainerReport> {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let inits = spec.init_containers.iter().flatten().map(|c| {
        let role = if c.restart_policy.as_deref() == Some("Always") {
            Role::NativeSidecar
        } else {
            Role::Init
        };
        (
            c,
            role,
            status
                .init_container_statuses
                .iter()
                .flatten()
                .find(|s| s.name == c.name),
        )
    });
    let regular = spec.containers.iter().map(|c| {
        let role = if c.name == MAIN_CONTAINER {
            Role::Main
        } else {
            Role::Sidecar
        };
        (
            c,
            role,
            status
                .container_statuses
                .iter()
                .flatten()
                .find(|s| s.name == c.name),
        )
    });
    inits
        .chain(regular)
        .map(|(c, role, s)| {
            let state = s.and_then(|s| s.state.as_ref());
            let t = state.and_then(|st| st.terminated.as_ref());
            let w = state.and_then(|st| st.waiting.as_ref());
            ContainerReport {
                name: c.name.clone(),
                role,
                exit_code: t.map(|t| t.exit_code),
                reason: t
                    .and_then(|t| t.reason.clone())
                    .or_else(|| w.and_then(|w| w.reason.clone())),
                message: t
                    .and_then(|t| t.message.clone())
                    .or_else(|| w.and_then(|w| w.message.clone())),
                started_at: t
                    .and_then(|t| t.started_at.clone())
                    .or_else(|| {
                        state
                            .and_then(|st| st.running.as_ref())
                            .and_then(|r| r.started_at.clone())
                    })
                    .map(|t| t.0),
                finished_at: t.and_then(|t| t.finished_at.clone()).map(|t| t.0),
            }
        })
        .collect()
}

/// Events to show a person, one per line.
pub fn format_events(events: &[EventReport]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let count = if e.count > 1 {
                format!(" (x{})", e.count)
            } else {
                String::new()
            };
            format!("{} {}: {}{count}", e.kind, e.reason, e.message)
        })
        .collect()
}
