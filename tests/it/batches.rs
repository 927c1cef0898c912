//! Batch runs through the `kpo` binary: many tasks in one process, with mixed outcomes, a cap on
//! live pods, one watch, interrupts and a SIGKILL in the middle.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::cli::sim_with_kubeconfig;

/// What each task of a mixed batch does, by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Succeeds,
    Fails,
    FailsTwice,
    NoImage,
    Unschedulable,
}

impl Kind {
    pub fn of(i: usize) -> Self {
        [
            Kind::Succeeds,
            Kind::Fails,
            Kind::FailsTwice,
            Kind::NoImage,
            Kind::Unschedulable,
        ][i % 5]
    }

    /// The task's exit code and attempts.
    pub fn expected(self) -> (i64, u64) {
        match self {
            Kind::Succeeds => (0, 1),
            Kind::Fails => (3, 1),
            Kind::FailsTwice => (4, 2),
            Kind::NoImage | Kind::Unschedulable => (125, 1),
        }
    }

    /// The lines its main container prints, per attempt.
    pub fn lines(self, task: &str) -> Vec<String> {
        match self {
            Kind::Succeeds | Kind::Fails | Kind::FailsTwice => {
                (1..=5).map(|n| format!("{task} says {n}")).collect()
            }
            Kind::NoImage | Kind::Unschedulable => Vec::new(),
        }
    }
}

/// A task file for task `i` of a mixed batch: the same behaviour from its shell command on a real
/// cluster and from its script on the simulated one.
pub fn mixed_task(i: usize, image: &str) -> String {
    let name = format!("task-{i:03}");
    let kind = Kind::of(i);
    let lines = kind.lines(&name);
    let logs = serde_json::to_string(&lines).unwrap();
    let echo: String = lines.iter().map(|l| format!("echo '{l}'; ")).collect();
    let (code, extra) = match kind {
        Kind::Succeeds => (0, String::new()),
        Kind::Fails => (3, String::new()),
        Kind::FailsTwice => (4, "[retry]\nuser = 1\nbackoff = \"100ms\"\n".to_owned()),
        Kind::NoImage => (0, String::new()),
        Kind::Unschedulable => (
            0,
            "node_selector = { \"kpo.dev/test-node\" = \"none\" }\n".to_owned(),
        ),
    };
    let image = match kind {
        Kind::NoImage => "busybox:does-not-exist".to_owned(),
        _ => image.to_owned(),
    };
    let pull = if kind == Kind::NoImage {
        r#", "pull": "not-found""#
    } else {
        ""
    };
    // Top-level keys first: the node selector belongs to the task, not to a table.
    let (top, tables) = match kind {
        Kind::Unschedulable => (extra, String::new()),
        _ => (String::new(), extra),
    };
    // A busy node may take a while to start fifty pods; no node takes an unschedulable one,
    // and the scheduler says so at once.
    let startup = if kind == Kind::Unschedulable { "3s" } else { "120s" };
    format!(
        "name = \"{name}\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"{echo}exit {code}\"]\n{top}\
         [run]\nstartup_timeout = \"{startup}\"\n{tables}\
         [annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": {logs}, \"log_interval_ms\": 10, \"exit_code\": {code}{pull}}}'\n"
    )
}

/// Writes `count` mixed tasks into `dir/tasks`; the folder.
pub fn mixed_batch(dir: &Path, count: usize, image: &str) -> PathBuf {
    let tasks = dir.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    for i in 0..count {
        std::fs::write(tasks.join(format!("task-{i:03}.toml")), mixed_task(i, image)).unwrap();
    }
    tasks
}

