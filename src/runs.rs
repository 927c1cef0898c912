//! What a run id names, for the commands about runs a person lost track of (`logs`, `delete`,
//! `attach`): this machine's journals, and above all the cluster's pods that the run records as
//! its own (the cluster wins). Pods are always matched by UID.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kube::ResourceExt;

use crate::journal::{Journal, JournalStore};
use crate::pod::LABEL_BATCH;
use crate::reattach::{self, LostPod, NotReattached};

/// Why a run id names no run that can be acted on.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "this machine has no journal of run {0} (see `kpo list`); from any machine, `kpo run --run-id {0} TASK.toml` reattaches to it"
    )]
    NoJournal(String),
    /// One journal in each of several namespaces or clusters: which to pick is the user's to say.
    #[error(
        "run id {run_id} names runs in {}: say which with `kpo run --run-id {run_id} --namespace NS [--context CTX] TASK.toml`",
        places.join(", ")
    )]
    Ambiguous { run_id: String, places: Vec<String> },
    #[error("no run {run_id}: this machine has no journal of it and namespace {namespace} no pod of it")]
    NoRun { run_id: String, namespace: String },
    #[error("the journal of run {0} does not name its task file")]
    NoTaskFile(String),
    /// Only pods the run does not record carry its labels.
    #[error(transparent)]
    Unrecorded(NotReattached),
    #[error(transparent)]
    Lost(#[from] LostPod),
    /// This machine's journals cannot be read.
    #[error("cannot read the run journals")]
    Journal(#[source] std::io::Error),
}

impl FindError {
    pub fn exit_code(&self) -> i32 {
        match self {
            FindError::NoJournal(_)
            | FindError::Ambiguous { .. }
            | FindError::NoRun { .. }
            | FindError::NoTaskFile(_) => crate::exit::USAGE,
            FindError::Unrecorded(e) => e.exit_code(),
            FindError::Lost(e) => e.exit_code(),
            FindError::Journal(_) => crate::exit::INTERNAL,
        }
    }

    /// Whether the id names no run at all (it may still name a batch).
    pub fn no_run(&self) -> bool {
        matches!(self, FindError::NoJournal(_) | FindError::NoRun { .. })
    }
}

/// Where runs are looked for: this machine's journals, and a cluster (by its address, as the
/// journal keys runs).
pub struct Finder<'a> {
    pub store: &'a JournalStore,
    pub client: &'a kube::Client,
    pub server: &'a str,
    /// Hears of each pod that carries a run's labels without being its own: left alone.
    pub notice: &'a (dyn Fn(String) + Sync),
}

/// This machine's journal of `run_id`, wherever it ran, or why not (none, or one in each of
/// several namespaces or clusters).
///
/// # Errors
/// No journal, several, or the journals cannot be read.
pub fn journal(store: &JournalStore, run_id: &str) -> Result<Journal, FindError> {
    let mut found = store.find(run_id).map_err(FindError::Journal)?;
    match found.len() {
        0 => Err(FindError::NoJournal(run_id.to_owned())),
        1 => Ok(found.remove(0)),
        _ => Err(FindError::Ambiguous {
            run_id: run_id.to_owned(),
            places: found
                .iter()
                .map(|j| {
                    format!(
                        "namespace {} of {}",
                        j.namespace,
                        j.cluster.as_deref().unwrap_or("an unrecorded cluster")
                    )
                })
                .collect(),
        }),
    }
}

/// The task file of a run, to run it again under its id.
///
/// # Errors
/// The journal does not name one.
pub fn task_file(journal: &Journal) -> Result<PathBuf, FindError> {
    journal
        .task_file
        .clone()
        .ok_or_else(|| FindError::NoTaskFile(journal.run_id.clone()))
}

