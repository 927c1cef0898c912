//! The tasks of a batch: read from files and folders, named uniquely, each given its run id in
//! the batch and a plan — start, follow again, or report — from the journal and the cluster.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::journal::{Journal, JournalStore, JournaledEnd};
use crate::plugin::TaskPlugins;
use crate::pod::{LABEL_BATCH, LABEL_RUN_ID, RunIdentity};
use crate::reattach::{self, LostPod, Plan};
use crate::supervise::{Cursor, Observer};
use crate::task::{self, Task, TaskError};

/// One task of a batch, ready to run.
pub struct Member {
    pub task: Task,
    pub plugins: Option<Arc<TaskPlugins>>,
    pub namespace: String,
    /// Its run id ([`task_run_id`]), pod name and batch.
    pub identity: RunIdentity,
    pub start: Start,
    /// Hears everything of its run: the CLI prefixes it with the task's name and journals it.
    pub observer: Arc<dyn Observer>,
}

/// What to do with a task of a batch that may have run before under the same batch id.
pub enum Start {
    New,
    /// Its pod runs (or finished while no kpo watched): follow it, from where its logs were.
    Reattach {
        pod: Box<Pod>,
        cursors: BTreeMap<String, Cursor>,
    },
    /// It finished in an earlier life of the batch: its journalled report.
    Finished(JournaledEnd),
    /// Its pod went away while no kpo watched, and no report of it was kept: not run again,
    /// since it may have run to its end.
    Lost(String),
}

/// The task files `paths` name — files as given, folders by their `*.toml` in name order — read
/// and checked, each name used once, the `imposed` policies added and the machine's grant
/// `rules` obeyed.
///
/// # Errors
/// The first task file that cannot be read or is invalid, a folder that cannot be read, or a
/// task name used twice (located at the second file's `name`).
pub fn load_tasks(
    paths: &[PathBuf],
    imposed: &[crate::task::PluginSpec],
    rules: &crate::task::GrantRules,
) -> Result<Vec<Task>, TaskError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| TaskError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut tasks = Vec::with_capacity(files.len());
    for file in files {
        let mut task = task::load(&file)?;
        task.impose(imposed)?;
        task.allow(rules)?;
        if let Some(first) = seen.get(&task.name) {
            let message = format!(
                "task name {:?} is already used by {}; the names of a batch's tasks must differ",
                task.name,
                first.display()
            );
            return Err(task::problem_at(&file, "name", message));
        }
        seen.insert(task.name.clone(), file);
        tasks.push(task);
    }
    Ok(tasks)
}

/// The run id of the task called `name` in batch `batch_id`: `<batch>-<name>`, or, when that
/// is not a label value (too long, or ends in `-`), the batch id and a hash of the name. The
/// same for every life of the batch, so that a restarted batch finds its runs again.
pub fn task_run_id(batch_id: &str, name: &str) -> String {
    let plain = format!("{batch_id}-{name}");
    if crate::names::check_label_value(&plain).is_ok() {
        return plain;
    }
    let hash = Sha256::digest(name.as_bytes());
    let short: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let room = 63usize.saturating_sub(batch_id.len() + short.len() + 2);
    let stem: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(room)
        .collect();
    format!("{batch_id}-{stem}-{short}")
}

/// Decides, for each task of batch `batch_id`, whether to start, follow again or report it, from
/// this machine's journal and, above all, the pods of the batch in the cluster (one list per
/// namespace). Every task starts afresh with `rerun`.
///
/// # Errors
/// The cluster cannot be asked.
pub async fn plan_members(
    client: &kube::Client,
    cluster: &str,
    store: &JournalStore,
    batch_id: &str,
    tasks: &[(Task, String)],
    rerun: bool,
) -> Result<Vec<(Start, Option<Journal>, Option<String>)>, LostPod> {
    let mut pods: HashMap<String, Pod> = HashMap::new();
    let namespaces: std::collections::BTreeSet<&String> = tasks.iter().map(|(_, ns)| ns).collect();
    let mut labelled = Vec::new();
    for ns in namespaces {
        labelled.extend(reattach::labelled(client, ns, LABEL_BATCH, batch_id).await?);
    }
    // This machine's journals recognise their pods by UID (`reattach::plan`); the rest must be
    // in the batch's record.
    let recognised = reattach::recognise(client, labelled, Vec::new()).await?;
    for notice in recognised.notices() {
        tracing::warn!("{notice}");
    }
    for pod in recognised.own {
        let Some(run_id) = pod.labels().get(LABEL_RUN_ID).cloned() else {
            continue;
        };
        let newer = pods
            .get(&run_id)
            .is_none_or(|known| reattach::attempt_of(&pod) > reattach::attempt_of(known));
        if newer {
            pods.insert(run_id, pod);
        }
    }
    let mut plans = Vec::with_capacity(tasks.len());
    for (task, ns) in tasks {
        let run_id = task_run_id(batch_id, &task.name);
        let earlier = store.load(cluster, ns, &run_id).unwrap_or_else(|e| {
            tracing::warn!("cannot read the journal of run {run_id}: {e}");
            None
        });
        let (plan, note) = reattach::plan(earlier, pods.get(&run_id), rerun);
        let planned = match plan {
            Plan::Start => (Start::New, None, note),
            Plan::Report(journal) => {
                let report = journal
                    .report
                    .clone()
                    .unwrap_or_else(|| JournaledEnd::unreadable(&journal));
                (Start::Finished(report), Some(journal), note)
            }
            Plan::Reattach(journal) => match reattach::find_pod(client, &journal).await {
                Ok(pod) => (
                    Start::Reattach {
                        pod: Box::new(pod),
                        cursors: journal.cursors.clone(),
                    },
                    Some(journal),
                    note,
                ),
                Err(e @ (LostPod::Gone { .. } | LostPod::Replaced { .. })) => {
                    (Start::Lost(e.to_string()), Some(journal), note)
                }
                Err(e) => return Err(e),
            },
        };
        plans.push(planned);
    }
    Ok(plans)
}