/// `kpo run --output json` of a batch on the cluster `config` names.
pub fn kpo_batch(config: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = crate::harness::kpo_command();
    cmd.args(["run", "--kubeconfig", config, "--output", "json"])
        .args(args)
        .env("KPO_STATE_DIR", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The JSON Lines a batch printed: its runs' reports by task, and its summary.
pub fn json_lines(stdout: &[u8]) -> (BTreeMap<String, serde_json::Value>, serde_json::Value) {
    let mut runs = BTreeMap::new();
    let mut summary = None;
    for line in String::from_utf8_lossy(stdout).lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match doc["kind"].as_str() {
            Some("run") => {
                let task = doc["task"].as_str().unwrap().to_owned();
                assert!(runs.insert(task, doc).is_none(), "a task reported twice");
            }
            Some("batch") => summary = Some(doc),
            other => panic!("a line of kind {other:?}: {line}"),
        }
    }
    (runs, summary.expect("a summary line"))
}

/// Each task's log lines from a batch's prefixed output (`[task] line`).
pub fn logs_by_task(output: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(output).lines() {
        if let Some(rest) = line.strip_prefix('[')
            && let Some((task, text)) = rest.split_once("] ")
        {
            logs.entry(task.to_owned()).or_default().push(text.to_owned());
        }
    }
    logs
}

/// Checks every task of a mixed batch of `count`: outcome, exit code, attempts, every log line
/// once; and the summary's counts and the batch's exit code.
pub fn check_mixed(out: &std::process::Output, count: usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::BATCH_FAILED), "{stderr}");
    let (runs, summary) = json_lines(&out.stdout);
    assert_eq!(runs.len(), count, "{stderr}");
    let logs = logs_by_task(&out.stderr);
    for i in 0..count {
        let name = format!("task-{i:03}");
        let kind = Kind::of(i);
        let run = &runs[&name];
        let (code, attempts) = kind.expected();
        assert_eq!(run["exit_code"].as_i64(), Some(code), "{name} ({kind:?}): {run}");
        assert_eq!(run["attempt"].as_u64(), Some(attempts), "{name} ({kind:?})");
        let mut expected = Vec::new();
        for _ in 0..attempts {
            expected.extend(kind.lines(&name));
        }
        let printed = logs.get(&name).cloned().unwrap_or_default();
        assert_eq!(printed, expected, "{name} ({kind:?}): every line once");
    }
    let succeeded = (0..count).filter(|i| Kind::of(*i) == Kind::Succeeds).count();
    assert_eq!(summary["counts"]["succeeded"].as_u64(), Some(succeeded as u64));
    assert_eq!(
        summary["counts"]["failed"].as_u64(),
        Some((count - succeeded) as u64)
    );
    assert_eq!(summary["exit_code"], kpo::exit::BATCH_FAILED);
}

/// Pods still listed in the simulated cluster's default namespace.
fn pods_left(rt: &tokio::runtime::Runtime, sim: &kpo::sim::SimCluster) -> Vec<Pod> {
    rt.block_on(pods_in(sim))
}

async fn pods_in(sim: &kpo::sim::SimCluster) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(sim.client());
    api.list(&Default::default()).await.unwrap().items
}

/// A batch of `count` mixed tasks on the cluster `config` names, `parallel` at a time: every
/// task ends as it should, every line once.
pub fn mixed_batch_on(config: &str, image: &str, count: usize, parallel: usize, batch_id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tasks = mixed_batch(dir.path(), count, image);
    let parallel = parallel.to_string();
    let args = ["--parallel", &parallel, "--run-id", batch_id];
    let out = kpo_batch(config, &dir.path().join("state"), &args)
        .arg(&tasks)
        .output()
        .unwrap();
    check_mixed(&out, count);
}

#[test]
fn two_hundred_mixed_tasks_each_end_right_within_the_parallel_cap() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let tasks = mixed_batch(dir.path(), 200, "busybox:1.36");
    let out = kpo_batch(&config, &dir.path().join("state"), &["--parallel", "40"])
        .arg(&tasks)
        .output()
        .unwrap();
    check_mixed(&out, 200);
    let record = sim.record();
    assert!(
        record.peak_pods <= 40,
        "{} pods at once with --parallel 40",
        record.peak_pods
    );
    assert!(record.peak_pods > 1, "the tasks ran one by one");
    assert_eq!(record.pod_watches, 1, "one watch for the whole batch");
    assert!(pods_left(&rt, &sim).is_empty());
}

#[test]
fn a_single_task_file_runs_as_it_always_did() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    let tasks = mixed_batch(dir.path(), 2, "busybox:1.36");
    let out = kpo_batch(&config, &dir.path().join("state"), &[])
        .arg(tasks.join("task-001.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["task"], "task-001");
    assert!(report.get("kind").is_none(), "a single run is no batch");
}

#[test]
fn task_names_must_differ_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "name = \"same\"\nimage = \"busybox\"\n").unwrap();
    std::fs::write(&b, "# the second\n\nname = \"same\"\nimage = \"busybox\"\n").unwrap();
    let out = crate::harness::kpo_command()
        .args(["run", "--sim"])
        .args([&a, &b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:3:1: name: task name \"same\" is already used by {}",
            b.display(),
            a.display()
        )),
        "{stderr}"
    );
}

