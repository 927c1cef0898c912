//! The run journal: one small file per run in the user's state folder, rewritten atomically as
//! the run goes — which pod (by UID) and at the end the report — so that a kpo killed mid-run can
//! be started again for the same run and pick up exactly there.
//!
//! How far each log was delivered changes with every piece of output, so it is not rewritten:
//! it is appended, one short line per piece, to `<run>.cursors` beside the journal (a write
//! without fsync: it survives kpo being killed, which is what it is for), and folded back into the
//! journal whenever that is rewritten. Reading takes, per container, the furthest cursor of the
//! two; a line torn by a kill is ignored.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
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
    /// The batch the run is part of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    pub task: String,
    /// The task file, so that `kpo attach` can find the run's policy again.
    pub task_file: Option<PathBuf>,
    /// The API server the run's pods are on: with the namespace and the run id, what names the
    /// run (`None` in journals written before kpo recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    /// The pod of the current attempt, once created.
    pub pod: Option<String>,
    /// Its UID: the only thing that proves a pod found later is this run's.
    pub uid: Option<String>,
    /// How far each container's log was delivered.
    pub cursors: BTreeMap<String, Cursor>,
    /// How the run ended, once it is over (a report this kpo cannot read — written by another
    /// version — counts as none: the exit code still says how it ended).
    #[serde(default, deserialize_with = "lenient")]
    pub report: Option<JournaledEnd>,
    pub exit_code: Option<i32>,
    /// The values of the task file's parameters (secret ones too: the journal is the user's
    /// own, owner-only), so that `kpo attach` builds the same pod again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<crate::task::Param>,
}

/// How a journaled run ended: its report, or — when it ended before it could have one (a plugin
/// failed while its pod was prepared) — its exit code and why. Written as the report's JSON
/// (`--output json`), so that the journal's and the CLI's agree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JournaledEnd {
    Report(Box<RunReport>),
    Early(EarlyEnd),
}

/// A run that ended before it had a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyEnd {
    pub task: String,
    pub run_id: String,
    /// `error` (`unknown` when a report could not be read).
    pub outcome: String,
    pub exit_code: i32,
    pub message: String,
    pub pod: String,
}

/// Two ends are the same when they read the same.
impl PartialEq for JournaledEnd {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl JournaledEnd {
    /// The end of `journal`'s finished run, when its report cannot be read: its exit code.
    pub fn unreadable(journal: &Journal) -> Self {
        JournaledEnd::Early(EarlyEnd {
            task: journal.task.clone(),
            run_id: journal.run_id.clone(),
            outcome: "unknown".into(),
            exit_code: journal.exit_code.unwrap_or(crate::exit::FAILED),
            message: "finished earlier; its report cannot be read".into(),
            pod: journal.pod.clone().unwrap_or_default(),
        })
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            JournaledEnd::Report(r) => r.exit_code,
            JournaledEnd::Early(e) => e.exit_code,
        }
    }

    /// The outcome's name (`succeeded`, `error`).
    pub fn outcome(&self) -> &str {
        match self {
            JournaledEnd::Report(r) => r.outcome.name(),
            JournaledEnd::Early(e) => &e.outcome,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            JournaledEnd::Report(r) => &r.message,
            JournaledEnd::Early(e) => &e.message,
        }
    }

    /// The attempt it ended with (1 for a run that never had a pod).
    pub fn attempt(&self) -> u32 {
        match self {
            JournaledEnd::Report(r) => r.attempt,
            JournaledEnd::Early(_) => 1,
        }
    }

    /// Its last pod (empty when it had none).
    pub fn pod(&self) -> &str {
        match self {
            JournaledEnd::Report(r) => &r.pod,
            JournaledEnd::Early(e) => &e.pod,
        }
    }
}

/// Reads a journal's report, or none when it is not one this kpo can read.
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<JournaledEnd>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl Journal {
    /// The name its files go by (see [`stem`]).
    fn stem(&self) -> String {
        stem(self.cluster.as_deref(), &self.namespace, &self.run_id)
    }
}

/// The name of a run's files: its id and, for a run that knows its cluster, a short key of the
/// cluster and namespace — one run id against two clusters or namespaces is two runs, and two
/// journals. Journals written before that are named by the run id alone, and still read.
fn stem(cluster: Option<&str>, namespace: &str, run_id: &str) -> String {
    use sha2::{Digest, Sha256};
    match cluster {
        None => run_id.to_owned(),
        Some(cluster) => {
            let hash = Sha256::digest(format!("{cluster}\n{namespace}").as_bytes());
            let key: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("{run_id}.{key}")
        }
    }
}

