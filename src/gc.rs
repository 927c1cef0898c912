//! Cleaning up after runs whose kpo died (`kpo gc`): their finished pods that their task's
//! `on_finish` would have deleted, pods past their active deadline, finished pods stuck in
//! Terminating, and the records of runs nobody supervises whose pods are all gone. Only pods a
//! run records as its own are touched, and none of a run another kpo supervises.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::pod::{ANNOTATION_ON_FINISH, LABEL_BATCH, LABEL_MANAGED_BY, LABEL_RUN_ID};
use crate::reattach::{self, LostPod};
use crate::task::{Fate, OnFinish};

/// Why a collection could not go on.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{doing}")]
    Cluster {
        doing: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Lost(#[from] LostPod),
}

impl GcError {
    pub fn exit_code(&self) -> i32 {
        match self {
            GcError::Cluster { .. } => crate::exit::CLUSTER_UNAVAILABLE,
            GcError::Lost(e) => e.exit_code(),
        }
    }
}

/// One thing a collection did, or would do, or could not do — each said as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A pod left alone, and why (`ns/name (why)`).
    Left(String),
    /// With `dry_run`: what would go (`ns/name (why)`).
    WouldDelete(String),
    Deleted(String),
    WouldRemove(String),
    Removed(String),
    /// What could not be done (`delete`, `remove`) to what, and the cluster's answer.
    Failed {
        doing: &'static str,
        what: String,
        error: String,
    },
}

/// How many pods and records a collection deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub pods: usize,
    pub records: usize,
}

fn cluster(doing: String) -> impl FnOnce(kube::Error) -> GcError {
    move |source| GcError::Cluster { doing, source }
}

/// Does what the kpo of a dead run would have done, in `namespace`: deletes the finished pods
/// their `on_finish` policy does not keep, and the pods whose active deadline has passed (their
/// kpo is gone and the kubelet has not stopped them yet). A pod whose run (or batch) is claimed
/// is its supervisor's: a finished pod may still be having its log or result read. With
/// `dry_run` nothing is deleted; `said` hears each step.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn collect(
    client: &kube::Client,
    namespace: &str,
    dry_run: bool,
    said: &mut (dyn FnMut(Step) + Send),
) -> Result<Collected, GcError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let mut claims: std::collections::BTreeMap<String, Option<Lease>> = Default::default();
    let pods = api
        .list(&ListParams::default().labels(&format!("{LABEL_MANAGED_BY}=kpo")))
        .await
        .map_err(cluster(format!("cannot list pods in {namespace}")))?
        .items;
    let now = jiff::Timestamp::now();
    let candidates = pods.into_iter().filter(|p| garbage(p, now).is_some()).collect();
    // Only pods their runs record are kpo's to delete: anyone can label a pod as a run's.
    let candidates = reattach::recognise(client, candidates, Vec::new()).await?;
    for pod in &candidates.unrecorded {
        said(Step::Left(unrecorded_reason(pod)));
    }
    let mut deleted = 0;
    for pod in &candidates.own {
        let Some(why) = garbage(pod, now) else {
            continue;
        };
        let name = pod.name_any();
        let labels = pod.labels();
        let run = labels.get(LABEL_BATCH).or_else(|| labels.get(LABEL_RUN_ID));
        let claim = match run.map(|r| crate::claim::lease_name(r)) {
            Some(claim) if !claims.contains_key(&claim) => {
                let lease = leases
                    .get_opt(&claim)
                    .await
                    .map_err(cluster(format!("cannot read the claim {namespace}/{claim}")))?;
                claims.entry(claim).or_insert(lease).as_ref()
            }
            Some(claim) => claims[&claim].as_ref(),
            None => None,
        };
        if let Some(holder) = claim.and_then(|l| crate::claim::supervisor(l, now)) {
            said(Step::Left(format!(
                "{namespace}/{name} ({}, but its run is supervised by {})",
                why.reason(),
                crate::said::said(holder)
            )));
            continue;
        }
        let what = format!("{namespace}/{name} ({})", why.reason());
        if dry_run {
            said(Step::WouldDelete(what));
            continue;
        }
        // Nothing runs in a finished pod: it goes at once, as the pod garbage collector deletes
        // terminated pods.
        let grace = (!matches!(why, Garbage::Overdue)).then_some(0);
        match crate::stop::stop(&api, &name, &pod.uid().unwrap_or_default(), "kpo gc", grace).await {
            Ok(()) => {
                said(Step::Deleted(what));
                deleted += 1;
            }
            Err(e) => said(Step::Failed {
                doing: "delete",
                what: format!("{namespace}/{name}"),
                error: e.to_string(),
            }),
        }
    }
    let records = forgotten_records(&leases, dry_run, now, said).await?;
    Ok(Collected {
        pods: deleted,
        records,
    })
}

/// Why a pod that looks like garbage but is no run's own is left.
fn unrecorded_reason(pod: &Pod) -> String {
    format!(
        "{}/{} (its labels name run {}, which does not record it: not kpo's)",
        pod.namespace().unwrap_or_default(),
        pod.name_any(),
        crate::said::said(pod.labels().get(LABEL_RUN_ID).cloned().unwrap_or_default())
    )
}

