//! Batch runs against one kpo process per task, on the path users take: the `kpo` binary with
//! its journal on. Prints a Markdown table for the README.
//!
//!     cargo bench --bench batch
//!
//! On the simulated cluster (in this process, so that its record counts kpo's requests): a
//! batch of `KPO_BENCH_TASKS` (default 1000) two-second tasks with `--parallel` as large, against
//! a sample of `KPO_BENCH_SAMPLE` (default 20) concurrent single-task processes, extrapolated.
//! With `KPO_E2E_KUBECONFIG` set, also 100 tasks on that real cluster both ways.

// Shared by the benchmarks; this one needs only `fmt`, as it times whole processes.
#[allow(dead_code)]
mod measure;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kpo::sim::SimCluster;
use measure::fmt;

/// What a set of kpo processes took: wall time, CPU, and memory at its peak.
struct Cost {
    wall: Duration,
    cpu: Duration,
    /// The largest peak RSS of one process.
    max_rss_kib: u64,
    /// The sum of every process's peak RSS: an upper bound of the memory used at once.
    sum_rss_kib: u64,
}

/// Waits for `child` (GNU time running kpo): whether kpo succeeded, its CPU time (wait4's, which
/// counts time's waited-for child) and its peak RSS as GNU time measured it — not wait4's: a
/// child started with vfork, as Rust starts processes, inherits the high-water mark of this
/// process's memory, the simulated cluster's.
fn wait_measured(child: Child, measured: &Path) -> (bool, Duration, u64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let cpu =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let text = std::fs::read_to_string(measured).expect("GNU time wrote its figures");
    let rss = text.split_whitespace().last().and_then(|r| r.parse().ok());
    let rss = rss.unwrap_or_else(|| panic!("unexpected output of GNU time: {text}"));
    (ok, cpu(usage.ru_utime) + cpu(usage.ru_stime), rss)
}

/// `kpo run` on the cluster `kubeconfig` names, under GNU time (`/usr/bin/time`, Debian's
/// package `time`), which writes its peak RSS beside the state folder.
fn kpo(kubeconfig: &str, state: &Path) -> (Command, PathBuf) {
    let measured = state.with_extension("time");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o"])
        .arg(&measured)
        .arg(env!("CARGO_BIN_EXE_kpo"))
        .args(["run", "--kubeconfig", kubeconfig])
        .env("KPO_STATE_DIR", state)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (cmd, measured)
}

/// Runs `commands` at once and waits for all of them.
fn all_at_once(commands: Vec<(Command, PathBuf)>) -> Cost {
    let start = Instant::now();
    let children: Vec<(Child, PathBuf)> = commands
        .into_iter()
        .map(|(mut c, measured)| (c.spawn().expect("GNU time starts (apt install time)"), measured))
        .collect();
    let mut cost = Cost {
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss_kib: 0,
        sum_rss_kib: 0,
    };
    for (child, measured) in children {
        let (ok, cpu, rss) = wait_measured(child, &measured);
        assert!(ok, "a kpo run failed");
        cost.cpu += cpu;
        cost.max_rss_kib = cost.max_rss_kib.max(rss);
        cost.sum_rss_kib += rss;
    }
    cost.wall = start.elapsed();
    cost
}

/// `count` task files of two-second tasks printing three lines, in a folder of their own.
fn tasks(dir: &Path, count: usize, image: &str) -> PathBuf {
    let folder = dir.join("tasks");
    std::fs::create_dir_all(&folder).expect("a writable temporary folder");
    for i in 0..count {
        let text = format!(
            "name = \"t{i:04}\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"echo start; sleep 2; echo middle; echo end\"]\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"start\", \"middle\", \"end\"], \"log_interval_ms\": 1000}}'\n"
        );
        std::fs::write(folder.join(format!("t{i:04}.toml")), text).expect("a writable temporary folder");
    }
    folder
}

