//! Picking a run up again from what is known of it — this machine's journal and, above all, the
//! cluster, where the run's pods carry its id and its Lease records which of them are its own:
//! report a finished run, follow an unfinished one's pod again (matched by UID, never by name
//! alone), or start it afresh. One decision, used by
//! `run --run-id`, `attach`, `logs` and `delete` alike, on any machine.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::claim::record::Record;
use crate::exit;
use crate::journal::Journal;
use crate::pod::{LABEL_BATCH, LABEL_RUN_ID, LABEL_TASK, attempt_of};

/// When a run id that is known already starts the task again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rerun {
    /// Never: a finished run is reported, an unfinished one followed.
    #[default]
    No,
    /// Always (`--rerun`), even while the run's pod still runs.
    Always,
    /// Once the run has finished (`--rerun-finished`): what a scheduler's next try wants — the
    /// pod of a supervisor that died is followed again, a run that ended (or whose pod is gone)
    /// is not reported a second time but run anew.
    Finished,
}

/// What to do with a run id, given what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to pick up (no journal, no pod, or a [`Rerun`]): start a new run.
    Start,
    /// The run finished and this machine has its report: report it, do not run it again.
    Report(Journal),
    /// The run has a pod: follow it to its end (a finished one is reported from its status and
    /// log), from where the journal says its logs were delivered, else from their start.
    Reattach(Journal),
}

/// Decides what `kpo run --run-id` does with an earlier run of that id: `earlier` is this
/// machine's journal, `found` the run's newest pod in the cluster. When the two disagree, the
/// cluster wins; the second value says so, to be told to the user.
pub fn plan(earlier: Option<Journal>, found: Option<&Pod>, rerun: Rerun) -> (Plan, Option<String>) {
    match rerun {
        Rerun::Always => return (Plan::Start, None),
        Rerun::Finished if !found.is_some_and(still_runs) => return (Plan::Start, None),
        _ => {}
    }
    match (earlier, found) {
        (Some(j), Some(pod)) if j.uid.is_some() && j.uid == pod.uid() => match j.exit_code {
            Some(_) => (Plan::Report(j), None),
            None => (Plan::Reattach(j), None),
        },
        // kpo never gives two pods one name (each attempt has a fresh suffix): a pod under the
        // journal's pod name with another UID is not the run's, whatever its labels say.
        // A journal written before its pod's UID was known (a kpo killed in between): the pod
        // under its name is the run's own once its record says so — which is how it was found.
        (Some(j), Some(pod)) if j.pod.as_deref() == Some(&pod.name_any()) => {
            let uid = j.uid.clone().or_else(|| pod.uid());
            (Plan::Reattach(Journal { uid, ..j }), None)
        }
        (Some(j), Some(pod)) => {
            let note = format!(
                "this machine's journal of run {} names {}, but the cluster has its pod {} (attempt {}): following that one",
                j.run_id,
                j.pod.as_deref().unwrap_or("no pod"),
                pod.name_any(),
                attempt_of(pod)
            );
            (Plan::Reattach(from_cluster(pod, j.task_file)), Some(note))
        }
        (Some(j), None) if j.exit_code.is_some() => (Plan::Report(j), None),
        (Some(j), None) if j.uid.is_some() => (Plan::Reattach(j), None),
        (None, Some(pod)) => (Plan::Reattach(from_cluster(pod, None)), None),
        (_, None) => (Plan::Start, None),
    }
}

/// Whether a run's pod is still at its work: its main container has not ended, the pod has not
/// finished and nobody is deleting it (a pod being deleted is work thrown away).
fn still_runs(pod: &Pod) -> bool {
    !crate::status::finished(pod)
        && !crate::status::terminated(pod, crate::vocabulary::MAIN_CONTAINER)
        && pod.metadata.deletion_timestamp.is_none()
}