/// Tasks that print `lines` numbered lines, 20 ms apart, then run quietly until `duration_ms`:
/// on the simulated cluster by their script, on a real one by their command.
fn slow_tasks(dir: &Path, count: usize, lines: usize, duration_ms: u64, image: &str) -> PathBuf {
    let tasks = dir.join("slow");
    std::fs::create_dir_all(&tasks).unwrap();
    let seconds = duration_ms / 1000;
    for i in 0..count {
        std::fs::write(
            tasks.join(format!("slow-{i}.toml")),
            format!(
                "name = \"slow-{i}\"\nimage = \"{image}\"\ntermination_grace_period = 2\n\
                 command = [\"sh\", \"-c\", \"i=1; while [ $i -le {lines} ]; do echo line $i; i=$((i+1)); sleep 0.02; done; sleep {seconds}\"]\n\
                 [annotations]\n\"container.sim.kpo.dev/base\" = '{{\"log_count\": {lines}, \"log_interval_ms\": 20, \"duration_ms\": {duration_ms}}}'\n"
            ),
        )
        .unwrap();
    }
    tasks
}

/// Ctrl-C in a batch of ten long tasks, four at a time, on the cluster `config` names: the four
/// running tasks are interrupted, the six others never start, and no pod of the batch is left.
/// The JSON Lines it printed.
pub fn ctrl_c_stops_a_batch_on(
    config: &str,
    image: &str,
) -> (BTreeMap<String, serde_json::Value>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let tasks = slow_tasks(dir.path(), 10, 1, 60_000, image);
    let state = dir.path().join("state");
    let batch_id = format!("interrupted-{}", kpo::names::random_suffix(5));
    let child = kpo_batch(config, &state, &["--parallel", "4", "--run-id", &batch_id])
        .arg(&tasks)
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(crate::harness::e2e_client(config));
    let api: Api<Pod> = Api::default_namespaced(client);
    let batch = ListParams::default().labels(&format!("kpo.dev/batch={batch_id}"));
    rt.block_on(crate::harness::wait_until("4 pods running", || async {
        let pods = api.list(&batch).await.map(|l| l.items).unwrap_or_default();
        pods.iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count()
            == 4
    }));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::INTERRUPTED), "{stderr}");
    let left = rt.block_on(api.list(&batch)).unwrap().items;
    assert!(left.is_empty(), "pods left after kpo returned: {stderr}");
    let (runs, summary) = json_lines(&out.stdout);
    let outcomes: Vec<&str> = runs.values().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "interrupted").count(),
        4,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "not_started").count(),
        6,
        "{outcomes:?}"
    );
    assert_eq!(summary["counts"]["not_started"], 6);
    (runs, summary)
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_every_pod_of_the_batch_and_starts_no_more() {
    let (_rt, sim, _dir, config) = sim_with_kubeconfig();
    ctrl_c_stops_a_batch_on(&config, "busybox");
    let record = sim.record();
    assert_eq!(
        record.created_per_run.len(),
        4,
        "a task started after the interrupt"
    );
    // The sweep deletes the pods the batch recorded, by UID: a label-selected delete would take
    // any pod that only carries the batch's label with it.
    assert_eq!(record.collection_deletes, 0, "a label-selected delete");
}

