//! A kpo killed for real (SIGKILL) and started again for the same run: it reattaches to the
//! run's pod by UID and continues the log with no repeats and no gaps; never to another pod that
//! took the name; a finished run is reported, not rerun.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::cli::sim_with_kubeconfig;

/// 40 numbered lines, 100 ms apart, on a real cluster (the command) or the simulated one (the
/// script).
fn long_task(image: &str) -> String {
    forty_lines_then(image, "", "")
}

/// [`long_task`], then `shell` more of the real container's command and `script` more fields of
/// the simulated one's script.
fn forty_lines_then(image: &str, shell: &str, script: &str) -> String {
    format!(
        r#"name = "long"
image = "{image}"
command = ["sh", "-c", "for i in $(seq 1 40); do echo line $i; sleep 0.1; done{shell}"]
[annotations]
"container.sim.kpo.dev/base" = '{{"log_count": 40, "log_interval_ms": 100{script}}}'
"#
    )
}

fn kpo(config: &str, state: &std::path::Path, task: &std::path::Path, extra: &[&str]) -> Command {
    kpo_run(config, "reattach-1", state, task, extra)
}

/// `kpo run --run-id RUN_ID TASK` on the cluster `config` names, with its own state folder,
/// stdout and stderr piped.
pub fn kpo_run(config: &str, run_id: &str, state: &Path, task: &Path, extra: &[&str]) -> Command {
    let mut cmd = crate::harness::kpo_command();
    cmd.args(["run", "--kubeconfig", config, "--run-id", run_id])
        .args(extra)
        .arg(task)
        .env("KPO_STATE_DIR", state)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts kpo with state folder `state` for run `run_id`, kills it with SIGKILL once it has
/// printed `lines` log lines, and returns every line it printed (what it wrote before the kill is
/// still in the pipe).
///
/// kpo prints each piece of log, then journals it: the kill waits, after each line, for the
/// journal to record a piece it had not recorded yet — so it falls between pieces, with all
/// that was printed journaled, and a reattach must continue exactly where this kpo stopped.
pub fn start_and_kill(mut cmd: Command, lines: usize, state: &Path, run_id: &str) -> Vec<String> {
    let journaled = || {
        crate::harness::journal_file(state, run_id, "cursors")
            .and_then(|path| std::fs::read(path).ok())
            .map_or(0, |t| t.iter().filter(|b| **b == b'\n').count())
    };
    let mut child: Child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut confirmed = journaled();
    while seen.len() < lines {
        seen.push(stdout.next().expect("kpo printed fewer lines").unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        confirmed = rt.block_on(crate::harness::wait_for(
            "the journal to record the printed line",
            || {
                let now = journaled();
                async move { (now > confirmed).then_some(now) }
            },
        ));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    seen.extend(stdout.map_while(Result::ok));
    seen
}

#[test]
fn a_killed_kpo_reattaches_by_uid_and_continues_the_log() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    killed_and_started_again_on(&config, "busybox", "reattach-1", dir.path());
}

/// kpo killed with SIGKILL after 10 of 40 lines and started again for the same run, on the
/// cluster `config` names: every line exactly once across the kill; then the finished run is
/// reported, not rerun, unless `--rerun`.
pub fn killed_and_started_again_on(config: &str, image: &str, run_id: &str, dir: &Path) {
    let task = dir.join("long.toml");
    std::fs::write(&task, long_task(image)).unwrap();
    let state = dir.join("state");
    let kpo = |extra: &[&str]| kpo_run(config, run_id, &state, &task, extra);

    let first = start_and_kill(kpo(&[]), 10, &state, run_id);
    let second = reattached(&kpo(&[]).output().unwrap(), run_id);
    let all: Vec<String> = first.into_iter().chain(second).collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    assert_eq!(all, expected, "every line exactly once across the kill");

    // Finished: reported, not run again — unless asked.
    let out = kpo(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already finished"));
    assert!(out.stdout.is_empty(), "a finished run was run again");
    let out = kpo(&["--rerun"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 40);
}

#[test]
fn it_never_attaches_to_another_pod_with_the_same_name() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let task = dir.path().join("long.toml");
    std::fs::write(&task, long_task("busybox")).unwrap();
    let state = dir.path().join("state");
    start_and_kill(kpo(&config, &state, &task, &[]), 3, &state, "reattach-1");

    // Someone deletes the run's pod and creates another one under its name.
    let api: Api<Pod> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let impostor_uid = rt.block_on(async {
        let original = api.list(&Default::default()).await.unwrap().items.remove(0);
        let name = original.metadata.name.clone().unwrap();
        api.delete(&name, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
        let impostor: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": original.metadata.labels},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]}
        }))
        .unwrap();
        let created = api.create(&PostParams::default(), &impostor).await.unwrap();
        assert_ne!(created.metadata.uid, original.metadata.uid);
        created.metadata.uid
    });
    let out = kpo(&config, &state, &task, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::FAILED), "{stderr}");
    assert!(
        stderr.contains("is not the pod of run reattach-1 (its UID differs)"),
        "{stderr}"
    );
    let pods = rt.block_on(async { api.list(&Default::default()).await.unwrap().items });
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].metadata.uid, impostor_uid, "kpo touched the other pod");
}

