//! A run rides out the control plane going away: the API server or etcd down for twice the
//! claim's term mid-run, while the pod is being deleted, during a retry's backoff, under a batch
//! — each run ends as it would have without the outage. And a kpo cut off alone (a partition)
//! while another takes the run over stops acting. Each `…_on` is shared: the sim's tests here,
//! the real cluster's in `e2e.rs` (its `restart.sh` stops the process).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::reattach::kpo_run as kpo;

/// Runs `cmd` (kpo, its output piped) and stages `outage` once a line kpo prints on stderr
/// satisfies `when`; the output once kpo has exited.
fn outage_when(mut cmd: Command, when: impl Fn(&str) -> bool + Sync, outage: &dyn Fn()) -> Output {
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (seen, heard) = std::sync::mpsc::channel();
    let (status, stdout, stderr, staged) = std::thread::scope(|s| {
        let reading = s.spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).unwrap();
            out
        });
        let when = &when;
        let said = s.spawn(move || {
            let mut said = Vec::new();
            for line in BufReader::new(stderr).split(b'\n') {
                let line = line.unwrap();
                if when(&String::from_utf8_lossy(&line)) {
                    let _ = seen.send(());
                }
                said.extend_from_slice(&line);
                said.push(b'\n');
            }
            said
        });
        let staged = heard.recv().is_ok();
        if staged {
            outage();
        }
        let status = child.wait().unwrap();
        (status, reading.join().unwrap(), said.join().unwrap(), staged)
    });
    assert!(
        staged,
        "kpo never got to the outage: {}",
        String::from_utf8_lossy(&stderr)
    );
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Pods of run or batch `selector`, and the Lease of `run_id`, as `admin` sees them: none may be
/// left.
fn assert_nothing_left(admin: &str, selector: &str, run_id: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = crate::harness::e2e_client(admin).await;
        let (api, leases): (Api<Pod>, Api<Lease>) = (
            Api::default_namespaced(client.clone()),
            Api::default_namespaced(client),
        );
        let left = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items;
        let names: Vec<_> = left.iter().map(|p| p.metadata.name.clone()).collect();
        assert!(names.is_empty(), "pods left behind: {names:?}");
        let lease = leases.get_opt(&kpo::claim::lease_name(run_id)).await.unwrap();
        assert!(lease.is_none(), "the claim was not released");
    });
}

/// Writes task file `name` in `dir`.
pub fn task_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let task = dir.join(name);
    std::fs::write(&task, text).unwrap();
    task
}

/// A task of `lines` numbered lines, 100 ms apart, whose pod kpo deletes at the end.
fn deleted_task(image: &str, dir: &Path, lines: usize) -> PathBuf {
    let text = format!(
        r#"name = "outlasting"
image = "{image}"
command = ["sh", "-c", "for i in $(seq 1 {lines}); do echo line $i; sleep 0.1; done"]
termination_grace_period = 1
[annotations]
"container.sim.kpo.dev/base" = '{{"log_count": {lines}, "log_interval_ms": 100}}'
"#
    );
    task_file(dir, &format!("deleted-{lines}.toml"), &text)
}

/// The log lines a task of [`deleted_task`] prints.
fn numbered(lines: usize) -> Vec<String> {
    (1..=lines).map(|i| format!("line {i}")).collect()
}

/// The control plane goes away mid-run for twice the claim's term (`outage` stages it and
/// returns once it is over): kpo pauses, says so, and goes on when the API server answers — the
/// run ends as it would have without the outage: exit 0, every line once and in order, the pause
/// on the progress lines, nothing left. `admin` sees what is left afterwards.
pub fn mid_run_on(config: &str, admin: &str, image: &str, dir: &Path, outage: &dyn Fn()) {
    let lines = 450;
    let task = deleted_task(image, dir, lines);
    let run_id = format!("outage-{}", kpo::names::random_suffix(4));
    let cmd = kpo(config, &run_id, &dir.join("a"), &task, &[]);
    let out = outage_when(cmd, |l| l.contains("] Running"), outage);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(printed, numbered(lines), "{said}");
    assert_paused_and_resumed(&said);
    assert_nothing_left(admin, &format!("kpo.dev/run-id={run_id}"), &run_id);
}