#[cfg(unix)]
#[test]
fn a_batch_killed_and_started_again_runs_no_task_twice_and_repeats_no_line() {
    let (_rt, sim, dir, config) = sim_with_kubeconfig();
    let tasks = slow_tasks(dir.path(), 6, 10, 3_000, "busybox");
    let state = dir.path().join("state");
    let batch = |state: &Path| {
        let mut cmd = crate::harness::kpo_command();
        cmd.args([
            "run",
            "--kubeconfig",
            &config,
            "--run-id",
            "nightly",
            "--parallel",
            "3",
        ])
        .arg(&tasks)
        .env("KPO_STATE_DIR", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        cmd
    };
    let mut child = batch(&state).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first: Vec<String> = Vec::new();
    // Three tasks print their ten lines, then run quietly: kill kpo once all of that is
    // journalled, so the kill falls between pieces (see `reattach::start_and_kill`).
    while logs_by_task(first.join("\n").as_bytes())
        .values()
        .filter(|l| l.len() == 10)
        .count()
        < 3
    {
        first.push(stdout.next().expect("kpo printed fewer lines").unwrap());
    }
    let journalled = |task: &str| {
        crate::harness::journal_file(&state, &format!("nightly-{task}"), "cursors")
            .and_then(|path| std::fs::read(path).ok())
            .map_or(0, |t| t.iter().filter(|b| **b == b'\n').count())
    };
    let started: Vec<String> = logs_by_task(first.join("\n").as_bytes()).into_keys().collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(crate::harness::wait_until("the printed lines journalled", || {
        let all = started.iter().all(|t| journalled(t) >= 10);
        async move { all }
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    first.extend(stdout.map_while(Result::ok));

    let out = batch(&state).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let second = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{}\n{second}", first.join("\n"));
    let logs = logs_by_task(all.as_bytes());
    for i in 0..6 {
        let expected: Vec<String> = (1..=10).map(|n| format!("line {n}")).collect();
        assert_eq!(
            logs.get(&format!("slow-{i}")),
            Some(&expected),
            "slow-{i}: every line once"
        );
    }
    let record = sim.record();
    assert_eq!(record.created_per_run.len(), 6);
    assert!(
        record.created_per_run.values().all(|n| *n == 1),
        "a task ran twice: {:?}",
        record.created_per_run
    );
}

#[test]
fn list_logs_and_delete_know_a_batch_and_its_tasks() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let tasks = dir.path().join("kept");
    std::fs::create_dir_all(&tasks).unwrap();
    for name in ["first", "second"] {
        std::fs::write(
            tasks.join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nimage = \"busybox\"\n[run]\non_finish = \"keep\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"{name} was here\"]}}'\n"
            ),
        )
        .unwrap();
    }
    let state = dir.path().join("state");
    let kpo = |args: &[&str]| {
        crate::harness::kpo_command()
            .args(args)
            .args(["--kubeconfig", &config])
            .env("KPO_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    let ran = kpo(&["run", "--run-id", "kept", tasks.to_str().unwrap()]);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );

    let list = crate::harness::kpo_command()
        .arg("list")
        .env("KPO_STATE_DIR", &state)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    for run in ["kept-first", "kept-second"] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(run) && l.split_whitespace().nth(1) == Some("kept")),
            "{listed}"
        );
    }
    let logs = kpo(&["logs", "kept"]);
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "first was here\nsecond was here\n"
    );
    assert_eq!(pods_left(&rt, &sim).len(), 2);
    let deleted = kpo(&["delete", "kept"]);
    assert_eq!(
        deleted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    rt.block_on(crate::harness::wait_until("the batch's pods gone", || async {
        pods_in(&sim).await.is_empty()
    }));
    // Its members' pods already gone: nothing left to delete, and no error for it.
    let again = kpo(&["delete", "kept"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[cfg(unix)]
#[test]
fn detach_leaves_every_running_pod_of_the_batch() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let tasks = slow_tasks(dir.path(), 3, 1, 60_000, "busybox");
    let child = kpo_batch(&config, &dir.path().join("state"), &["--on-signal", "detach"])
        .arg(&tasks)
        .spawn()
        .unwrap();
    rt.block_on(crate::harness::wait_until("3 pods running", || async {
        pods_in(&sim)
            .await
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count()
            == 3
    }));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(kpo::exit::INTERRUPTED));
    let (runs, _) = json_lines(&out.stdout);
    assert!(runs.values().all(|r| r["cleanup"] == "detached"), "{runs:?}");
    assert_eq!(pods_left(&rt, &sim).len(), 3, "a detached pod was deleted");
    assert_eq!(sim.record().collection_deletes, 0);
}

/// A task waiting to retry gives its slot back: with `--parallel 1`, a quick task runs and ends
/// during the other's backoff instead of after its last attempt; the cap on pods still holds.
#[test]
fn a_task_waiting_to_retry_gives_its_slot_to_another() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    std::fs::write(
        tasks.join("a.toml"),
        "name = \"flaky\"\nimage = \"busybox:1.36\"\n[retry]\nuser = 1\nbackoff = \"4s\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"exit_code\": 1}'\n",
    )
    .unwrap();
    std::fs::write(
        tasks.join("b.toml"),
        "name = \"quick\"\nimage = \"busybox:1.36\"\n",
    )
    .unwrap();
    let out = kpo_batch(&config, &dir.path().join("state"), &["--parallel", "1"])
        .arg(&tasks)
        .output()
        .unwrap();
    let (runs, _) = json_lines(&out.stdout);
    let time =
        |task: &str, field: &str| -> jiff::Timestamp { runs[task][field].as_str().unwrap().parse().unwrap() };
    assert_eq!(
        runs["flaky"]["attempts"].as_array().unwrap().len(),
        2,
        "{:#}",
        runs["flaky"]
    );
    assert!(
        time("quick", "finished_at") < time("flaky", "finished_at"),
        "the quick task waited for the retrying one to end: {} vs {}",
        time("quick", "finished_at"),
        time("flaky", "finished_at")
    );
    assert!(
        sim.record().peak_pods <= 1,
        "{} pods at once with --parallel 1",
        sim.record().peak_pods
    );
    assert!(pods_left(&rt, &sim).is_empty());
}