/// The pods that carry a run's (or a batch's) labels, sorted by whether they are its own.
#[derive(Debug, Default)]
pub struct Labelled {
    /// Recorded in the Lease of their run (their batch's, for a member), or named by UID in
    /// this machine's journal.
    pub own: Vec<Pod>,
    /// The rest: whoever made them, it was not the run's supervisor. Left alone.
    pub unrecorded: Vec<Pod>,
}

impl Labelled {
    /// The run's newest pod (the highest attempt).
    pub fn newest(&self) -> Option<&Pod> {
        self.own.iter().max_by_key(|p| attempt_of(p))
    }

    /// What to tell the user of each pod that claims the run without being its own.
    pub fn notices(&self) -> Vec<String> {
        self.unrecorded.iter().map(unrecorded_notice).collect()
    }
}

/// Why `pod` is left alone.
fn unrecorded_notice(pod: &Pod) -> String {
    format!(
        "pod {}/{} carries the labels of run {}, but the run does not record it as its own: left alone",
        pod.namespace().unwrap_or_default(),
        pod.name_any(),
        crate::said::said(pod.labels().get(LABEL_RUN_ID).cloned().unwrap_or_default())
    )
}

/// The pods of run `run_id` in `namespace`, found by its run-id label and sorted by its record
/// (see [`crate::claim::record`]); `known` are UIDs this machine's journal names.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn run_pods(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
    known: Option<&str>,
) -> Result<Labelled, LostPod> {
    let pods = labelled(client, namespace, LABEL_RUN_ID, run_id).await?;
    recognise(client, pods, known.into_iter().collect()).await
}

/// Sorts `pods` into their runs' own and the rest, reading the record of each run (of each
/// batch, for members) once.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn recognise(client: &kube::Client, pods: Vec<Pod>, known: Vec<&str>) -> Result<Labelled, LostPod> {
    let mut records: std::collections::HashMap<(String, String), Record> = Default::default();
    let mut sorted = Labelled::default();
    for pod in pods {
        if pod.uid().is_some_and(|uid| known.contains(&uid.as_str())) {
            sorted.own.push(pod);
            continue;
        }
        let Some((namespace, claim)) = claimed_in(&pod) else {
            sorted.unrecorded.push(pod);
            continue;
        };
        let key = (namespace, claim);
        if !records.contains_key(&key) {
            let record = record_of(client, &key.0, &key.1).await?;
            records.insert(key.clone(), record);
        }
        if records[&key].holds(&pod) {
            sorted.own.push(pod);
        } else {
            sorted.unrecorded.push(pod);
        }
    }
    Ok(sorted)
}

/// Where the record of `pod` is kept, if its labels name a run: the namespace and id of its
/// claim — its batch's for a member.
fn claimed_in(pod: &Pod) -> Option<(String, String)> {
    let labels = pod.labels();
    let namespace = pod.namespace().unwrap_or_default();
    match labels.get(LABEL_BATCH) {
        Some(batch) => {
            let home = pod
                .annotations()
                .get(crate::pod::ANNOTATION_BATCH_NAMESPACE)
                .cloned()
                .unwrap_or(namespace);
            Some((home, batch.clone()))
        }
        None => Some((namespace, labels.get(LABEL_RUN_ID)?.clone())),
    }
}

/// The record of the run (or batch) `id` claimed in `namespace`: empty when it has no Lease.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn record_of(client: &kube::Client, namespace: &str, id: &str) -> Result<Record, LostPod> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(&crate::claim::lease_name(id)).await {
        Ok(lease) => Ok(lease.as_ref().map(Record::of).unwrap_or_default()),
        Err(source) => Err(LostPod::Unreachable {
            run_id: id.to_owned(),
            source,
        }),
    }
}

