//! What a run id means now, for each task of a session: start it, follow its pod again, or
//! report how it ended — from this machine's journal and, above all, the cluster's pods of the
//! run that its record says are its own (the cluster wins).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::SessionError;
use crate::batch::Start;
use crate::journal::{Journal, JournalStore, JournaledEnd};
use crate::plugin::TaskPlugins;
use crate::pod::{LABEL_RUN_ID, RunIdentity};
use crate::reattach::{self, LostPod, NotReattached, Plan};
use crate::task::Task;

/// A task of the session, placed: where it runs and under which identity.
pub(super) struct Placed {
    task: Task,
    plugins: Option<Arc<TaskPlugins>>,
    namespace: String,
    identity: RunIdentity,
}

/// A task of the session and what it will do.
pub struct Planned {
    pub task: Task,
    pub plugins: Option<Arc<TaskPlugins>>,
    pub namespace: String,
    /// Its run id, the name of its next pod, its batch.
    pub identity: RunIdentity,
    pub start: Start,
    /// What its journal starts from (an earlier life's, when it is followed again).
    pub journal: Journal,
    /// Where this machine's journal and the cluster disagreed, and which was followed.
    pub note: Option<String>,
}

impl Placed {
    pub(super) fn new(
        namespace: String,
        task: Task,
        plugins: Option<Arc<TaskPlugins>>,
        identity: RunIdentity,
    ) -> Self {
        Self {
            task,
            plugins,
            namespace,
            identity,
        }
    }

    /// The task as a member of batch `batch` (claimed in `home`), running in `namespace`.
    pub(super) fn member(
        batch: &str,
        home: &str,
        namespace: String,
        task: Task,
        plugins: Option<Arc<TaskPlugins>>,
    ) -> Self {
        let mut identity = RunIdentity::generate(&task.name);
        identity.run_id = crate::batch::task_run_id(batch, &task.name);
        identity.batch = Some(batch.to_owned());
        identity.batch_namespace = Some(home.to_owned());
        Self::new(namespace, task, plugins, identity)
    }

    /// The task started afresh, its journal a new one.
    pub(super) fn start_new(self, server: &str) -> Planned {
        let journal = Journal {
            run_id: self.identity.run_id.clone(),
            batch: self.identity.batch.clone(),
            task: self.task.name.clone(),
            task_file: std::fs::canonicalize(&self.task.source).ok(),
            cluster: Some(server.to_owned()),
            namespace: self.namespace.clone(),
            params: self.task.params.clone(),
            ..Default::default()
        };
        self.planned(Start::New, journal, None)
    }

    fn planned(self, start: Start, journal: Journal, note: Option<String>) -> Planned {
        Planned {
            task: self.task,
            plugins: self.plugins,
            namespace: self.namespace,
            identity: self.identity,
            start,
            journal,
            note,
        }
    }
}

/// Plans each task of `tasks`, whose pods carry `selector` (`label`, `id`): the run's id for one
/// run, the batch's for a batch — listed once per namespace; `rerun` says when a task known
/// already starts again (its attempts numbered on from the last one known).
/// Also returns what the user should hear of pods that are not the runs' own.
pub(super) async fn plan(
    client: &kube::Client,
    server: &str,
    store: &JournalStore,
    tasks: Vec<Placed>,
    (label, id): (&str, &str),
    rerun: reattach::Rerun,
) -> Result<(Vec<Planned>, Vec<String>), SessionError> {
    let mut notices = Vec::new();
    let journals: Vec<Option<Journal>> = tasks
        .iter()
        .map(|t| {
            let run_id = &t.identity.run_id;
            store.load(server, &t.namespace, run_id).unwrap_or_else(|e| {
                notices.push(format!("warning: cannot read the journal of run {run_id}: {e}"));
                None
            })
        })
        .collect();
    let namespaces: BTreeSet<&str> = tasks.iter().map(|t| t.namespace.as_str()).collect();
    let mut labelled = Vec::new();
    for ns in namespaces {
        labelled.extend(reattach::labelled(client, ns, label, id).await?);
    }
    // This machine's journals recognise their pods by UID; the rest must be in the run's record.
    let known: Vec<&str> = journals
        .iter()
        .flatten()
        .filter_map(|j| j.uid.as_deref())
        .collect();
    let recognised = reattach::recognise(client, labelled, known).await?;
    notices.extend(recognised.notices());
    let newest = newest_by_run(recognised.own);
    let mut planned = Vec::with_capacity(tasks.len());
    for (mut task, earlier) in tasks.into_iter().zip(journals) {
        let found = newest.get(&task.identity.run_id);
        let before = attempts_known(earlier.as_ref(), found);
        let (plan, note) = reattach::plan(earlier, found, rerun);
        let start = match plan {
            Plan::Start => {
                task.identity.attempt = before + 1;
                let mut fresh = task.start_new(server);
                fresh.note = note;
                planned.push(fresh);
                continue;
            }
            Plan::Report(journal) => {
                let report = journal
                    .report
                    .clone()
                    .unwrap_or_else(|| JournaledEnd::unreadable(&journal));
                (Start::Finished(report), journal)
            }
            Plan::Reattach(journal) => {
                let journal = Journal {
                    task_file: journal
                        .task_file
                        .clone()
                        .or_else(|| std::fs::canonicalize(&task.task.source).ok()),
                    cluster: Some(server.to_owned()),
                    params: task.task.params.clone(),
                    ..journal
                };
                match reattach::find_pod(client, &journal).await {
                    Ok(pod) => (
                        Start::Reattach {
                            pod: Box::new(pod),
                            cursors: journal.cursors.clone(),
                        },
                        journal,
                    ),
                    Err(e @ (LostPod::Gone { .. } | LostPod::Replaced { .. })) => {
                        (Start::Lost(NotReattached(e)), journal)
                    }
                    Err(e) => return Err(NotReattached(e).into()),
                }
            }
        };
        planned.push(task.planned(start.0, start.1, note));
    }
    Ok((planned, notices))
}

/// How many attempts of a run are known — its newest pod's, its journaled end's — so that a run
/// started again goes on from there (attempt 3 after two) and its new pod is the newest.
fn attempts_known(journal: Option<&Journal>, found: Option<&Pod>) -> u32 {
    let journaled = journal
        .and_then(|j| j.report.as_ref())
        .map_or(0, JournaledEnd::attempt);
    journaled.max(found.map_or(0, crate::pod::attempt_of))
}

/// Each run's newest pod (its highest attempt).
fn newest_by_run(pods: Vec<Pod>) -> HashMap<String, Pod> {
    let mut newest: HashMap<String, Pod> = HashMap::new();
    for pod in pods {
        let Some(run_id) = pod.labels().get(LABEL_RUN_ID).cloned() else {
            continue;
        };
        let newer = newest
            .get(&run_id)
            .is_none_or(|known| crate::pod::attempt_of(&pod) > crate::pod::attempt_of(known));
        if newer {
            newest.insert(run_id, pod);
        }
    }
    newest
}
