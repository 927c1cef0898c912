//! The end of a pod: deleted, kept, left stopping or waited for until it is gone — as the
//! run's policy, the way it ended and the claim allow.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::retry::{self, ActError};
use super::{CLEANUP_LIMIT, Cluster, Interrupt, Observer, human};
use super::{logs, shared_watch};
use crate::claim::Lost;
use crate::report::{Cleanup, RunReport};
use crate::status;
use crate::task::{Fate, OnFinish, RunPolicy};
use crate::vocabulary::{MAIN_CONTAINER, Outcome};

/// How long past its grace period kpo waits for a deleted pod to be gone. A v1.20 kubelet took
/// ~30 s to remove a pod whose container never started (a missing Secret) even with a 1 s grace
/// period, and over a minute on a loaded node (seen in CI).
const GONE_LIMIT: Duration = Duration::from_secs(180);
/// The grace period of a pod in which no container runs: nothing to stop but its sandbox.
const NOTHING_RUNS_GRACE: Duration = Duration::from_secs(1);
/// How long past a deleted pod's grace period its kubelet may take to have killed what still ran.
const KILL_MARGIN: Duration = Duration::from_secs(2);

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
pub(super) async fn clean_up(
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
    let started = status::ever_ran(&pod, MAIN_CONTAINER);
    let on_finish = policy.on_finish.name();
    match policy
        .on_finish
        .fate(report.outcome == Outcome::Succeeded, started)
    {
        Fate::Keep => {
            observer.notice(&format!(
                "keeping pod {namespace}/{name} (on_finish = {on_finish})"
            ));
            return Ok(Cleanup::Kept);
        }
        Fate::Fence => {
            if let Some(fenced) = fence(cluster, api, &pod, observer).await? {
                return Ok(fenced);
            }
        }
        Fate::Delete => {}
    }
    let unstarted = !started && policy.on_finish != OnFinish::Delete;
    if unstarted {
        observer.notice(&format!(
            "pod {namespace}/{name} never started {MAIN_CONTAINER}: deleting it despite on_finish = {on_finish}, as it could start later with no one supervising it (its events are in the report)"
        ));
    }
    let deleted = if unstarted {
        Cleanup::DeletedUnstarted
    } else {
        Cleanup::Deleted
    };
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
            Ok(deleted)
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
            Ok(deleted)
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

/// Keeps a pod whose main container never started unable to start it later: one on a node gets
/// `activeDeadlineSeconds: 1` — the kubelet counts it from when it took the pod, so it has
/// passed: the kubelet fails the pod (`DeadlineExceeded`) and starts nothing more, and the pod
/// stays to be inspected. One that no node took as last seen gets `None`, to be deleted: the
/// kubelet would start it first and count afterwards. (A pod bound since is deleted all the
/// same, its containers stopped by the deletion.)
async fn fence(
    cluster: &Cluster,
    api: &Api<Pod>,
    pod: &Pod,
    observer: &dyn Observer,
) -> Result<Option<Cleanup>, Lost> {
    if pod.spec.as_ref().is_none_or(|s| s.node_name.is_none()) {
        return Ok(None);
    }
    let name = pod.name_any();
    let patch = Patch::Merge(serde_json::json!({
        "metadata": {"uid": pod.uid()},
        "spec": {"activeDeadlineSeconds": 1},
    }));
    let params = PatchParams::default();
    let fenced = || api.patch(&name, &params, &patch);
    match retry::acting("fencing the pod", CLEANUP_LIMIT, &cluster.warrant, fenced).await {
        Ok(_) => {
            observer.notice(&format!(
                "keeping pod {}/{name} (on_finish = keep); {MAIN_CONTAINER} never started, so its activeDeadlineSeconds is now 1: its kubelet stops it and it cannot start later unsupervised",
                pod.namespace().unwrap_or_default()
            ));
            Ok(Some(Cleanup::Fenced))
        }
        Err(ActError::Lost(lost)) => Err(lost),
        // Gone, or another pod of that name (the UID precondition failed).
        Err(ActError::Api(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => Ok(Some(Cleanup::None)),
        Err(ActError::Api(e)) => {
            observer.notice(&format!("could not fence pod {name}: {e}; deleting it instead"));
            Ok(None)
        }
    }
}

/// The pod's termination grace period (30 s unless it says otherwise).
pub(super) fn last_grace(pod: Option<&Pod>) -> Duration {
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
pub(super) async fn until(
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
