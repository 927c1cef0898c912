//! Picking a run up again from what is known of it — this machine's journal and, above all, the
//! cluster, where the run's pods carry its id: report a finished run, follow an unfinished one's
//! pod again (matched by UID, never by name alone), or start it afresh. One decision, used by
//! `run --run-id`, `attach`, `logs` and `delete` alike, on any machine.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::exit;
use crate::journal::Journal;
use crate::pod::{LABEL_ATTEMPT, LABEL_RUN_ID, LABEL_TASK};

/// What to do with a run id, given what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to pick up (no journal, no pod, or `--rerun`): start a new run.
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
pub fn plan(earlier: Option<Journal>, found: Option<&Pod>, rerun: bool) -> (Plan, Option<String>) {
    if rerun {
        return (Plan::Start, None);
    }
    match (earlier, found) {
        (Some(j), Some(pod)) if j.uid.is_some() && j.uid == pod.uid() => match j.exit_code {
            Some(_) => (Plan::Report(j), None),
            None => (Plan::Reattach(j), None),
        },
        // kpo never gives two pods one name (each attempt has a fresh suffix): a pod under the
        // journal's pod name with another UID is not the run's, whatever its labels say.
        (Some(j), Some(pod)) if j.pod.as_deref() == Some(&pod.name_any()) => (Plan::Reattach(j), None),
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

/// The run's newest pod in `namespace` (the highest attempt), found by its run-id label.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn newest_pod(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
) -> Result<Option<Pod>, LostPod> {
    let pods = labelled(client, namespace, LABEL_RUN_ID, run_id).await?;
    Ok(pods.into_iter().max_by_key(attempt_of))
}

/// The batch run `run_id` is a member of: `journal`'s word (this machine's journal), else its
/// newest pod's `kpo.dev/batch` label; `None` for a run of its own.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn batch_of(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
    journal: Option<String>,
) -> Result<Option<String>, LostPod> {
    if journal.is_some() {
        return Ok(journal);
    }
    let newest = newest_pod(client, namespace, run_id).await?;
    Ok(newest.and_then(|p| p.labels().get(crate::pod::LABEL_BATCH).cloned()))
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

/// The attempt a pod of a run is (1 without the label).
pub fn attempt_of(pod: &Pod) -> u32 {
    pod.labels()
        .get(LABEL_ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
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
            LostPod::Replaced { .. } | LostPod::Gone { .. } | LostPod::NeverCreated { .. } => exit::FAILED,
            LostPod::Unreachable { .. } => exit::CLUSTER_UNAVAILABLE,
        }
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
                         "labels": {LABEL_RUN_ID: "r", LABEL_TASK: "t", LABEL_ATTEMPT: attempt.to_string()}}
        }))
        .unwrap()
    }

    #[test]
    fn a_finished_run_is_reported_an_unfinished_one_reattached() {
        let started = Journal {
            run_id: "r".into(),
            uid: Some("u".into()),
            ..Default::default()
        };
        let finished = Journal {
            exit_code: Some(3),
            ..started.clone()
        };
        let never_created = Journal {
            uid: None,
            ..started.clone()
        };
        let plan = |j: Option<Journal>, found: Option<&Pod>, rerun| plan(j, found, rerun).0;
        assert_eq!(plan(None, None, false), Plan::Start);
        assert_eq!(
            plan(Some(finished.clone()), None, false),
            Plan::Report(finished.clone())
        );
        assert_eq!(
            plan(Some(started.clone()), None, false),
            Plan::Reattach(started.clone())
        );
        assert_eq!(plan(Some(never_created.clone()), None, false), Plan::Start);
        assert_eq!(plan(Some(finished), None, true), Plan::Start);
        assert_eq!(
            plan(Some(started.clone()), Some(&pod("u", 1)), false),
            Plan::Reattach(started)
        );
        assert_eq!(plan(Some(never_created), Some(&pod("v", 1)), true), Plan::Start);
    }

    #[test]
    fn without_a_journal_the_clusters_pod_is_followed_and_the_cluster_wins() {
        let (found, note) = plan(None, Some(&pod("v", 2)), false);
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
        let (found, note) = plan(Some(stale), Some(&pod("v", 2)), false);
        assert!(matches!(found, Plan::Reattach(j) if j.uid.as_deref() == Some("v")));
        assert!(note.unwrap().contains("the cluster has its pod p-v (attempt 2)"));
        // Another pod that took the journal's pod name is no newer attempt: not followed.
        let named = Journal {
            run_id: "r".into(),
            pod: Some("p-v".into()),
            uid: Some("u".into()),
            ..Default::default()
        };
        let (found, _) = plan(Some(named.clone()), Some(&pod("v", 2)), false);
        assert_eq!(found, Plan::Reattach(named), "find_pod then refuses it by UID");
    }
}