/// The folder of journals (the CLI's: `$KPO_STATE_DIR/runs`, else `~/.local/state/kpo/runs`).
#[derive(Debug, Clone)]
pub struct JournalStore {
    dir: PathBuf,
}

impl JournalStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.json"))
    }

    fn cursors_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.cursors"))
    }

    /// The journal of run `run_id` in `namespace` of the cluster at `cluster` (its API server),
    /// if there is one, with the cursors appended since it was written. A journal of that run id
    /// in another namespace or cluster is another run's.
    pub fn load(&self, cluster: &str, namespace: &str, run_id: &str) -> std::io::Result<Option<Journal>> {
        if let Some(journal) = self.read(&stem(Some(cluster), namespace, run_id))? {
            return Ok(Some(journal));
        }
        let legacy = self.read(run_id)?;
        Ok(legacy.filter(|j| j.namespace == namespace && j.cluster.as_deref().is_none_or(|c| c == cluster)))
    }

    /// Every journal of run id `run_id`, in any namespace or cluster, oldest first.
    pub fn find(&self, run_id: &str) -> std::io::Result<Vec<Journal>> {
        let mut found = Vec::new();
        for listed in self.list()?.into_iter().filter(|j| j.run_id == run_id) {
            found.extend(self.read(&listed.stem())?);
        }
        Ok(found)
    }

    /// The journal in the files named `stem`, with the cursors appended since it was written.
    fn read(&self, stem: &str) -> std::io::Result<Option<Journal>> {
        let mut journal: Journal = match std::fs::read(self.path(stem)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let cursors = self.cursors_path(stem);
        let appended = match crate::private::open_no_follow(std::fs::OpenOptions::new().read(true), &cursors)
        {
            Ok(f) => std::io::BufReader::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(journal)),
            Err(e) => return Err(e),
        };
        for line in appended.split(b'\n') {
            let Ok(entry) = serde_json::from_slice::<CursorEntry>(&line?) else {
                continue;
            };
            if journal.uid.as_deref() != Some(entry.uid.as_str()) {
                continue;
            }
            let known = journal.cursors.entry(entry.container).or_default();
            if entry.cursor > *known {
                *known = entry.cursor;
            }
        }
        Ok(Some(journal))
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

    /// Writes the journal so that a crash leaves either the old or the new version, never half
    /// (owner-only: it holds the run's result).
    pub fn save(&self, journal: &Journal) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(journal).map_err(std::io::Error::other)?;
        crate::private::write_atomically(&self.path(&journal.stem()), &bytes)
    }

    /// Opens the run's cursor record for appending, emptied: the journal just written holds
    /// everything it said.
    fn restart_cursors(&self, stem: &str) -> std::io::Result<std::fs::File> {
        crate::private::create_dir(&self.dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = crate::private::open_no_follow(&mut options, &self.cursors_path(stem))?;
        file.set_len(0)?;
        Ok(file)
    }
}

/// One line of `<run>.cursors`: a container's log delivered up to `cursor`, for the pod `uid`.
#[derive(Serialize, Deserialize)]
struct CursorEntry {
    uid: String,
    container: String,
    cursor: Cursor,
}

/// An [`Observer`] that keeps the journal up to date, then passes everything on.
pub struct Recording {
    inner: Arc<dyn Observer>,
    store: JournalStore,
    journal: Mutex<Recorded>,
}

/// The journal as last written, the cursor record being appended to, and a buffer for its lines.
struct Recorded {
    journal: Journal,
    cursors: Option<std::fs::File>,
    line: Vec<u8>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Observer>, store: JournalStore, journal: Journal) -> Self {
        Self {
            inner,
            store,
            journal: Mutex::new(Recorded {
                journal,
                cursors: None,
                line: Vec::new(),
            }),
        }
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Journal)) {
        let mut recorded = self.recorded();
        f(&mut recorded.journal);
        let saved = self.store.save(&recorded.journal);
        let restarted = saved.and_then(|()| self.store.restart_cursors(&recorded.journal.stem()));
        match restarted {
            Ok(file) => recorded.cursors = Some(file),
            Err(e) => tracing::warn!("cannot write the run journal: {e}"),
        }
    }

    /// Records the final report: a later `kpo run --run-id` reports it instead of running again.
    pub fn finish(&self, report: &RunReport) {
        self.update(|j| {
            j.report = Some(JournaledEnd::Report(Box::new(report.clone())));
            j.exit_code = Some(report.exit_code);
        });
    }
}

