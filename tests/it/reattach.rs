//! A kpo killed for real (SIGKILL) and started again for the same run: it reattaches to the
//! run's pod by UID and continues the log with no repeats and no gaps; never to another pod that
//! took the name; a finished run is reported, not rerun.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::cli::sim_with_kubeconfig;

/// 40 numbered lines, 100 ms apart, on a real cluster (the command) or the simulated one (the
/// script).
fn long_task(image: &str) -> String {
    format!(
        r#"name = "long"
image = "{image}"
command = ["sh", "-c", "for i in $(seq 1 40); do echo line $i; sleep 0.1; done"]
[annotations]
"container.sim.kpo.dev/base" = '{{"log_count": 40, "log_interval_ms": 100}}'
"#
    )
}

fn kpo(config: &str, state: &std::path::Path, task: &std::path::Path, extra: &[&str]) -> Command {
    kpo_run(config, "reattach-1", state, task, extra)
}

fn kpo_run(config: &str, run_id: &str, state: &Path, task: &Path, extra: &[&str]) -> Command {
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

/// Starts kpo and kills it with SIGKILL once it has printed `lines` log lines and journaled
/// them (`state`, `run_id`).
pub fn start_and_kill(mut cmd: Command, lines: usize, state: &Path, run_id: &str) -> Vec<String> {
    let mut child: Child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut before_last = std::time::SystemTime::now();
    while seen.len() < lines {
        before_last = std::time::SystemTime::now();
        seen.push(stdout.next().expect("kpo printed fewer lines").unwrap());
    }
    // Killed between two lines (100 ms apart), once the journal has the last one printed: kpo
    // journals right after printing, so a write at or after `before_last` is that line's.
    crate::harness::wait_until_blocking("the journal to record the printed lines", || {
        crate::harness::journaled_since(state, run_id, before_last)
    });
    child.kill().unwrap();
    child.wait().unwrap();
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
    let out = kpo(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("reattaching to run {run_id}")),
        "{stderr}"
    );
    let second: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
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
