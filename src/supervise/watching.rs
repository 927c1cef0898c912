//! The watch of one pod deciding how its run ends: the state machine's verdicts, the startup
//! and overall deadlines (held while the claim is paused), an interrupt, a lost claim, the
//! pod's deletion — and why an image will never be pulled.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::state::{self, Reading, Tracker, pull_error_is_permanent};
use super::{Interrupt, Observer, PodEvents, events, human, record};
use crate::claim::Warrant;
use crate::report::RunReport;
use crate::task::RunPolicy;
use crate::vocabulary::{MAIN_CONTAINER, Outcome, StartFailure};

/// What a supervisor that lost its claim did.
pub(super) const LEFT_TO_THE_HOLDER: &str =
    "this kpo stopped supervising the run and left its pod to whoever holds the run now";

/// How often a deadline that passed during a pause looks again.
const PAUSED_RECHECK: Duration = Duration::from_secs(1);

/// What the watch decided.
pub(super) struct Decided {
    pub(super) outcome: Outcome,
    pub(super) message: String,
    /// The interrupt asked to leave the pod running.
    pub(super) detach: bool,
    /// The run's claim was lost (why): nothing more may be done to the pod.
    pub(super) lost: Option<String>,
    /// The pod as last seen.
    pub(super) last: Pod,
}

/// What the watch of one pod needs.
pub(super) struct Watching<'a> {
    pub(super) client: &'a Client,
    pub(super) warrant: &'a Warrant,
    pub(super) policy: &'a RunPolicy,
    pub(super) observer: &'a dyn Observer,
    /// Every snapshot, for the log followers (`None` once the pod is gone).
    pub(super) pods: &'a watch::Sender<Option<Pod>>,
}

impl Watching<'_> {
    /// Watches the pod (one watch, resumed after errors) until the state machine, a deadline,
    /// an interrupt or the pod's deletion decides the outcome.
    pub(super) async fn decide(
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
        let never = Duration::MAX / 4;
        let schedule_deadline = tokio::time::sleep(policy.schedule_timeout.unwrap_or(never));
        // With a schedule timeout, the startup timeout counts from the pod's scheduling.
        let mut startup_armed = policy.schedule_timeout.is_none();
        let startup_deadline = tokio::time::sleep(match startup_armed {
            true => policy.startup_timeout,
            false => never,
        });
        let overall_deadline = tokio::time::sleep(policy.timeout.unwrap_or(never));
        tokio::pin!(schedule_deadline, startup_deadline, overall_deadline);
        let mut start_failure = StartFailure::Unstartable;
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
                () = &mut schedule_deadline, if !tracker.scheduled => {
                    if self.warrant.paused() {
                        schedule_deadline.as_mut().reset(tokio::time::Instant::now() + PAUSED_RECHECK);
                        continue;
                    }
                    start_failure = StartFailure::ScheduleTimeout;
                    let waited = human(policy.schedule_timeout.unwrap_or_default());
                    break (Outcome::NeverStarted, format!("the pod was not scheduled within {waited}{}", last_seen(&last)));
                }
                () = &mut startup_deadline, if !tracker.main_started => {
                    if self.warrant.paused() {
                        startup_deadline.as_mut().reset(tokio::time::Instant::now() + PAUSED_RECHECK);
                        continue;
                    }
                    start_failure = StartFailure::StartupTimeout;
                    let since = if policy.schedule_timeout.is_some() { " of being scheduled" } else { "" };
                    break (Outcome::NeverStarted, format!("{MAIN_CONTAINER} did not start within {}{since}{}", human(policy.startup_timeout), last_seen(&last)));
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
            if tracker.scheduled && !startup_armed {
                startup_armed = true;
                startup_deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + policy.startup_timeout);
            }
            if let Some(s) = change {
                record(report, self.observer, s.phase, s.detail);
            }
            match verdict {
                Reading::Continue => {}
                Reading::Done { outcome, message } => break (outcome, message),
                Reading::PullFailing { container, message } => {
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
        if outcome == Outcome::NeverStarted {
            report.start_failure = Some(start_failure);
        }
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

/// What the pod was last seen waiting for, as the end of a sentence.
fn last_seen(pod: &Pod) -> String {
    state::status_of(pod)
        .detail
        .map(|d| format!(" (last seen: {d})"))
        .unwrap_or_default()
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

fn image_of(pod: &Pod, container: &str) -> String {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}
