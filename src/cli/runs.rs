//! Commands for runs a person lost track of: `list`, `logs`, `delete`, `attach` and `gc`. They
//! work from the run journal (see `kpo::journal`) and always match pods by UID.

use super::stdout::outln;
use std::path::PathBuf;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};

use super::error::CliError;
use crate::exit;
use crate::journal::Journal;
use crate::pod::{ANNOTATION_ON_FINISH, LABEL_BATCH, LABEL_MANAGED_BY, LABEL_RUN_ID};
use crate::reattach::{self, find_pod};
use crate::task::OnFinish;
use crate::vocabulary::MAIN_CONTAINER;

/// Prints the runs this machine's journal knows, newest last.
pub fn list() -> Result<i32, CliError> {
    let journals = super::machine::this()
        .journals()
        .list()
        .map_err(|source| CliError::State {
            doing: "cannot read the run journals".into(),
            source,
        })?;
    outln!(
        "{:<28} {:<14} {:<24} {:<40} STATUS",
        "RUN",
        "BATCH",
        "TASK",
        "POD"
    );
    for j in journals {
        let status = match j.exit_code {
            Some(code) => format!("finished, exit code {code}"),
            None if j.uid.is_some() => "unfinished (kpo attach reattaches)".to_owned(),
            None => "not started".to_owned(),
        };
        let pod = j.pod.map(|p| format!("{}/{p}", j.namespace)).unwrap_or_default();
        let batch = j.batch.as_deref().unwrap_or("-");
        outln!("{:<28} {batch:<14} {:<24} {pod:<40} {status}", j.run_id, j.task);
    }
    Ok(exit::SUCCESS)
}

/// This machine's journal of `run_id`, or why not (none, or one in each of several namespaces
/// or clusters: then which to pick is the user's to say).
pub fn journal(run_id: &str) -> Result<Journal, CliError> {
    let mut found = find(run_id)?;
    match found.len() {
        0 => Err(CliError::Usage(format!(
            "this machine has no journal of run {run_id} (see `kpo list`); from any machine, `kpo run --run-id {run_id} TASK.toml` reattaches to it"
        ))),
        1 => Ok(found.remove(0)),
        _ => {
            let places: Vec<String> = found
                .iter()
                .map(|j| {
                    format!(
                        "namespace {} of {}",
                        j.namespace,
                        j.cluster.as_deref().unwrap_or("an unrecorded cluster")
                    )
                })
                .collect();
            Err(CliError::Usage(format!(
                "run id {run_id} names runs in {}: say which with `kpo run --run-id {run_id} --namespace NS [--context CTX] TASK.toml`",
                places.join(", ")
            )))
        }
    }
}

/// This machine's journals of run id `run_id`, in any namespace or cluster, oldest first.
fn find(run_id: &str) -> Result<Vec<Journal>, CliError> {
    super::machine::this()
        .journals()
        .find(run_id)
        .map_err(|source| CliError::State {
            doing: format!("cannot read the journal of run {run_id}"),
            source,
        })
}

/// The run `run_id` wherever it can be found: its newest pod in the cluster (the cluster wins),
/// else this machine's journal of it on that cluster (`server`) — in `namespace` if there is one
/// there, else the newest. `namespace` is where to look when this machine has no journal.
pub async fn locate(
    client: &kube::Client,
    server: &str,
    namespace: &str,
    run_id: &str,
) -> Result<Journal, CliError> {
    let mut here: Vec<Journal> = find(run_id)?
        .into_iter()
        .filter(|j| j.cluster.as_deref().is_none_or(|c| c == server))
        .collect();
    let local = match here.iter().position(|j| j.namespace == namespace) {
        Some(at) => Some(here.remove(at)),
        None => here.pop(),
    };
    let ns = local
        .as_ref()
        .map_or(namespace, |j| j.namespace.as_str())
        .to_owned();
    let known = local.as_ref().and_then(|j| j.uid.as_deref());
    let pods = reattach::run_pods(client, &ns, run_id, known).await?;
    for notice in pods.notices() {
        eprintln!("kpo: {notice}");
    }
    match (local, pods.newest()) {
        (Some(j), Some(pod)) if j.uid.is_some() && j.uid == pod.uid() => Ok(j),
        (local, Some(pod)) => Ok(reattach::from_cluster(pod, local.and_then(|j| j.task_file))),
        (Some(j), None) => Ok(j),
        (None, None) => match pods.unrecorded.first() {
            Some(pod) => Err(CliError::NotReattached(reattach::NotReattached(
                reattach::LostPod::Unrecorded {
                    run_id: run_id.to_owned(),
                    namespace: ns,
                    pod: pod.name_any(),
                },
            ))),
            None => Err(CliError::Usage(format!(
                "no run {run_id}: this machine has no journal of it and namespace {ns} no pod of it"
            ))),
        },
    }
}