fn assert_paused_and_resumed(said: &str) {
    assert!(said.contains("Paused (no renewal of Lease"), "{said}");
    assert!(
        said.contains("Resumed (the claim renewed after a pause of"),
        "{said}"
    );
}

/// The outage starts while kpo waits (`--wait-for-deletion`) for the pod it deleted (its sidecar
/// ignores SIGTERM, so the deletion takes the 20 s grace period): the run ends as it would have
/// — exit 0, the task's line, the pod gone. (Not a timeout: after other outages a node may start
/// the pod late.)
pub fn during_deletion_on(config: &str, admin: &str, image: &str, dir: &Path, outage: &dyn Fn()) {
    let text = format!(
        r#"name = "stubborn"
image = "{image}"
command = ["sh", "-c", "echo started"]
termination_grace_period = 20
[[sidecars]]
name = "deaf"
image = "{image}"
command = ["sh", "-c", "sleep 3600"]
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["started"]}}'
"container.sim.kpo.dev/deaf" = '{{"duration_ms": 3600000, "ignore_sigterm": true}}'
"#
    );
    let task = task_file(dir, "stubborn.toml", &text);
    let run_id = format!("deleting-{}", kpo::names::random_suffix(4));
    let cmd = kpo(config, &run_id, &dir.join("d"), &task, &["--wait-for-deletion"]);
    let out = outage_when(cmd, |l| l.contains("waiting for pod"), outage);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(said.contains("deleted pod"), "{said}");
    assert_nothing_left(admin, &format!("kpo.dev/run-id={run_id}"), &run_id);
}

/// The outage starts while kpo waits to retry a failed attempt: the next attempt is created once
/// the API server answers, and the run ends as it would have — two attempts, the task's exit
/// code, both pods gone.
pub fn during_backoff_on(config: &str, admin: &str, image: &str, dir: &Path, outage: &dyn Fn()) {
    let text = format!(
        r#"name = "retried"
image = "{image}"
command = ["sh", "-c", "echo attempt; exit 3"]
[retry]
user = 1
backoff = "6s"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["attempt"], "exit_code": 3}}'
"#
    );
    let task = task_file(dir, "retried.toml", &text);
    let run_id = format!("backoff-{}", kpo::names::random_suffix(4));
    let cmd = kpo(config, &run_id, &dir.join("r"), &task, &["--output", "json"]);
    let out = outage_when(cmd, |l| l.contains("; attempt 2 in"), outage);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["attempts"].as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(said.matches("attempt\n").count(), 2, "{said}");
    assert_paused_and_resumed(&said);
    assert_nothing_left(admin, &format!("kpo.dev/run-id={run_id}"), &run_id);
}

/// A batch of ten, all running when the outage starts: every task ends as without it, each
/// log whole and in order, nothing left.
pub fn a_batch_on(config: &str, admin: &str, image: &str, dir: &Path, outage: &dyn Fn()) {
    let (tasks, lines) = (10, 400);
    let folder = dir.join("batch");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..tasks {
        let text = std::fs::read_to_string(deleted_task(image, dir, lines)).unwrap();
        let text = text.replace("name = \"outlasting\"", &format!("name = \"member-{i}\""));
        std::fs::write(folder.join(format!("member-{i}.toml")), text).unwrap();
    }
    let batch_id = format!("through-{}", kpo::names::random_suffix(4));
    let mut cmd = crate::harness::kpo_command();
    cmd.args([
        "run",
        "--kubeconfig",
        config,
        "--run-id",
        &batch_id,
        "--parallel",
        "10",
    ])
    .arg(&folder)
    .env("KPO_STATE_DIR", dir.join("b"))
    .env_remove("RUST_LOG")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let running = std::sync::atomic::AtomicUsize::new(0);
    let all_running = |l: &str| {
        l.contains("Running") && running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == tasks
    };
    let out = outage_when(cmd, all_running, outage);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let printed = String::from_utf8_lossy(&out.stdout);
    for i in 0..tasks {
        let prefix = format!("[member-{i}] ");
        let own: Vec<String> = printed
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(String::from)
            .collect();
        assert_eq!(own, numbered(lines), "member-{i}: {said}");
    }
    assert_nothing_left(admin, &format!("kpo.dev/batch={batch_id}"), &batch_id);
}