#[test]
fn a_failing_run_reattached_keeps_its_exit_code() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    let task = dir.path().join("failing.toml");
    std::fs::write(
        &task,
        "name = \"failing\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"log_count\": 20, \"log_interval_ms\": 100, \"exit_code\": 3}'\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let first = start_and_kill(kpo(&config, &state, &task, &[]), 5, &state, "reattach-1");
    let out = kpo(&config, &state, &task, &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(all, (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>());
}

/// What a kpo that reattached to `run_id` printed, once it is checked that it did reattach and
/// succeeded.
fn reattached(out: &std::process::Output, run_id: &str) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("reattaching to run {run_id}")),
        "{stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The run's pod UID as the journal in `state` recorded it.
fn journaled_uid(state: &Path, run_id: &str) -> Option<String> {
    let text = std::fs::read_to_string(crate::harness::journal_file(state, run_id, "json")?).ok()?;
    let journal: serde_json::Value = serde_json::from_str(&text).ok()?;
    journal["uid"].as_str().map(String::from)
}

#[test]
fn rerun_finished_follows_a_killed_run_and_runs_an_ended_one_anew() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    rerun_finished_on(
        &config,
        "busybox",
        "rerun-finished-1",
        dir.path(),
        &Release::Annotation,
    );
}

/// The annotation a [`held_task`]'s simulated container waits for.
const RELEASED: &str = "test.kpo.dev/released";

/// [`long_task`]'s 40 lines, after which the container holds until the test lets it end (see
/// [`Release`]): so a scenario knows its pod still runs, however loaded the machine.
fn held_task(image: &str) -> String {
    let script = format!(r#", "until_annotated": "{RELEASED}""#);
    forty_lines_then(image, "; until [ -e /tmp/released ]; do sleep 0.1; done", &script)
}

/// How a test lets a [`held_task`]'s pod end.
pub enum Release {
    /// The simulated container's script waits for an annotation on its pod.
    Annotation,
    /// The real container for a file, made with `kubectl exec` (pods/exec, which kpo's own role
    /// lacks: hence the admin kubeconfig).
    Exec { kubectl: PathBuf, admin: String },
}

impl Release {
    /// Lets the run's running pods end.
    fn release(&self, config: &str, run_id: &str) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(crate::harness::e2e_client(config));
        let ns = client.default_namespace().to_owned();
        let pods = rt.block_on(crate::harness::pods_of_run(&client, &ns, run_id));
        let running: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        assert!(!running.is_empty(), "no running pod of run {run_id} to release");
        for pod in running {
            let name = pod.metadata.name.as_deref().unwrap();
            match self {
                Release::Annotation => {
                    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                    let patch = serde_json::json!({"metadata": {"annotations": {RELEASED: "yes"}}});
                    rt.block_on(api.patch(name, &PatchParams::default(), &Patch::Merge(patch)))
                        .unwrap();
                }
                Release::Exec { kubectl, admin } => {
                    let out = Command::new(kubectl)
                        .args(["--kubeconfig", admin, "exec", "-n", &ns, name, "-c", "base"])
                        .args(["--", "touch", "/tmp/released"])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                }
            }
        }
    }
}