/// The runs of batch `batch_id`, wherever they can be found: the pods of the batch in
/// `namespace` (the cluster wins), and this machine's journals of it. Empty when `batch_id` names
/// no batch.
pub async fn batch(
    client: &kube::Client,
    server: &str,
    namespace: &str,
    batch_id: &str,
) -> Result<Vec<Journal>, CliError> {
    let mut runs: std::collections::BTreeMap<String, Journal> = super::machine::this()
        .journals()
        .list()
        .map_err(|source| CliError::State {
            doing: "cannot read the run journals".into(),
            source,
        })?
        .into_iter()
        .filter(|j| j.batch.as_deref() == Some(batch_id))
        .filter(|j| j.cluster.as_deref().is_none_or(|c| c == server))
        .map(|j| (j.run_id.clone(), j))
        .collect();
    let pods = reattach::labelled(client, namespace, LABEL_BATCH, batch_id).await?;
    let known: Vec<&str> = runs.values().filter_map(|j| j.uid.as_deref()).collect();
    let pods = reattach::recognise(client, pods, known).await?;
    for notice in pods.notices() {
        eprintln!("kpo: {notice}");
    }
    for pod in pods.own {
        let found = reattach::from_cluster(&pod, None);
        let known = runs.get(&found.run_id);
        if known.is_none_or(|j| j.uid != found.uid) {
            let task_file = known.and_then(|j| j.task_file.clone());
            runs.insert(
                found.run_id.clone(),
                Journal {
                    batch: Some(batch_id.to_owned()),
                    ..reattach::from_cluster(&pod, task_file)
                },
            );
        }
    }
    Ok(runs.into_values().collect())
}

/// The task file of a run, for `kpo attach`.
pub fn task_file(journal: &Journal) -> Result<PathBuf, CliError> {
    journal.task_file.clone().ok_or_else(|| {
        CliError::Usage(format!(
            "the journal of run {} does not name its task file",
            journal.run_id
        ))
    })
}

/// Prints the main container's log of a run (following it with `follow`).
pub async fn logs(client: &kube::Client, journal: &Journal, follow: bool) -> Result<i32, CliError> {
    let name = find_pod(client, journal).await?.name_any();
    pod_log(client, &journal.namespace, &name, follow).await
}

/// Prints the main container's log of pod `namespace/name`.
pub async fn pod_log(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    follow: bool,
) -> Result<i32, CliError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(MAIN_CONTAINER.into()),
        follow,
        ..Default::default()
    };
    let stream = api
        .log_stream(name, &params)
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot read the log of {name}"),
            source,
        })?;
    // The container's bytes as they are, as `kubectl logs` prints them.
    let mut stdout = futures::io::AllowStdIo::new(std::io::stdout());
    match futures::io::copy(stream, &mut stdout).await {
        // A closed pipe (`kpo logs ... | head`) is not worth a word.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Cluster {
            doing: format!("the log of {name} was cut"),
            source: kube::Error::ReadEvents(e),
        }),
        _ => Ok(exit::SUCCESS),
    }
}

/// Deletes a run's pod — only if it is still the run's own (a UID precondition).
pub async fn delete(client: &kube::Client, journal: &Journal) -> Result<i32, CliError> {
    let name = find_pod(client, journal).await?.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &journal.namespace);
    let uid = journal.uid.clone().unwrap_or_default();
    crate::stop::stop(&api, &name, &uid, "kpo delete", None)
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot delete pod {name}"),
            source,
        })?;
    eprintln!(
        "kpo: deleted pod {}/{name} of run {}",
        journal.namespace, journal.run_id
    );
    Ok(exit::SUCCESS)
}

