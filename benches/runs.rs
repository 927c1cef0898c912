//! Supervision costs on the simulated cluster, through the real `kube` client over HTTP: what
//! kpo itself adds around a pod. The simulated kubelet is told to take no time of its own (no
//! pull, no run time), so what is left is kpo, the client, HTTP on loopback and the simulated
//! API server. Prints a Markdown table for the README.
//!
//!     cargo bench --bench runs
//!
//! With `KPO_E2E_KUBECONFIG` set, it also times one run on that real cluster.

mod measure;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use kpo::pod::{self, RunIdentity};
use kpo::report::RunReport;
use kpo::sim::SimCluster;
use kpo::supervise::{self, Observer};
use kpo::task::{self, Task};
use kpo::vocabulary::Outcome;
use measure::{fmt, median, time};

/// Counts the log lines delivered, as a terminal would print them.
#[derive(Default)]
struct Lines(AtomicUsize);

impl Observer for Lines {
    fn log_bytes(&self, _container: &str, bytes: &[u8]) {
        self.0.fetch_add(newlines(bytes), Ordering::Relaxed);
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

/// A task printing `count` numbered lines, on a real cluster or (with `annotations`) the sim.
/// It sleeps a second after printing: containerd 1.6 loses the end of output written just before
/// the container exits, and a bench must not count that against kpo.
fn numbered_task(dir: &Path, annotations: &str, count: usize, keep: bool) -> std::path::PathBuf {
    let image = std::env::var("KPO_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into());
    let on_finish = if keep { "keep" } else { "delete" };
    let text = format!(
        "name = \"lines\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"seq 1 {count} | sed 's/^/line /'; sleep 1\"]\n[run]\non_finish = \"{on_finish}\"\n[annotations]\n{annotations}\n"
    );
    let path = dir.join(format!("lines-{count}.toml"));
    std::fs::write(&path, text).expect("a writable temporary folder");
    path
}

/// The median wall time of three `kpo run` processes of that task, every line counted on stdout.
fn cli_run(cluster: &[&str], annotations: &str, count: usize) -> std::time::Duration {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let task = numbered_task(dir.path(), annotations, count, false);
    let samples = (0..3)
        .map(|_| {
            let start = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpo"))
                .arg("run")
                .args(cluster)
                .arg(&task)
                .env("KPO_STATE_DIR", dir.path().join("state"))
                .stderr(std::process::Stdio::null())
                .output()
                .expect("kpo runs");
            let took = start.elapsed();
            assert!(out.status.success(), "kpo run failed");
            assert_eq!(newlines(&out.stdout), count, "every line exactly once");
            took
        })
        .collect();
    median(samples)
}

/// The median time `kubectl logs` takes for a kept pod printing `count` lines.
fn kubectl_logs(kubeconfig: &str, count: usize) -> std::time::Duration {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let task = numbered_task(dir.path(), "", count, true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpo"))
        .args(["run", "--output", "json", "--kubeconfig", kubeconfig])
        .arg(&task)
        .env("KPO_STATE_DIR", dir.path().join("state"))
        .stderr(std::process::Stdio::null())
        .output()
        .expect("kpo runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let pod = report["pod"].as_str().expect("a pod name").to_owned();
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let samples = (0..3)
        .map(|_| {
            let start = Instant::now();
            let logs = std::process::Command::new(&kubectl)
                .args(["--kubeconfig", kubeconfig, "logs", &pod])
                .output()
                .expect("kubectl runs (set KUBECTL)");
            let took = start.elapsed();
            assert_eq!(newlines(&logs.stdout), count, "kubectl printed the whole log");
            took
        })
        .collect();
    let _ = std::process::Command::new(&kubectl)
        .args(["--kubeconfig", kubeconfig, "delete", "pod", &pod, "--wait=false"])
        .output();
    median(samples)
}

fn task_with(name: &str, script: &str) -> Task {
    let text = format!(
        "name = \"{name}\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{script}'\n"
    );
    task::parse(&text, Path::new("bench.toml")).expect("a valid task")
}

async fn run(client: &kube::Client, task: &Task, observer: Arc<dyn Observer>) -> RunReport {
    let pod = pod::build(task, &RunIdentity::generate(&task.name), "default");
    let report = supervise::launch(
        client.clone(),
        pod,
        &task.run,
        observer,
        futures::stream::pending(),
    )
    .await
    .expect("the simulated cluster answers");
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    report
}

/// The median time of `runs` runs of `task`, one after the other.
async fn one_run(client: &kube::Client, task: &Task, runs: usize) -> std::time::Duration {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        run(client, task, Arc::new(Lines::default())).await;
        samples.push(start.elapsed());
    }
    median(samples)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let mut rows: Vec<(String, String)> = Vec::new();

    let etl = Path::new("examples/etl.toml");
    let parse = time(200, || {
        let task = task::load(etl).expect("examples/etl.toml");
        pod::build(&task, &RunIdentity::generate("etl"), "default")
    });
    rows.push((
        "task file to pod (`examples/etl.toml` with its pod template: read, check, build)".into(),
        fmt(parse),
    ));

    rt.block_on(async {
        let sim = SimCluster::start().await.expect("a free port");
        let client = sim.client();
        let quiet = task_with("bench", "{}");

        rows.push((
            "one run, end to end (create, watch to Succeeded, read events, delete; median of 20)".into(),
            fmt(one_run(&client, &quiet, 20).await),
        ));

        let concurrent = 50;
        let start = Instant::now();
        futures::future::join_all((0..concurrent).map(|_| run(&client, &quiet, Arc::new(Lines::default()))))
            .await;
        rows.push((
            format!("{concurrent} runs at once on one client, all of them"),
            fmt(start.elapsed()),
        ));

        let count = 200_000;
        let chatty = task_with("chatty", &format!("{{\"log_count\": {count}}}"));
        let lines = Arc::new(Lines::default());
        let start = Instant::now();
        run(&client, &chatty, lines.clone()).await;
        let took = start.elapsed();
        assert_eq!(lines.0.load(Ordering::Relaxed), count, "every line exactly once");
        rows.push((
            format!("streaming a {count}-line log (whole run)"),
            format!("{} ({:.0} lines/s)", fmt(took), count as f64 / took.as_secs_f64()),
        ));

        if let Ok(path) = std::env::var("KPO_E2E_KUBECONFIG") {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("a readable kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .expect("a valid kubeconfig");
            let client = kpo::client::build(config).expect("a client");
            let image = std::env::var("KPO_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into());
            let text = format!("name = \"bench\"\nimage = \"{image}\"\ncommand = [\"true\"]\n");
            let real = task::parse(&text, Path::new("bench.toml")).expect("a valid task");
            rows.push((
                "one run on the real cluster at `KPO_E2E_KUBECONFIG` (`true` in busybox; median of 5)".into(),
                fmt(one_run(&client, &real, 5).await),
            ));
        }
    });

    for count in [100_000, 200_000] {
        let took = cli_run(
            &["--sim"],
            &format!("\"container.sim.kpo.dev/base\" = '{{\"log_count\": {count}}}'"),
            count,
        );
        rows.push((
            format!("`kpo run --sim` of a {count}-line task, journal on (the whole process; median of 3)"),
            format!("{} ({:.0} lines/s)", fmt(took), count as f64 / took.as_secs_f64()),
        ));
    }
    if let Ok(path) = std::env::var("KPO_E2E_KUBECONFIG") {
        let count = 100_000;
        let took = cli_run(&["--kubeconfig", &path], "", count);
        rows.push((
            format!("`kpo run` of a {count}-line task on the real cluster, journal on (median of 3)"),
            fmt(took),
        ));
        rows.push((
            format!("`kubectl logs` of that finished pod ({count} lines; median of 3)"),
            fmt(kubectl_logs(&path, count)),
        ));
    }

    let document = kpo::sim::filler_document(1 << 20);
    let log = kpo::result::frame(&document).join("\n");
    let decode = time(20, || {
        let bytes = kpo::result::from_frame(&log, 2 << 20).expect("a whole frame");
        assert_eq!(bytes.as_deref(), Some(&document[..]));
    });
    rows.push((
        "checking a 1 MiB sidecar result frame (base64, size, SHA-256)".into(),
        fmt(decode),
    ));

    println!("| what | time |\n|---|---|");
    for (what, took) in rows {
        println!("| {what} | {took} |");
    }
}