/// The batch run `run_id` (in `namespace`) is a member of, as the namespace and id of the
/// batch's claim: `journal`'s word (this machine's journal names the batch), else the labels of
/// its newest pod that the batch records; `None` for a run of its own.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn batch_of(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
    journal: Option<String>,
) -> Result<Option<(String, String)>, LostPod> {
    if let Some(batch) = journal {
        return Ok(Some((namespace.to_owned(), batch)));
    }
    let pods = run_pods(client, namespace, run_id, None).await?;
    Ok(pods
        .newest()
        .filter(|p| p.labels().contains_key(LABEL_BATCH))
        .and_then(claimed_in))
}

/// The pods in `namespace` whose `label` is `id` (a run's, or a batch's).
///
/// # Errors
/// The cluster cannot be asked.
pub async fn labelled(
    client: &kube::Client,
    namespace: &str,
    label: &str,
    id: &str,
) -> Result<Vec<Pod>, LostPod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{label}={id}"));
    let pods = api.list(&params).await.map_err(|source| LostPod::Unreachable {
        run_id: id.to_owned(),
        source,
    })?;
    Ok(pods.items)
}

/// What the cluster knows of a run, in the journal's terms: the pod carries the run id, the task
/// and the attempt; how far its logs were delivered it does not know (a reattach from another
/// machine prints the whole log again).
pub fn from_cluster(pod: &Pod, task_file: Option<std::path::PathBuf>) -> Journal {
    let labels = pod.labels();
    Journal {
        run_id: labels.get(LABEL_RUN_ID).cloned().unwrap_or_default(),
        task: labels.get(LABEL_TASK).cloned().unwrap_or_default(),
        task_file,
        namespace: pod.namespace().unwrap_or_default(),
        pod: Some(pod.name_any()),
        uid: pod.uid(),
        ..Default::default()
    }
}

/// Why the pod of a run could not be found again.
#[derive(Debug, thiserror::Error)]
pub enum LostPod {
    #[error("pod {namespace}/{pod} is not the pod of run {run_id} (its UID differs)")]
    Replaced {
        run_id: String,
        namespace: String,
        pod: String,
    },
    #[error("the pod of run {run_id} ({namespace}/{pod}) is gone")]
    Gone {
        run_id: String,
        namespace: String,
        pod: String,
    },
    /// Only pods the run does not record carry its labels.
    #[error(
        "no pod of run {run_id} is its own: pod {namespace}/{pod} carries its labels, but the run does not record it (its Lease or this machine's journal): left alone"
    )]
    Unrecorded {
        run_id: String,
        namespace: String,
        pod: String,
    },
    /// The run ended before it had a pod: a plugin refused it, or it was interrupted.
    #[error(
        "run {run_id} never had a pod: a plugin refused it or it was interrupted before one was created (`kpo list` shows how it ended)"
    )]
    NeverCreated { run_id: String },
    #[error("cannot look for the pod of run {run_id}")]
    Unreachable {
        run_id: String,
        #[source]
        source: kube::Error,
    },
}

impl LostPod {
    /// A run whose pod is gone has failed; a cluster that cannot be asked is unavailable.
    pub fn exit_code(&self) -> i32 {
        match self {
            LostPod::Replaced { .. }
            | LostPod::Gone { .. }
            | LostPod::NeverCreated { .. }
            | LostPod::Unrecorded { .. } => exit::FAILED,
            LostPod::Unreachable { .. } => exit::CLUSTER_UNAVAILABLE,
        }
    }
}

/// An unfinished run whose pod cannot be followed again: the lost pod's own words and causes,
/// and what to do about it.
#[derive(Debug)]
pub struct NotReattached(pub LostPod);

impl std::fmt::Display for NotReattached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; `--rerun` starts the run again", self.0)
    }
}