/// Does what the kpo of a dead run would have done, in `namespace`: deletes the finished pods
/// their `on_finish` policy does not keep, and the pods whose active deadline has passed (their
/// kpo is gone and the kubelet has not stopped them yet). A pod whose run (or batch) is claimed
/// is its supervisor's: a finished pod may still be having its log or result read.
pub async fn gc(client: &kube::Client, namespace: &str, dry_run: bool) -> Result<i32, CliError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let mut claims: std::collections::BTreeMap<String, Option<Lease>> = Default::default();
    let pods = api
        .list(&ListParams::default().labels(&format!("{LABEL_MANAGED_BY}=kpo")))
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot list pods in {namespace}"),
            source,
        })?
        .items;
    let now = jiff::Timestamp::now();
    let candidates = pods.into_iter().filter(|p| garbage(p, now).is_some()).collect();
    // Only pods their runs record are kpo's to delete: anyone can label a pod as a run's.
    let candidates = reattach::recognise(client, candidates, Vec::new()).await?;
    for pod in &candidates.unrecorded {
        outln!("left {}", unrecorded_reason(pod));
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
                let lease = leases.get_opt(&claim).await.map_err(|source| CliError::Cluster {
                    doing: format!("cannot read the claim {namespace}/{claim}"),
                    source,
                })?;
                claims.entry(claim).or_insert(lease).as_ref()
            }
            Some(claim) => claims[&claim].as_ref(),
            None => None,
        };
        if let Some(holder) = claim.and_then(|l| crate::claim::supervisor(l, now)) {
            outln!(
                "left {namespace}/{name} ({}, but its run is supervised by {})",
                why.reason(),
                crate::said::said(holder)
            );
            continue;
        }
        if dry_run {
            outln!("would delete {namespace}/{name} ({})", why.reason());
            continue;
        }
        // Nothing runs in a finished pod: it goes at once, as the pod garbage collector deletes
        // terminated pods.
        let grace = (!matches!(why, Garbage::Overdue)).then_some(0);
        match crate::stop::stop(&api, &name, &pod.uid().unwrap_or_default(), "kpo gc", grace).await {
            Ok(()) => {
                outln!("deleted {namespace}/{name} ({})", why.reason());
                deleted += 1;
            }
            Err(e) => eprintln!(
                "kpo: warning: cannot delete {namespace}/{name}: {}",
                crate::said::shown(&e.to_string())
            ),
        }
    }
    let records = forgotten_records(&leases, dry_run, now).await?;
    eprintln!("kpo: gc: {deleted} pod(s) deleted in {namespace}; {records} record(s) of runs removed");
    Ok(exit::SUCCESS)
}

/// Why `kpo gc` leaves a pod that looks like garbage but is no run's own.
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
) -> Result<usize, CliError> {
    let namespace = leases.namespace().unwrap_or_default().to_owned();
    let listed = leases
        .list(&ListParams::default().labels(LABEL_RUN_ID))
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot list the Leases in {namespace}"),
            source,
        })?;
    let mut removed = 0;
    for lease in listed.items {
        if crate::claim::supervisor(&lease, now).is_some() {
            continue;
        }
        let record = crate::claim::record::Record::of(&lease);
        let mut left = false;
        for entry in record.entries() {
            let pods: Api<Pod> = Api::namespaced(leases.clone().into_client(), &entry.namespace);
            let found = pods
                .get_opt(&entry.name)
                .await
                .map_err(|source| CliError::Cluster {
                    doing: format!("cannot read pod {}/{}", entry.namespace, entry.name),
                    source,
                })?;
            left |= found.is_some_and(|p| entry.uid.is_none() || p.uid() == entry.uid);
        }
        if left {
            continue;
        }
        let name = lease.name_any();
        if dry_run {
            outln!("would remove {namespace}/{name} (the record of a run whose pods are gone)");
            continue;
        }
        match leases.delete(&name, &crate::claim::if_unchanged(&lease)).await {
            Ok(_) => {
                outln!("removed {namespace}/{name} (the record of a run whose pods are gone)");
                removed += 1;
            }
            Err(e) => eprintln!(
                "kpo: warning: cannot remove {namespace}/{name}: {}",
                crate::said::shown(&e.to_string())
            ),
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
        return (!policy.keeps(phase == Some("Succeeded"))).then_some(Garbage::Finished);
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
        let finished = |phase: &str, on_finish: &str| {
            pod(serde_json::json!({
                "metadata": {"annotations": {"kpo.dev/on-finish": on_finish}},
                "status": {"phase": phase}
            }))
        };
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