/// One `kpo run` each of the first `count` tasks of `folder`, with a state folder of its own.
fn singles(kubeconfig: &str, dir: &Path, folder: &Path, count: usize) -> Vec<(Command, PathBuf)> {
    (0..count)
        .map(|i| {
            let mut c = kpo(kubeconfig, &dir.join(format!("state-{i}")));
            c.0.arg(folder.join(format!("t{i:04}.toml")));
            c
        })
        .collect()
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn main() {
    let n = env_count("KPO_BENCH_TASKS", 1000);
    let sample = env_count("KPO_BENCH_SAMPLE", 20);
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = rt
        .block_on(SimCluster::start())
        .expect("the simulated cluster starts");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig()).expect("a writable temporary folder");
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path").to_owned();
    let folder = tasks(dir.path(), n, "busybox:1.36");

    let before = sim.record();
    let parallel = n.to_string();
    let mut batch = kpo(&kubeconfig, &dir.path().join("state-batch"));
    batch.0.args(["--parallel", &parallel]).arg(&folder);
    let one = all_at_once(vec![batch]);
    let after = sim.record();
    let requests = after.requests - before.requests;
    let watches = after.pod_watches - before.pod_watches;
    // The same without the rate limit's pacing: what the sim itself costs.
    let mut unpaced = kpo(&kubeconfig, &dir.path().join("state-unpaced"));
    unpaced
        .0
        .args(["--parallel", &parallel, "--qps", "100000", "--burst", "100000"])
        .arg(&folder);
    let fast = all_at_once(vec![unpaced]);

    let processes = singles(&kubeconfig, dir.path(), &folder, sample);
    let before = sim.record();
    let many = all_at_once(processes);
    let after = sim.record();
    let single_requests = (after.requests - before.requests) as f64 / sample as f64;
    let scale = n as f64 / sample as f64;

    println!(
        "| {n} two-second tasks on the sim | one batch (`--parallel {n}`) | {n} single-task processes (from {sample}, extrapolated) |"
    );
    println!("|---|---|---|");
    println!(
        "| wall time | {} ({} with the rate limit lifted) | {} for {sample} at once |",
        fmt(one.wall),
        fmt(fast.wall),
        fmt(many.wall)
    );
    println!(
        "| peak memory | {} | {} ({} each) |",
        mib(one.max_rss_kib),
        mib((many.sum_rss_kib as f64 * scale) as u64),
        mib(many.sum_rss_kib / sample as u64)
    );
    println!(
        "| kpo CPU per task | {} | {} |",
        fmt(one.cpu / n as u32),
        fmt(many.cpu / sample as u32)
    );
    println!(
        "| API requests per task | {:.1} | {single_requests:.1} |",
        requests as f64 / n as f64
    );
    println!("| pod watches | {watches} | {} |", n);

    if let Ok(real) = std::env::var("KPO_E2E_KUBECONFIG") {
        let count = 100;
        let image = std::env::var("KPO_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into());
        let dir = tempfile::tempdir().expect("a temporary folder");
        let folder = tasks(dir.path(), count, &image);
        let mut batch = kpo(&real, &dir.path().join("state-batch"));
        batch.0.args(["--parallel", "100"]).arg(&folder);
        let one = all_at_once(vec![batch]);
        let many = all_at_once(singles(&real, dir.path(), &folder, count));
        println!();
        println!(
            "| {count} two-second tasks on the real cluster | one batch | {count} single-task processes at once |"
        );
        println!("|---|---|---|");
        println!("| wall time | {} | {} |", fmt(one.wall), fmt(many.wall));
        println!(
            "| peak memory | {} | {} in all ({} each at most) |",
            mib(one.max_rss_kib),
            mib(many.sum_rss_kib),
            mib(many.max_rss_kib)
        );
        println!(
            "| kpo CPU per task | {} | {} |",
            fmt(one.cpu / count as u32),
            fmt(many.cpu / count as u32)
        );
    }
}
