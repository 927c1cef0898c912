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

/// A task file (or a folder of them) and the values given to its parameters.
#[derive(Debug, Clone)]
pub struct TaskSource {
    pub path: PathBuf,
    pub given: task::Given,
    /// Of a matrix file, only this member (a run of it attached to on its own).
    pub only: Option<String>,
}

/// The task files `sources` name — files as given, folders by their `*.toml` in name order, a
/// file with a `[matrix]` as its members — read with their parameter values and checked, each
/// name used once, the `imposed` policies added and the machine's grant `rules` obeyed. Of
/// several files, each is given the values of the parameters it declares; one that none
/// declares is an error.
///
/// # Errors
/// The first task file that cannot be read or is invalid, a folder that cannot be read, a
/// value for a parameter no file declares, or a task name used twice (located at the second
/// file's `name`).
pub fn load_tasks(
    sources: &[TaskSource],
    imposed: &[crate::task::PluginSpec],
    rules: &crate::task::GrantRules,
) -> Result<Vec<Task>, TaskError> {
    let mut files: Vec<(PathBuf, &task::Given, Option<&String>)> = Vec::new();
    for source in sources {
        let path = &source.path;
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
            files.extend(found.into_iter().map(|f| (f, &source.given, None)));
        } else {
            files.push((path.clone(), &source.given, source.only.as_ref()));
        }
    }
    let several = files.len() > 1;
    let mut unused: std::collections::BTreeSet<&String> =
        files.iter().flat_map(|(_, g, _)| g.0.keys()).collect();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut tasks = Vec::with_capacity(files.len());
    for (file, given, only) in &files {
        let given = match several {
            true => {
                let declared = task::declared_params(file)?;
                unused.retain(|name| !declared.contains(name));
                given.only(&declared)
            }
            false => (*given).clone(),
        };
        let members = task::load_members(file, &given)?;
        let wanted = members
            .into_iter()
            .filter(|t| only.is_none_or(|name| &t.name == name));
        for mut task in wanted {
            task.impose(imposed)?;
            task.allow(rules)?;
            if let Some(first) = seen.get(&task.name) {
                let message = format!(
                    "task name {:?} is already used by {}; the names of a batch's tasks must differ",
                    task.name,
                    first.display()
                );
                return Err(task::problem_at(file, "name", message));
            }
            seen.insert(task.name.clone(), file.clone());
            tasks.push(task);
        }
    }
    if several && let Some(name) = unused.first() {
        return Err(TaskError::Given(format!(
            "--set {name}: no task file of the batch declares a parameter `{name}`"
        )));
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
