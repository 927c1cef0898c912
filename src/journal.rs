//! The run journal: one small file per run in the user's state folder, rewritten atomically as
//! the run goes — which pod (by UID), how far each log was delivered, and the final report — so
//! that a kpo killed mid-run can be started again for the same run and pick up exactly there.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::report::{RunReport, TimelineEntry};
use crate::supervise::{Cursor, Observer};

/// What is known about one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub run_id: String,
    pub task: String,
    /// The task file, so that `kpo attach` can find the run's policy again.
    pub task_file: Option<PathBuf>,
    pub namespace: String,
    /// The pod of the current attempt, once created.
    pub pod: Option<String>,
    /// Its UID: the only thing that proves a pod found later is this run's.
    pub uid: Option<String>,
    /// How far each container's log was delivered.
    pub cursors: BTreeMap<String, Cursor>,
    /// The final report, once the run is over.
    pub report: Option<serde_json::Value>,
    pub exit_code: Option<i32>,
}

/// The folder of journals: `$KPO_STATE_DIR`, else the user's state folder (`~/.local/state/kpo`).
#[derive(Debug, Clone)]
pub struct JournalStore {
    dir: PathBuf,
}

impl JournalStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn open_default() -> Self {
        let base = std::env::var_os("KPO_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::state_dir().map(|d| d.join("kpo")))
            .or_else(|| dirs::data_local_dir().map(|d| d.join("kpo")))
            .unwrap_or_else(|| std::env::temp_dir().join("kpo"));
        Self::new(base.join("runs"))
    }

    fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    /// The journal of `run_id`, if there is one.
    pub fn load(&self, run_id: &str) -> std::io::Result<Option<Journal>> {
        match std::fs::read(self.path(run_id)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every journal, oldest first.
    pub fn list(&self) -> std::io::Result<Vec<Journal>> {
        let mut found = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                if let Ok(j) = serde_json::from_slice::<Journal>(&std::fs::read(&path)?) {
                    found.push((modified, j));
                }
            }
        }
        found.sort_by_key(|(m, _)| *m);
        Ok(found.into_iter().map(|(_, j)| j).collect())
    }

    /// Writes the journal so that a crash leaves either the old or the new version, never half.
    pub fn save(&self, journal: &Journal) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", journal.run_id, std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(journal).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, self.path(&journal.run_id))
    }
}

/// An [`Observer`] that keeps the journal up to date, then passes everything on.
pub struct Recording {
    inner: Arc<dyn Observer>,
    store: JournalStore,
    journal: Mutex<Journal>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Observer>, store: JournalStore, journal: Journal) -> Self {
        Self {
            inner,
            store,
            journal: Mutex::new(journal),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Journal)) {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut journal);
        if let Err(e) = self.store.save(&journal) {
            tracing::warn!("cannot write the run journal: {e}");
        }
    }

    /// Records the final report: a later `kpo run --run-id` reports it instead of running again.
    pub fn finish(&self, report: &RunReport) {
        self.update(|j| {
            j.report = serde_json::to_value(report).ok();
            j.exit_code = Some(report.exit_code);
        });
    }
}

impl Observer for Recording {
    fn status(&self, entry: &TimelineEntry) {
        self.inner.status(entry);
    }

    fn log_line(&self, container: &str, line: &str) {
        self.inner.log_line(container, line);
    }

    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }

    fn created(&self, pod: &Pod) {
        self.update(|j| {
            j.pod = Some(pod.name_any());
            j.uid = pod.uid();
            j.cursors.clear();
        });
        self.inner.created(pod);
    }

    fn log_checkpoint(&self, container: &str, cursor: &Cursor) {
        // After the line was printed: a kill in between repeats at most that one line.
        self.update(|j| {
            j.cursors.insert(container.to_owned(), cursor.clone());
        });
        self.inner.log_checkpoint(container, cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("runs"));
        assert_eq!(store.load("r1").unwrap(), None);
        let journal = Journal {
            run_id: "r1".into(),
            pod: Some("p".into()),
            ..Default::default()
        };
        store.save(&journal).unwrap();
        assert_eq!(store.load("r1").unwrap(), Some(journal));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("runs")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