impl Observer for Recording {
    fn status(&self, entry: &TimelineEntry) {
        self.inner.status(entry);
    }

    fn log_bytes(&self, container: &str, bytes: &[u8]) {
        self.inner.log_bytes(container, bytes);
    }

    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }

    fn retrying(&self, next: u32) {
        self.inner.retrying(next);
    }

    fn failed_before_the_pod(&self, exit_code: i32, message: &str) {
        self.update(|j| {
            j.report = Some(JournaledEnd::Early(EarlyEnd {
                task: j.task.clone(),
                run_id: j.run_id.clone(),
                outcome: "error".into(),
                exit_code,
                message: message.to_owned(),
                pod: String::new(),
            }));
            j.exit_code = Some(exit_code);
        });
        self.inner.failed_before_the_pod(exit_code, message);
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
        // After the bytes were printed: a kill in between repeats at most that one piece.
        let mut recorded = self.recorded();
        let Recorded {
            journal,
            cursors,
            line,
        } = &mut *recorded;
        match journal.cursors.get_mut(container) {
            Some(known) => known.clone_from(cursor),
            None => {
                journal.cursors.insert(container.to_owned(), cursor.clone());
            }
        }
        if let Some(file) = cursors {
            line.clear();
            let entry = CursorEntry {
                uid: journal.uid.clone().unwrap_or_default(),
                container: container.to_owned(),
                cursor: cursor.clone(),
            };
            let written = serde_json::to_writer(&mut *line, &entry)
                .map_err(std::io::Error::other)
                .and_then(|()| {
                    line.push(b'\n');
                    file.write_all(line)
                });
            if let Err(e) = written {
                tracing::warn!("cannot record how far the log was delivered: {e}");
                *cursors = None;
            }
        }
        drop(recorded);
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
        assert_eq!(store.load("https://c", "", "r1").unwrap(), None);
        let journal = Journal {
            run_id: "r1".into(),
            pod: Some("p".into()),
            ..Default::default()
        };
        store.save(&journal).unwrap();
        assert_eq!(store.load("https://c", "", "r1").unwrap(), Some(journal));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("runs")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }

    /// One run id against two namespaces, or two clusters, is two runs with two journals; a
    /// journal written before kpo recorded its cluster is still read, in its namespace only.
    #[test]
    fn a_run_is_its_cluster_namespace_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("runs"));
        let journal = |cluster: Option<&str>, namespace: &str, pod: &str| Journal {
            run_id: "nightly".into(),
            cluster: cluster.map(String::from),
            namespace: namespace.into(),
            pod: Some(pod.into()),
            ..Default::default()
        };
        let a = journal(Some("https://a"), "team-a", "pa");
        let b = journal(Some("https://a"), "team-b", "pb");
        let c = journal(Some("https://c"), "team-a", "pc");
        for j in [&a, &b, &c] {
            store.save(j).unwrap();
        }
        assert_eq!(store.load("https://a", "team-a", "nightly").unwrap(), Some(a));
        assert_eq!(store.load("https://a", "team-b", "nightly").unwrap(), Some(b));
        assert_eq!(store.load("https://c", "team-a", "nightly").unwrap(), Some(c));
        assert_eq!(store.load("https://c", "team-b", "nightly").unwrap(), None);
        assert_eq!(store.find("nightly").unwrap().len(), 3);
        let old = journal(None, "team-z", "pz");
        store.save(&old).unwrap();
        assert_eq!(store.load("https://a", "team-z", "nightly").unwrap(), Some(old));
        assert_eq!(store.load("https://a", "team-y", "nightly").unwrap(), None);
    }

    /// The report is typed; journals written before — a report of fewer fields, the end of a
    /// run whose plugin failed, a report of another shape — still read, and still say how the
    /// run ended.
    #[test]
    fn journaled_reports_of_every_age_are_read() {
        let with_report = |report: serde_json::Value| {
            let text = serde_json::json!({
                "run_id": "r", "task": "t", "task_file": null, "namespace": "ns", "pod": "p",
                "uid": "u", "cursors": {}, "report": report, "exit_code": 3,
            });
            serde_json::from_value::<Journal>(text).unwrap()
        };
        // A report from before incomplete logs, policies and warnings were reported.
        let older = with_report(serde_json::json!({
            "task": "t", "run_id": "r", "namespace": "ns", "pod": "p", "uid": "u",
            "outcome": "failed", "exit_code": 3, "message": "exit 3", "on_finish": "delete",
            "cleanup": "deleted", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:01Z", "result": null, "result_error": null,
            "attempt": 2, "decision": null, "disruption": null,
        }));
        let Some(JournaledEnd::Report(report)) = &older.report else {
            panic!("{:?}", older.report)
        };
        assert_eq!(
            (report.outcome, report.attempt),
            (crate::vocabulary::Outcome::Failed, 2)
        );
        let early = with_report(serde_json::json!({
            "task": "t", "run_id": "r", "outcome": "error", "exit_code": 76,
            "message": "plugin p failed", "pod": "",
        }));
        let end = early.report.unwrap();
        assert_eq!(
            (end.outcome(), end.exit_code(), end.message()),
            ("error", 76, "plugin p failed")
        );
        let foreign = with_report(serde_json::json!({"outcome": 7}));
        assert_eq!(foreign.report, None, "unreadable: none, the exit code stands");
        assert_eq!(JournaledEnd::unreadable(&foreign).exit_code(), 3);
    }

    /// Delivers `body` (timestamped records) through a cursor, checkpointing each piece.
    fn deliver(recording: &Recording, cursor: &mut Cursor, body: &[u8]) {
        let mut reader = cursor.reader();
        reader
            .feed(body, &mut |_: &[u8], at: &Cursor| {
                recording.log_checkpoint("base", at)
            })
            .unwrap();
    }

    /// A link planted where the run's cursor record goes is neither followed nor emptied: the
    /// file it points to keeps its content, and loading the journal does not read through it.
    #[cfg(unix)]
    #[test]
    fn a_cursors_link_is_not_followed() {
        struct Nothing;
        impl Observer for Nothing {}
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("runs"));
        crate::private::create_dir(&dir.path().join("runs")).unwrap();
        let precious = dir.path().join("precious");
        std::fs::write(&precious, b"keep me").unwrap();
        std::os::unix::fs::symlink(&precious, dir.path().join("runs/r3.cursors")).unwrap();
        let journal = Journal {
            run_id: "r3".into(),
            ..Default::default()
        };
        let recording = Recording::new(Arc::new(Nothing), store.clone(), journal);
        let mut pod = Pod::default();
        pod.metadata.uid = Some("u1".into());
        recording.created(&pod);
        deliver(&recording, &mut Cursor::default(), b"2026-01-01T00:00:01Z a\n");
        assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
        assert!(
            store.load("https://c", "", "r3").is_err(),
            "a journal whose cursors are a link is not read through it"
        );
    }

    /// The base container's cursor in run r2's journal as it loads.
    fn loaded_cursor(store: &JournalStore) -> Option<Cursor> {
        let journal = store.load("https://c", "", "r2").unwrap()?;
        journal.cursors.get("base").cloned()
    }

    #[test]
    fn cursors_are_appended_and_the_furthest_one_wins() {
        struct Nothing;
        impl Observer for Nothing {}
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(dir.path().join("runs"));
        let journal = Journal {
            run_id: "r2".into(),
            ..Default::default()
        };
        let recording = Recording::new(Arc::new(Nothing), store.clone(), journal);
        let mut pod = Pod::default();
        pod.metadata.uid = Some("u1".into());
        recording.created(&pod);
        let mut cursor = Cursor::default();
        deliver(
            &recording,
            &mut cursor,
            b"2026-01-01T00:00:01Z a\n2026-01-01T00:00:02Z b\n",
        );
        let journal_file = std::fs::read(dir.path().join("runs/r2.json")).unwrap();
        let loaded = store.load("https://c", "", "r2").unwrap().unwrap();
        assert_eq!(
            loaded.cursors.get("base"),
            Some(&cursor),
            "replayed from the appended lines"
        );
        assert_eq!(
            std::fs::read(dir.path().join("runs/r2.json")).unwrap(),
            journal_file,
            "the journal itself is not rewritten per piece"
        );
        // A torn last line (kpo killed mid-write) and a line of another pod are ignored.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("runs/r2.cursors"))
            .unwrap();
        f.write_all(b"{\"uid\":\"u0\",\"container\":\"base\",\"cursor\":{\"last\":\"2027-01-01T00:00:00Z\",\"at_last\":1}}\n{\"uid\":\"u1\",\"cont").unwrap();
        assert_eq!(loaded_cursor(&store), Some(cursor.clone()));
        // Rewriting the journal folds the cursors in and empties the record.
        recording.update(|_| {});
        assert_eq!(
            std::fs::metadata(dir.path().join("runs/r2.cursors"))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(loaded_cursor(&store), Some(cursor.clone()));
    }
}
