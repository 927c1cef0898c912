//! From a container's end to kpo's exit, on a real cluster (`KPO_E2E_KUBECONFIG`; without it the
//! benchmark says so and stops): `kpo run` of four small tasks and of one with a sidecar that
//! ignores SIGTERM, each nine times, the process users start. Three clocks, all this machine's
//! (the test cluster's node is this machine): containerd's own exit event for the main container
//! (`ctr events` on the node's socket, `$KPO_CLUSTER_HOME`, default `/var/lib/kpo-cluster`; left
//! out where `ctr` cannot reach it), the moment a watch of the API first shows the main container
//! terminated, and the moment the `kpo` process has exited.
//!
//! `cargo bench --bench exit`

// Shared with the other benchmarks; this one times processes itself and uses only a part.
#[allow(dead_code)]
mod measure;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event, watcher};

const RUNS: usize = 9;

/// The task files: a name and the body after `name` and `image`.
fn tasks() -> Vec<(&'static str, &'static str)> {
    vec![
        ("`true`", "command = [\"true\"]\n"),
        ("one line", "command = [\"sh\", \"-c\", \"echo done\"]\n"),
        (
            "1 000 lines",
            "command = [\"sh\", \"-c\", \"i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); done\"]\n",
        ),
        (
            "a line, 2 s, a line",
            "command = [\"sh\", \"-c\", \"echo one; sleep 2; echo two\"]\n",
        ),
        (
            "one line + a SIGTERM-deaf sidecar (grace 20 s)",
            "command = [\"sh\", \"-c\", \"sleep 1; echo done\"]\ntermination_grace_period = 20\n[[sidecars]]\nname = \"deaf\"\nimage = \"busybox:1.36\"\ncommand = [\"sh\", \"-c\", \"sleep 3600\"]\n",
        ),
    ]
}

/// containerd's exit events (container id → when it exited), as `ctr events` prints them.
fn containerd_exits() -> Option<std::sync::mpsc::Receiver<(String, SystemTime)>> {
    let home = std::env::var("KPO_CLUSTER_HOME").unwrap_or_else(|_| "/var/lib/kpo-cluster".into());
    let socket = format!("{home}/run/containerd/containerd.sock");
    let mut child = Command::new("ctr")
        .args(["--address", &socket, "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Some(json) = line.split_once("/tasks/exit ").map(|(_, j)| j) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            let at = v["exited_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            if let (Some(id), Some(at)) = (v["container_id"].as_str(), at) {
                let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(at.as_nanosecond() as u64);
                if tx.send((id.to_owned(), at)).is_err() {
                    break;
                }
            }
        }
        let _ = child.kill();
    });
    Some(rx)
}

/// One `kpo run`: (containerd's exit → kpo's exit, API terminated → kpo's exit).
async fn one(
    api: &kube::Api<Pod>,
    kubeconfig: &str,
    body: &str,
    exits: Option<&std::sync::mpsc::Receiver<(String, SystemTime)>>,
) -> (Option<Duration>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let image = std::env::var("KPO_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into());
    let path = dir.path().join("task.toml");
    std::fs::write(
        &path,
        format!("name = \"exit-bench\"\nimage = \"{image}\"\n{body}"),
    )
    .unwrap();
    let run_id = format!("exit-{}", kpo::names::random_suffix(6));
    let selector = format!("{}={run_id}", kpo::pod::LABEL_RUN_ID);
    let mut pods = watcher(api.clone(), watcher::Config::default().labels(&selector)).boxed();
    let child = Command::new(env!("CARGO_BIN_EXE_kpo"))
        .args(["run", "--kubeconfig", kubeconfig, "--run-id", &run_id])
        .arg(&path)
        .env("KPO_STATE_DIR", dir.path().join("state"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        (out, SystemTime::now())
    });
    let (container, terminated) = loop {
        if let Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) = pods.next().await {
            let status = kpo::status::of(&pod, "base");
            let ended = status
                .and_then(|s| s.state.as_ref())
                .is_some_and(|s| s.terminated.is_some());
            if ended {
                let id = status.and_then(|s| s.container_id.clone()).unwrap_or_default();
                break (
                    id.rsplit("://").next().unwrap_or_default().to_owned(),
                    SystemTime::now(),
                );
            }
        }
    };
    let (out, exited) = tokio::task::spawn_blocking(move || waiter.join().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ended = exits.and_then(|rx| {
        rx.try_iter()
            .chain(rx.recv_timeout(Duration::from_secs(2)).ok())
            .find(|(id, _)| *id == container)
            .map(|(_, at)| at)
    });
    let since = |t: SystemTime| exited.duration_since(t).unwrap_or_default();
    (ended.map(since), since(terminated))
}

#[tokio::main]
async fn main() {
    let Ok(kubeconfig) = std::env::var("KPO_E2E_KUBECONFIG") else {
        eprintln!("exit: set KPO_E2E_KUBECONFIG to time kpo's exit on a real cluster");
        return;
    };
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespace = kube::config::Kubeconfig::read_from(&kubeconfig)
        .ok()
        .and_then(|k| {
            k.contexts
                .first()
                .and_then(|c| c.context.as_ref())
                .and_then(|c| c.namespace.clone())
        })
        .unwrap_or_else(|| "default".into());
    let api: kube::Api<Pod> = kube::Api::namespaced(client, &namespace);
    let exits = containerd_exits();
    println!(
        "| task (median of {RUNS}) | main container's exit (containerd) → kpo exit | API terminated → kpo exit |"
    );
    println!("|---|---|---|");
    for (name, body) in tasks() {
        let mut from_exit = Vec::new();
        let mut from_api = Vec::new();
        for _ in 0..RUNS {
            let (exit, api_seen) = one(&api, &kubeconfig, body, exits.as_ref()).await;
            from_exit.extend(exit);
            from_api.push(api_seen);
        }
        let exit = if from_exit.len() == RUNS {
            measure::fmt(measure::median(from_exit))
        } else {
            "—".into()
        };
        println!(
            "| {name} | {exit} | {} |",
            measure::fmt(measure::median(from_api))
        );
    }
}