/// On the sim: the API server down for twice the claim's term, `scenario` staging it.
fn on_the_sim(scenario: fn(&str, &str, &str, &Path, &dyn Fn())) {
    let (_rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let outage = || sim.faults().outage(kpo::claim::TERM * 2);
    scenario(&config, &config, "busybox", dir.path(), &outage);
}

#[test]
fn an_outage_mid_run_is_ridden_out() {
    on_the_sim(mid_run_on);
}

#[test]
fn an_outage_while_the_pod_is_deleted_is_ridden_out() {
    on_the_sim(during_deletion_on);
}

#[test]
fn an_outage_during_a_retrys_backoff_is_ridden_out() {
    on_the_sim(during_backoff_on);
}

#[test]
fn a_batch_of_ten_rides_out_an_outage() {
    on_the_sim(a_batch_on);
}

/// A kpo cut off from the API server alone (a partition: another kpo still reaches it) pauses
/// once its claim is too old to act on; a second kpo takes the run over once the claim expires
/// and follows the same pod to its end. When the partition heals, the first learns that its
/// claim is another's and stops (exit 75) — from the sim's record of writes: after the takeover,
/// not one create or delete of a pod came from it.
#[test]
fn a_partitioned_kpo_stops_acting_once_another_takes_the_run() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let with_token = |token: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        let path = dir.path().join(format!("kubeconfig-{token}"));
        std::fs::write(
            &path,
            text.replace("user: {}", &format!("user:\n    token: {token}")),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (cut, other) = (with_token("cut-off"), with_token("successor"));
    let lines = 400;
    let task = deleted_task("busybox", dir.path(), lines);
    let run_id = "partitioned";
    let first = kpo(&cut, run_id, &dir.path().join("a"), &task, &[])
        .spawn()
        .unwrap();
    let pods: Api<Pod> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let selector = format!("kpo.dev/run-id={run_id}");
    rt.block_on(crate::harness::running_pod(&pods, &selector));
    sim.faults().partition("cut-off", kpo::claim::TERM * 2);
    // The successor waits out the claim, takes the run over and follows the pod to its end.
    let second = kpo(&other, run_id, &dir.path().join("b"), &task, &["--wait"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{said}");
    assert!(said.contains("reattaching to run partitioned"), "{said}");
    let out = first.wait_with_output().unwrap();
    let first_said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CLAIMED), "{first_said}");
    assert!(first_said.contains("was taken over by"), "{first_said}");
    let writes = sim.record().writes;
    let takeover = writes
        .iter()
        .position(|w| {
            w.client.as_deref() == Some("successor") && w.method == "PUT" && w.path.contains("/leases/")
        })
        .expect("the successor wrote the Lease");
    let acts: Vec<_> = writes[takeover..]
        .iter()
        .filter(|w| w.client.as_deref() == Some("cut-off") && w.path.contains("/pods"))
        .collect();
    assert!(
        acts.is_empty(),
        "the cut-off kpo acted after the takeover: {acts:?}"
    );
    let left = rt.block_on(pods.list(&ListParams::default().labels(&selector)));
    assert!(
        left.unwrap().items.is_empty(),
        "the successor left the pod behind"
    );
}