/// Runs `cmd` until it has printed the [`held_task`] pod's 40 lines (on stderr, else stdout),
/// lets the pod end, and returns all kpo printed.
fn until_printed_then_released(mut cmd: Command, on_stderr: bool, release: impl FnOnce()) -> Output {
    let mut child = cmd.spawn().unwrap();
    let pipe: Box<dyn Read> = if on_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut reader = BufReader::new(pipe);
    let mut seen = Vec::new();
    while String::from_utf8_lossy(&seen).matches("line ").count() < 40 {
        let read = reader.read_until(b'\n', &mut seen).unwrap();
        assert!(
            read > 0,
            "kpo ended before the pod's 40 lines: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    release();
    reader.read_to_end(&mut seen).unwrap();
    let mut out = child.wait_with_output().unwrap();
    *(if on_stderr {
        &mut out.stderr
    } else {
        &mut out.stdout
    }) = seen;
    out
}

/// `--rerun-finished`, as a scheduler's next tries use it: kpo SIGKILLed mid-run (state A), the
/// next try on another machine (state B) follows that very pod (same UID) to its end; the try
/// after that, the run having ended, starts attempt 2 in a new pod instead of reporting it.
pub fn rerun_finished_on(config: &str, image: &str, run_id: &str, dir: &Path, release: &Release) {
    let task = dir.join("long.toml");
    std::fs::write(&task, held_task(image)).unwrap();
    let kpo_in = |state: &str, extra: &[&str]| {
        let extra = [&["--rerun-finished"], extra].concat();
        kpo_run(config, run_id, &dir.join(state), &task, &extra)
    };
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();

    // Another machine follows: how far the first kpo's journal got does not matter here.
    let mut first = kpo_in("a", &[]).spawn().unwrap();
    let stdout = BufReader::new(first.stdout.take().unwrap());
    assert_eq!(stdout.lines().take(10).count(), 10, "kpo printed fewer lines");
    first.kill().unwrap();
    first.wait().unwrap();
    let first = journaled_uid(&dir.join("a"), run_id).expect("the pod's UID journaled");
    let out = until_printed_then_released(kpo_in("b", &[]), false, || release.release(config, run_id));
    let printed = reattached(&out, run_id);
    assert_eq!(printed, expected, "the whole log, from the run's own pod");
    assert_eq!(journaled_uid(&dir.join("b"), run_id).as_ref(), Some(&first));

    let rerun = kpo_in("b", &["--output", "json"]);
    let out = until_printed_then_released(rerun, true, || release.release(config, run_id));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("already finished"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["attempt"], 2, "{report}");
    assert_ne!(report["uid"].as_str(), Some(first.as_str()), "a new pod");
    assert_eq!(stderr.matches("line ").count(), 40, "{stderr}");
    assert!(stderr.contains("attempt 2: pod"), "{stderr}");
}

/// kpo SIGKILLed on one machine (state folder A) and started on another (an empty state folder
/// B) with the same run id: B finds the run's pod in the cluster by its run-id label, follows
/// that very pod (same UID: no second pod), prints its whole log (B cannot know how far A got:
/// never less than what A did not deliver) and exits with the pod's code. Then a run whose pod
/// finished while no kpo ran (state C killed, state D started after the end): reported from the
/// pod, not rerun.
pub fn killed_and_started_elsewhere_on(config: &str, image: &str, run_id: &str, dir: &Path) {
    let task = dir.join("long.toml");
    std::fs::write(&task, long_task(image)).unwrap();
    let kpo_in = |state: &str, id: &str| kpo_run(config, id, &dir.join(state), &task, &[]);
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();

    start_and_kill(kpo_in("a", run_id), 10, &dir.join("a"), run_id);
    let printed = reattached(&kpo_in("b", run_id).output().unwrap(), run_id);
    assert_eq!(printed, expected, "the whole log, from the run's own pod");
    let first = journaled_uid(&dir.join("a"), run_id);
    assert!(first.is_some());
    assert_eq!(
        journaled_uid(&dir.join("b"), run_id),
        first,
        "a second pod was created"
    );

    let finished = format!("{run_id}-f");
    start_and_kill(kpo_in("c", &finished), 5, &dir.join("c"), &finished);
    let uid = journaled_uid(&dir.join("c"), &finished).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let api: Api<Pod> = Api::default_namespaced(crate::harness::e2e_client(config).await);
        crate::harness::wait_until("the unsupervised pod to finish", || async {
            let pods = api
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            pods.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(&uid)
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
            })
        })
        .await;
    });
    let out = kpo_in("d", &finished).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        printed, expected,
        "the finished pod's log, reported, not a new run"
    );
    assert_eq!(
        journaled_uid(&dir.join("d"), &finished).as_deref(),
        Some(uid.as_str())
    );
}

#[test]
fn a_kpo_on_another_machine_finds_the_run_in_the_cluster() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    killed_and_started_elsewhere_on(&config, "busybox", "elsewhere-1", dir.path());
}

/// One run id in two namespaces, then against a second cluster, from one machine: three runs,
/// three pods — never "reported as finished" from another run's journal.
#[test]
fn one_run_id_in_two_namespaces_or_clusters_is_two_runs() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let state = dir.path().join("state");
    let task = crate::outages::task_file(
        dir.path(),
        "shared.toml",
        "name = \"shared\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"ran\"]}'\n",
    );
    rt.block_on(async {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sim.client());
        let other = serde_json::from_value(serde_json::json!({"metadata": {"name": "other"}})).unwrap();
        namespaces.create(&Default::default(), &other).await.unwrap();
    });
    for ns in ["default", "other"] {
        let out = kpo_run(&config, "shared", &state, &task, &["--namespace", ns])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n", "in {ns}: {said}");
    }
    assert_eq!(sim.record().created_per_run.get("shared"), Some(&2));
    let (_rt2, second, dir2, config2) = crate::cli::sim_with_kubeconfig();
    let out = kpo_run(&config2, "shared", &state, &task, &[]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ran\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(second.record().created_per_run.get("shared"), Some(&1));
    // And the first run, asked again where it ran, is reported from its own journal.
    let out = kpo_run(&config, "shared", &state, &task, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sim.record().created_per_run.get("shared"), Some(&2), "rerun");
    drop(dir2);
}
