//! Picking a run up again from what the journal knows of it: report a finished run, follow an
//! unfinished one's pod again (matched by UID, never by name alone), or start it afresh. One
//! decision, used by `run --run-id`, `attach`, `logs` and `delete` alike.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::exit;
use crate::journal::Journal;

/// What to do with a run id, given its journal.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to pick up (no journal, no pod yet, or `--rerun`): start a new run.
    Start,
    /// The run finished: report it, do not run it again.
    Report(Journal),
    /// The run has a pod and no final report: follow that pod to its end.
    Reattach(Journal),
}

/// Decides what `kpo run --run-id` does with an earlier run of that id.
pub fn plan(earlier: Option<Journal>, rerun: bool) -> Plan {
    match earlier {
        Some(_) if rerun => Plan::Start,
        Some(j) if j.exit_code.is_some() => Plan::Report(j),
        Some(j) if j.uid.is_some() => Plan::Reattach(j),
        _ => Plan::Start,
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
            LostPod::Replaced { .. } | LostPod::Gone { .. } => exit::FAILED,
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
    let pod = journal.pod.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &journal.namespace);
    let (run_id, namespace) = (journal.run_id.clone(), journal.namespace.clone());
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
        assert_eq!(plan(None, false), Plan::Start);
        assert_eq!(
            plan(Some(finished.clone()), false),
            Plan::Report(finished.clone())
        );
        assert_eq!(
            plan(Some(started.clone()), false),
            Plan::Reattach(started.clone())
        );
        assert_eq!(plan(Some(never_created), false), Plan::Start);
        assert_eq!(plan(Some(finished), true), Plan::Start);
        assert_eq!(plan(Some(started), true), Plan::Start);
    }
}