/// Removes the Leases in `leases`' namespace that record runs nobody supervises and none of
/// whose recorded pods exist any more (the garbage collector removes most itself: those of a
/// batch's members in other namespaces, or of a kpo that died, it cannot); how many.
async fn forgotten_records(
    leases: &Api<Lease>,
    dry_run: bool,
    now: jiff::Timestamp,
    said: &mut (dyn FnMut(Step) + Send),
) -> Result<usize, GcError> {
    let namespace = leases.namespace().unwrap_or_default().to_owned();
    let listed = leases
        .list(&ListParams::default().labels(LABEL_RUN_ID))
        .await
        .map_err(cluster(format!("cannot list the Leases in {namespace}")))?;
    let mut removed = 0;
    for lease in listed.items {
        if crate::claim::supervisor(&lease, now).is_some() {
            continue;
        }
        let record = crate::claim::record::Record::of(&lease);
        let mut left = false;
        for entry in record.entries() {
            let pods: Api<Pod> = Api::namespaced(leases.clone().into_client(), &entry.namespace);
            let found = pods.get_opt(&entry.name).await.map_err(cluster(format!(
                "cannot read pod {}/{}",
                entry.namespace, entry.name
            )))?;
            left |= found.is_some_and(|p| entry.uid.is_none() || p.uid() == entry.uid);
        }
        if left {
            continue;
        }
        let name = lease.name_any();
        let what = format!("{namespace}/{name} (the record of a run whose pods are gone)");
        if dry_run {
            said(Step::WouldRemove(what));
            continue;
        }
        match leases.delete(&name, &crate::claim::if_unchanged(&lease)).await {
            Ok(_) => {
                said(Step::Removed(what));
                removed += 1;
            }
            Err(e) => said(Step::Failed {
                doing: "remove",
                what: format!("{namespace}/{name}"),
                error: e.to_string(),
            }),
        }
    }
    Ok(removed)
}

/// Why `kpo gc` deletes a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Garbage {
    /// Finished, and its run's `on_finish` would have deleted it.
    Finished,
    /// Still running past its `activeDeadlineSeconds`.
    Overdue,
    /// Finished and being deleted, but still there a minute after its grace period: a v1.20
    /// kubelet never removes a pod that failed its deadline during a graceful deletion.
    StuckTerminating,
}

impl Garbage {
    fn reason(self) -> &'static str {
        match self {
            Garbage::Finished => "finished",
            Garbage::Overdue => "past its deadline",
            Garbage::StuckTerminating => "stuck terminating",
        }
    }
}

/// Whether kpo's pod `pod` is garbage at `now`, and why.
fn garbage(pod: &Pod, now: jiff::Timestamp) -> Option<Garbage> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    let finished = crate::status::finished(pod);
    if let Some(since) = &pod.metadata.deletion_timestamp {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0);
        let stuck = since.0 + jiff::SignedDuration::from_secs(grace + 60) < now;
        return (finished && stuck).then_some(Garbage::StuckTerminating);
    }
    if finished {
        let policy = pod
            .annotations()
            .get(ANNOTATION_ON_FINISH)
            .and_then(|name| OnFinish::from_name(name))
            .unwrap_or(OnFinish::Delete);
        // Finished, it can start nothing more: a fenced pod is a kept one.
        let started = crate::status::ever_ran(pod, crate::vocabulary::MAIN_CONTAINER);
        let fate = policy.fate(phase == Some("Succeeded"), started);
        return (fate == Fate::Delete).then_some(Garbage::Finished);
    }
    let deadline = pod
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .zip(status.and_then(|s| s.start_time.as_ref()));
    let overdue = deadline.is_some_and(|(secs, start)| start.0 + jiff::SignedDuration::from_secs(secs) < now);
    overdue.then_some(Garbage::Overdue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn garbage_follows_the_policy_the_deadline_and_stuck_deletions() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let finished_as = |phase: &str, on_finish: &str, main: serde_json::Value| {
            pod(serde_json::json!({
                "metadata": {"annotations": {"kpo.dev/on-finish": on_finish}},
                "status": {"phase": phase, "containerStatuses": [
                    {"name": "base", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": main}
                ]}
            }))
        };
        let exited = serde_json::json!({"terminated": {"exitCode": 1}});
        let finished = |phase: &str, on_finish: &str| finished_as(phase, on_finish, exited.clone());
        // A failed pod whose main container never started is deleted under delete_succeeded,
        // kept (it can start nothing more) under keep.
        let never = serde_json::json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(
            garbage(&finished_as("Failed", "delete_succeeded", never.clone()), now),
            Some(Garbage::Finished)
        );
        assert_eq!(garbage(&finished_as("Failed", "keep", never), now), None);
        assert_eq!(
            garbage(&finished("Succeeded", "delete"), now),
            Some(Garbage::Finished)
        );
        assert_eq!(garbage(&finished("Succeeded", "keep"), now), None);
        assert_eq!(garbage(&finished("Failed", "delete_succeeded"), now), None);
        assert_eq!(
            garbage(&finished("Succeeded", "delete_succeeded"), now),
            Some(Garbage::Finished)
        );
        let running = |started: &str| {
            pod(serde_json::json!({
                "spec": {"containers": [], "activeDeadlineSeconds": 60},
                "status": {"phase": "Running", "startTime": started}
            }))
        };
        assert_eq!(
            garbage(&running("2026-01-01T11:58:00Z"), now),
            Some(Garbage::Overdue)
        );
        assert_eq!(garbage(&running("2026-01-01T11:59:30Z"), now), None);
        let deleting = |phase: &str, since: &str| {
            pod(serde_json::json!({
                "metadata": {"deletionTimestamp": since, "deletionGracePeriodSeconds": 30},
                "status": {"phase": phase}
            }))
        };
        assert_eq!(
            garbage(&deleting("Failed", "2026-01-01T11:58:00Z"), now),
            Some(Garbage::StuckTerminating)
        );
        assert_eq!(garbage(&deleting("Failed", "2026-01-01T11:59:00Z"), now), None);
        assert_eq!(garbage(&deleting("Running", "2026-01-01T11:00:00Z"), now), None);
    }
}
