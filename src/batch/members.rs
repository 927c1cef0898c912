//! The tasks of a batch: read from files and folders, named uniquely, each given its run id in
//! the batch; and what a task ready to run is (its plan is the session's).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};

use crate::journal::JournaledEnd;
use crate::plugin::TaskPlugins;
use crate::pod::RunIdentity;
use crate::reattach::NotReattached;
use crate::supervise::{Cursor, Observer};
use crate::task::{self, Task, TaskError};

/// One task, ready to run (a single run is a batch of one of these).
pub struct Member {
    pub task: Task,
    pub plugins: Option<Arc<TaskPlugins>>,
    pub namespace: String,
    /// Its run id ([`task_run_id`] in a batch), pod name and batch.
    pub identity: RunIdentity,
    pub start: Start,
    /// Hears everything of its run: the CLI prefixes it with the task's name and journals it.
    pub observer: Arc<dyn Observer>,
}

/// What to do with a task that may have run before under the same run id.
pub enum Start {
    New,
    /// Its pod runs (or finished while no kpo watched): follow it, from where its logs were.
    Reattach {
        pod: Box<Pod>,
        cursors: BTreeMap<String, Cursor>,
    },
    /// It finished in an earlier life: its journalled report.
    Finished(JournaledEnd),
    /// Its pod went away while no kpo watched, and no report of it was kept: not run again,
    /// since it may have run to its end.
    Lost(NotReattached),
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