/// Its causes are the lost pod's (whose own words are already in the text).
impl std::error::Error for NotReattached {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

impl NotReattached {
    pub fn exit_code(&self) -> i32 {
        self.0.exit_code()
    }
}

/// The run's pod, if it still exists and is the run's own: same name *and* same UID, since a
/// pod of the same name may be another run's.
///
/// # Errors
/// The pod is gone, another pod has its name, or the cluster cannot be asked.
pub async fn find_pod(client: &kube::Client, journal: &Journal) -> Result<Pod, LostPod> {
    let (run_id, namespace) = (journal.run_id.clone(), journal.namespace.clone());
    let Some(pod) = journal.pod.clone().filter(|p| !p.is_empty()) else {
        return Err(LostPod::NeverCreated { run_id });
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &journal.namespace);
    match api.get_opt(&pod).await {
        Ok(Some(found)) if found.metadata.uid == journal.uid => Ok(found),
        Ok(Some(_)) => Err(LostPod::Replaced {
            run_id,
            namespace,
            pod,
        }),
        Ok(None) => Err(LostPod::Gone {
            run_id,
            namespace,
            pod,
        }),
        Err(source) => Err(LostPod::Unreachable { run_id, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, attempt: u32) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("p-{uid}"), "namespace": "ns", "uid": uid,
                         "labels": {LABEL_RUN_ID: "r", LABEL_TASK: "t", crate::pod::LABEL_ATTEMPT: attempt.to_string()}}
        }))
        .unwrap()
    }

    /// A pod's record is its run's Lease beside it; a batch member's, its batch's — in the
    /// namespace the member names when the batch was claimed in another.
    #[test]
    fn a_pods_record_is_where_its_claim_is() {
        let pod = |labels: serde_json::Value, annotations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": labels, "annotations": annotations}
            }))
            .unwrap()
        };
        let own = |ns: &str, id: &str| Some((ns.to_owned(), id.to_owned()));
        let none = serde_json::json!({});
        assert_eq!(
            claimed_in(&pod(serde_json::json!({LABEL_RUN_ID: "r"}), none.clone())),
            own("ns", "r")
        );
        let member = serde_json::json!({LABEL_RUN_ID: "b-t", LABEL_BATCH: "b"});
        assert_eq!(claimed_in(&pod(member.clone(), none.clone())), own("ns", "b"));
        let elsewhere = serde_json::json!({crate::pod::ANNOTATION_BATCH_NAMESPACE: "home"});
        assert_eq!(claimed_in(&pod(member, elsewhere)), own("home", "b"));
        assert_eq!(
            claimed_in(&pod(none.clone(), none)),
            None,
            "no run named: no one's"
        );
    }

    /// The journal of run `r` whose pod `u` was created, and the same run ended with exit 3.
    fn started_and_finished() -> (Journal, Journal) {
        let started = Journal {
            run_id: "r".into(),
            uid: Some("u".into()),
            ..Default::default()
        };
        let finished = Journal {
            exit_code: Some(3),
            ..started.clone()
        };
        (started, finished)
    }

    #[test]
    fn a_finished_run_is_reported_an_unfinished_one_reattached() {
        let (started, finished) = started_and_finished();
        let never_created = Journal {
            uid: None,
            ..started.clone()
        };
        let plan = |j: Option<Journal>, found: Option<&Pod>, rerun| plan(j, found, rerun).0;
        assert_eq!(plan(None, None, Rerun::No), Plan::Start);
        assert_eq!(
            plan(Some(finished.clone()), None, Rerun::No),
            Plan::Report(finished.clone())
        );
        assert_eq!(
            plan(Some(started.clone()), None, Rerun::No),
            Plan::Reattach(started.clone())
        );
        assert_eq!(plan(Some(never_created.clone()), None, Rerun::No), Plan::Start);
        assert_eq!(plan(Some(finished), None, Rerun::Always), Plan::Start);
        assert_eq!(
            plan(Some(started.clone()), Some(&pod("u", 1)), Rerun::No),
            Plan::Reattach(started)
        );
        assert_eq!(
            plan(Some(never_created), Some(&pod("v", 1)), Rerun::Always),
            Plan::Start
        );
    }

    /// `--rerun-finished`: a pod still at its work is followed; a run that ended — its pod
    /// finished, its main container ended, its pod being deleted or gone — starts again.
    #[test]
    fn rerun_finished_follows_a_running_pod_and_starts_an_ended_run_again() {
        let (started, finished) = started_and_finished();
        let with_status = |status: serde_json::Value| -> Pod {
            let mut pod = pod("u", 1);
            pod.status = Some(serde_json::from_value(status).unwrap());
            pod
        };
        let running = with_status(serde_json::json!({"phase": "Running", "containerStatuses": [
            {"name": "base", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"running": {}}}]}));
        let main_ended = with_status(serde_json::json!({"phase": "Running", "containerStatuses": [
            {"name": "base", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"terminated": {"exitCode": 1}}},
            {"name": "proxy", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"running": {}}}]}));
        let failed = with_status(serde_json::json!({"phase": "Failed"}));
        let mut deleting = running.clone();
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        let plan = |j: Option<Journal>, found: Option<&Pod>| plan(j, found, Rerun::Finished).0;
        assert_eq!(
            plan(Some(started.clone()), Some(&running)),
            Plan::Reattach(started.clone())
        );
        assert!(matches!(plan(None, Some(&running)), Plan::Reattach(_)));
        for ended in [&main_ended, &failed, &deleting] {
            assert_eq!(
                plan(Some(finished.clone()), Some(ended)),
                Plan::Start,
                "{ended:?}"
            );
            assert_eq!(plan(None, Some(ended)), Plan::Start, "{ended:?}");
        }
        assert_eq!(
            plan(Some(finished), None),
            Plan::Start,
            "reported before: run anew"
        );
        assert_eq!(plan(Some(started), None), Plan::Start, "its pod is gone");
    }

    #[test]
    fn without_a_journal_the_clusters_pod_is_followed_and_the_cluster_wins() {
        let (found, note) = plan(None, Some(&pod("v", 2)), Rerun::No);
        let Plan::Reattach(j) = found else {
            panic!("{found:?}")
        };
        assert_eq!(
            (j.uid.as_deref(), j.pod.as_deref(), j.task.as_str()),
            (Some("v"), Some("p-v"), "t")
        );
        assert!(j.cursors.is_empty() && note.is_none());
        let stale = Journal {
            run_id: "r".into(),
            pod: Some("p-u".into()),
            uid: Some("u".into()),
            exit_code: Some(1),
            ..Default::default()
        };
        let (found, note) = plan(Some(stale), Some(&pod("v", 2)), Rerun::No);
        assert!(matches!(found, Plan::Reattach(j) if j.uid.as_deref() == Some("v")));
        assert!(note.unwrap().contains("the cluster has its pod p-v (attempt 2)"));
        // Another pod that took the journal's pod name is no newer attempt: not followed.
        let named = Journal {
            run_id: "r".into(),
            pod: Some("p-v".into()),
            uid: Some("u".into()),
            ..Default::default()
        };
        let (found, _) = plan(Some(named.clone()), Some(&pod("v", 2)), Rerun::No);
        assert_eq!(found, Plan::Reattach(named), "find_pod then refuses it by UID");
    }

    /// A kpo killed between its pod's create and the journal's UID leaves a journal naming the
    /// pod without it: the run's own pod under that name is followed (by its UID), not started
    /// again beside it.
    #[test]
    fn a_journal_without_its_pods_uid_follows_the_recorded_pod() {
        let created = Journal {
            run_id: "r".into(),
            pod: Some("p-v".into()),
            ..Default::default()
        };
        let (found, note) = plan(Some(created.clone()), Some(&pod("v", 1)), Rerun::No);
        let expected = Journal {
            uid: Some("v".into()),
            ..created
        };
        assert_eq!((found, note), (Plan::Reattach(expected), None));
    }
}