/// The reports this machine's journals keep of run `id`, or of every run of batch `id`: what
/// `kpo timeline` draws. A run still going has none yet.
///
/// # Errors
/// No journal of such a run or batch, or the journals cannot be read.
pub fn reports(store: &JournalStore, id: &str) -> Result<Vec<crate::report::RunReport>, FindError> {
    let mut journals: Vec<Journal> = store
        .list()
        .map_err(FindError::Journal)?
        .into_iter()
        .filter(|j| j.batch.as_deref() == Some(id))
        .collect();
    if journals.is_empty() {
        journals.push(journal(store, id)?);
    }
    Ok(journals
        .into_iter()
        .filter_map(|j| match j.report {
            Some(crate::journal::JournaledEnd::Report(report)) => Some(*report),
            _ => None,
        })
        .collect())
}

impl Finder<'_> {
    /// The run `run_id` wherever it can be found: its newest pod in the cluster (the cluster
    /// wins), else this machine's journal of it on that cluster — in `namespace` if there is one
    /// there, else the newest. `namespace` is where to look when this machine has no journal.
    ///
    /// # Errors
    /// No such run, only pods it does not record, or the cluster cannot be asked.
    pub async fn find_run(&self, namespace: &str, run_id: &str) -> Result<Journal, FindError> {
        let mut here: Vec<Journal> = self
            .store
            .find(run_id)
            .map_err(FindError::Journal)?
            .into_iter()
            .filter(|j| j.cluster.as_deref().is_none_or(|c| c == self.server))
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
        let pods = reattach::run_pods(self.client, &ns, run_id, known).await?;
        pods.notices().into_iter().for_each(self.notice);
        match (local, pods.newest()) {
            (Some(j), Some(pod)) if j.uid.is_some() && j.uid == pod.uid() => Ok(j),
            (local, Some(pod)) => Ok(reattach::from_cluster(pod, local.and_then(|j| j.task_file))),
            (Some(j), None) => Ok(j),
            (None, None) => match pods.unrecorded.first() {
                Some(pod) => Err(FindError::Unrecorded(NotReattached(LostPod::Unrecorded {
                    run_id: run_id.to_owned(),
                    namespace: ns,
                    pod: pod.name_any(),
                }))),
                None => Err(FindError::NoRun {
                    run_id: run_id.to_owned(),
                    namespace: ns,
                }),
            },
        }
    }

    /// The runs of batch `batch_id`, wherever they can be found: the pods of the batch in
    /// `namespace` (the cluster wins), and this machine's journals of it. Empty when `batch_id`
    /// names no batch.
    ///
    /// # Errors
    /// The journals cannot be read, or the cluster cannot be asked.
    pub async fn batch(&self, namespace: &str, batch_id: &str) -> Result<Vec<Journal>, FindError> {
        let mut runs: BTreeMap<String, Journal> = self
            .store
            .list()
            .map_err(FindError::Journal)?
            .into_iter()
            .filter(|j| j.batch.as_deref() == Some(batch_id))
            .filter(|j| j.cluster.as_deref().is_none_or(|c| c == self.server))
            .map(|j| (j.run_id.clone(), j))
            .collect();
        let pods = reattach::labelled(self.client, namespace, LABEL_BATCH, batch_id).await?;
        let known: Vec<&str> = runs.values().filter_map(|j| j.uid.as_deref()).collect();
        let pods = reattach::recognise(self.client, pods, known).await?;
        pods.notices().into_iter().for_each(self.notice);
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

    /// The run `id` names, or every run of the batch it names.
    ///
    /// # Errors
    /// It names neither (the run's error), or the cluster cannot be asked.
    pub async fn run_or_batch(&self, namespace: &str, id: &str) -> Result<Named, FindError> {
        let not_a_run = match self.find_run(namespace, id).await {
            Ok(journal) => return Ok(Named::Run(Box::new(journal))),
            Err(e) if e.no_run() => e,
            Err(e) => return Err(e),
        };
        let members = self.batch(namespace, id).await?;
        match members.is_empty() {
            true => Err(not_a_run),
            false => Ok(Named::Batch(members)),
        }
    }
}

/// What an id names.
#[derive(Debug)]
pub enum Named {
    Run(Box<Journal>),
    /// A batch: each of its runs.
    Batch(Vec<Journal>),
}
