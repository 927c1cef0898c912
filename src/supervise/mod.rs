//! Supervising one run: create the pod, follow it with one watch, stream its logs, decide the
//! outcome, clean up. A library function over a shared `kube::Client`, so many runs can share
//! one process.

mod cleanup;
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
mod watching;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use cleanup::clean_up;
pub use records::Cursor;
use retry::ActError;
pub use shared_watch::SharedWatch;
pub use state::rate_limited;
use watching::{Decided, LEFT_TO_THE_HOLDER, Watching};

use crate::claim::record::Entry;
use crate::claim::{Lost, Warrant};
use crate::pod::{LABEL_RUN_ID, LABEL_TASK};
use crate::report::{Cleanup, ContainerReport, EventReport, IncompleteLog, RunReport, TimelineEntry};
use crate::status;
use crate::task::{LogSelection, OnFinish, RunPolicy};
use crate::vocabulary::{ContainerRole, MAIN_CONTAINER, Outcome};

/// How long kpo keeps trying to delete the pod through API-server trouble.
const CLEANUP_LIMIT: Duration = Duration::from_secs(60);
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
pub async fn launch(
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

/// [`launch`], but for the pauses.
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
            return Ok(finish(report));
        }
        Err(ActError::Lost(why)) => {
            report.outcome = Outcome::Interrupted;
            report.overruled.claim_lost = true;
            report.message = format!("{why}: stopped before its pod was created");
            return Ok(finish(report));
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

/// The report of a run of `pod`, before anything happened: the pod's labels (kpo's own, which
/// no mutator may change) say whose run it is — for a pod followed again, nothing else does.
fn new_report(pod: &Pod, policy: &RunPolicy) -> RunReport {
    let labels = pod.labels();
    let label = |key: &str| labels.get(key).map_or("", String::as_str);
    let mut report = RunReport::new(
        label(LABEL_TASK),
        label(LABEL_RUN_ID),
        &pod.namespace().unwrap_or_else(|| "default".into()),
        &pod.name_any(),
        crate::pod::attempt_of(pod),
        policy.on_finish,
    );
    report.uid = pod.uid();
    report
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
    let supervised = AssertUnwindSafe(Box::pin(follow_pod(
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
async fn follow_pod(
    cluster: Cluster,
    events: PodEvents,
    created: Pod,
    policy: &RunPolicy,
    observer: Arc<dyn Observer>,
    mut interrupts: impl Stream<Item = Interrupt> + Unpin,
    mut report: RunReport,
    cursors: BTreeMap<String, Cursor>,
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
    let followers = follow_logs(
        &cluster,
        &api,
        &created,
        policy,
        &report.pod,
        (&pods_rx, &wrap_up_rx),
        &observer,
        cursors,
    );
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
    let current = pods_tx.borrow().clone();
    let ended = Ended {
        decided,
        lost,
        current,
    };
    Box::pin(wind_up(
        &cluster,
        &api,
        policy,
        ended,
        &tail,
        &mut interrupts,
        report,
    ))
    .await
}

/// How the run ended, as the watch decided it: the claim lost on the way, if it was, and the
/// pod as last seen.
struct Ended {
    decided: Decided,
    lost: Option<String>,
    current: Option<Pod>,
}

/// The run decided and its logs read: the report gathered, the result read (before any
/// clean-up: deleting the pod would lose it), the pod cleaned up — unless the claim is lost:
/// then the run is another supervisor's, and not even advice on its pod is given.
async fn wind_up(
    cluster: &Cluster,
    api: &Api<Pod>,
    policy: &RunPolicy,
    ended: Ended,
    tail: &tail::Tail,
    interrupts: &mut (impl Stream<Item = Interrupt> + Unpin),
    mut report: RunReport,
) -> RunReport {
    let Ended {
        decided,
        mut lost,
        current,
    } = ended;
    if decided.outcome != Outcome::Succeeded && policy.events_on_failure {
        report.events = Box::pin(failure_events(cluster, &report)).await;
    }
    report.outcome = decided.outcome;
    report.message = decided.message;
    report.containers = containers(&decided.last);
    report.log_tail = tail.lines();
    take_outputs(tail, &mut report);
    let result_error = Box::pin(read_result(
        api,
        &cluster.warrant,
        policy,
        &decided.last,
        &mut report,
    ))
    .await;
    report.final_pod = Some(decided.last);
    if lost.is_none() {
        let cleaned = Box::pin(clean_up(
            cluster,
            policy,
            current,
            decided.detach,
            interrupts,
            tail,
            &report,
        ))
        .await;
        match cleaned {
            Ok(cleanup) => report.cleanup = cleanup,
            Err(Lost(why)) => lost = Some(why),
        }
    }
    if let Some(e) = result_error {
        report.message = format!("{}; but {e}", report.message);
        report.result_error = Some(e.to_string());
    }
    if let Some(why) = &lost {
        report.cleanup = Cleanup::Detached;
        report.overruled.claim_lost = true;
        if decided.lost.is_none() {
            report.message = format!("{}; then {why}: {LEFT_TO_THE_HOLDER}", report.message);
        }
    }
    finish(report)
}

/// A follower of each container whose log the task shows, from where `cursors` say it was
/// delivered; each stops by itself at its log's end, or when told to wrap up.
#[allow(clippy::too_many_arguments)]
fn follow_logs(
    cluster: &Cluster,
    api: &Api<Pod>,
    created: &Pod,
    policy: &RunPolicy,
    pod: &str,
    (pods, wrap_up): (&watch::Receiver<Option<Pod>>, &watch::Receiver<bool>),
    observer: &Arc<dyn Observer>,
    mut cursors: BTreeMap<String, Cursor>,
) -> Vec<(String, tokio::task::JoinHandle<Option<String>>)> {
    log_containers(created, &policy.logs)
        .into_iter()
        .map(|c| {
            let from = cursors.remove(&c).unwrap_or_default();
            let source = logs::Source {
                api: api.clone(),
                warrant: cluster.warrant.clone(),
                pod: pod.to_owned(),
                container: c.clone(),
            };
            let task = logs::follow(source, pods.clone(), wrap_up.clone(), observer.clone(), from);
            (c, tokio::spawn(task))
        })
        .collect()
}

/// The events of the run's pod, to explain a failure (none when they cannot be read).
async fn failure_events(cluster: &Cluster, report: &RunReport) -> Vec<crate::report::EventReport> {
    let uid = report.uid.clone().unwrap_or_default();
    let found = events::for_pod(
        cluster.client.clone(),
        &cluster.warrant,
        &report.namespace,
        &report.pod,
        &uid,
    )
    .await;
    found.unwrap_or_else(|e| {
        tracing::warn!("cannot read the pod's events: {e}");
        Vec::new()
    })
}

/// The `::kpo-output` lines the main container printed, into the report; those beyond kpo's
/// bounds counted and told.
fn take_outputs(tail: &tail::Tail, report: &mut RunReport) {
    let outputs = tail.outputs();
    if outputs.ignored > 0 {
        tail.notice(&format!(
            "{} ::kpo-output line(s) ignored: kpo keeps {} names and values of at most {} bytes",
            outputs.ignored,
            crate::result::MAX_OUTPUTS,
            crate::result::MAX_OUTPUT_VALUE
        ));
    }
    report.outputs = outputs.values;
    report.outputs_ignored = outputs.ignored;
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

/// The report's last words: the exit code, the finishing time.
fn finish(mut report: RunReport) -> RunReport {
    report.decide_exit_code();
    report.finished_at = Timestamp::now();
    report
}

fn human(d: Duration) -> String {
    crate::vocabulary::duration_words(d)
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
            ContainerRole::NativeSidecar
        } else {
            ContainerRole::Init
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
            ContainerRole::Main
        } else {
            ContainerRole::Sidecar
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
