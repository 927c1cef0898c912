//! Plugin limits that hold wherever the guest is — in its own code or blocked in a WASI host
//! call — in every command that calls plugins: `validate`, `render`, `run` and a batch. Each
//! hostile guest (real components: Rust crates in `plugins/hostile/`, and component-model text
//! in `plugins/hostile/wat/`) ends with exit 76 and a message naming the cause; SIGTERM while a
//! guest blocks ends kpo with exit 130 and no pod.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kpo::exit;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use crate::harness::{kpo_command, plugin};

/// How much longer than a guest's own time limit kpo may take to end: starting the process,
/// loading the compiled component, and a loaded two-core test machine. A guest that is not
/// stopped would hold kpo for an hour.
const SLACK: Duration = Duration::from_secs(4);

/// A hostile guest and what kpo must say about it.
struct Guest {
    /// Under `plugins/hostile/`.
    name: &'static str,
    /// The task file's table: `mutate` or `policy`.
    table: &'static str,
    /// The rest of its entry.
    extra: &'static str,
    /// What kpo's message must contain.
    cause: &'static str,
    /// Its own time limit.
    limit: Duration,
}

const SECOND: Duration = Duration::from_secs(1);

const SLEEP: Guest = Guest {
    name: "sleep",
    table: "mutate",
    extra: "timeout = \"1s\"",
    cause: "plugin hostile_sleep exceeded its time limit of 1s",
    limit: SECOND,
};
const FOREVER: Guest = Guest {
    name: "forever",
    table: "mutate",
    extra: "timeout = \"1s\"",
    cause: "plugin hostile_forever exceeded its time limit of 1s",
    limit: SECOND,
};
const BLOCKING_CONFIG: Guest = Guest {
    name: "blocking-config",
    table: "mutate",
    extra: "timeout = \"1s\"",
    cause: "plugin hostile_blocking_config exceeded its time limit of 1s",
    limit: SECOND,
};
const INSTANCES: Guest = Guest {
    name: "instances",
    table: "mutate",
    extra: "memory = \"16Mi\"",
    cause: "plugin hostile_instances exceeded its memory limit of 16 MiB",
    limit: SECOND,
};
const TABLE: Guest = Guest {
    name: "table",
    table: "mutate",
    extra: "",
    cause: "plugin hostile_table exceeded its memory limit of 64 MiB",
    limit: SECOND,
};
const COUNT: Guest = Guest {
    name: "count",
    table: "mutate",
    extra: "",
    cause: "plugin hostile_count exceeded its limits: more than 64 core instances, 64 memories or 64 tables (instance count too high at 65)",
    limit: SECOND,
};
const WARNINGS: Guest = Guest {
    name: "warnings",
    table: "policy",
    // Twenty of them at once in a batch, each handing a million strings over: time enough.
    extra: "timeout = \"10s\"",
    cause: "plugin hostile_warnings returned an invalid result: 1000000 warnings, more than the limit of 100",
    // Its own time limit, as the task file says (a loaded machine takes seconds over a million
    // strings twenty times; kpo must still end, not within one second).
    limit: Duration::from_secs(10),
};

impl Guest {
    /// A task named `name` whose only plugin is this guest (with `extra` instead of its own).
    fn task(&self, name: &str, extra: &str) -> String {
        format!(
            "name = {name:?}\nimage = \"busybox:1.36\"\ncommand = [\"true\"]\n[[{}]]\npath = {:?}\n{extra}\n",
            self.table,
            plugin(&format!("hostile/{}", self.name)).display().to_string()
        )
    }

    /// Checks that `out` is kpo stopping this guest: exit `code`, the cause said, in time.
    fn check(&self, what: &str, out: &Output, took: Duration, code: i32) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{} in {what}: {stderr}", self.name);
        assert!(stderr.contains(self.cause), "{} in {what}: {stderr}", self.name);
        assert!(
            took < self.limit + SLACK,
            "{} in {what}: kpo took {took:?}",
            self.name
        );
    }

    /// `validate`, `render`, `run` of one task and a batch of twenty: each stopped with exit 76
    /// and the cause, and no pod anywhere.
    fn stopped_everywhere(&self) {
        let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
        let single = dir.path().join("task.toml");
        std::fs::write(&single, self.task("hostile", self.extra)).unwrap();
        let single = single.to_str().unwrap();
        // Compiled once, outside the clock (the cache is shared by the kpo runs of this process).
        kpo_command()
            .args([
                "plugin",
                "inspect",
                &plugin(&format!("hostile/{}", self.name)).display().to_string(),
            ])
            .output()
            .unwrap();

        for (what, args) in [
            ("validate", vec!["validate", single]),
            ("render", vec!["render", single]),
            ("run", vec!["run", "--kubeconfig", &config, single]),
        ] {
            let (out, took) = timed(&args);
            self.check(what, &out, took, exit::PLUGIN_FAILED);
        }

        let batch = dir.path().join("batch");
        std::fs::create_dir(&batch).unwrap();
        for i in 0..20 {
            let name = format!("t{i:02}");
            std::fs::write(batch.join(format!("{name}.toml")), self.task(&name, self.extra)).unwrap();
        }
        let (out, took) = timed(&[
            "run",
            "--kubeconfig",
            &config,
            "--output",
            "json",
            batch.to_str().unwrap(),
        ]);
        assert!(
            took < self.limit + SLACK,
            "{} in a batch: kpo took {took:?}",
            self.name
        );
        if self.name == "blocking-config" {
            // Configs are checked when the batch loads its plugins, before anything runs.
            self.check("a batch", &out, took, exit::PLUGIN_FAILED);
        } else {
            assert_eq!(
                out.status.code(),
                Some(exit::BATCH_FAILED),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let runs: Vec<Value> = stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|v: &Value| v["kind"] == "run")
                .collect();
            assert_eq!(runs.len(), 20, "{stdout}");
            for r in &runs {
                assert_eq!(r["exit_code"], exit::PLUGIN_FAILED, "{r}");
                assert!(r["message"].as_str().unwrap().contains(self.cause), "{r}");
            }
        }
        assert_eq!(pods(&rt, &sim), 0, "{}: a pod was created", self.name);
    }
}

/// Runs kpo to its end; what it printed and how long it took.
fn timed(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = kpo_command().args(args).output().expect("kpo runs");
    (out, started.elapsed())
}

/// How many pods the simulated cluster has in the default namespace.
fn pods(rt: &tokio::runtime::Runtime, sim: &kpo::sim::SimCluster) -> usize {
    rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
    })
}

#[test]
fn a_guest_asleep_in_a_timer_is_stopped_at_its_deadline() {
    SLEEP.stopped_everywhere();
}

#[test]
fn a_guest_polling_a_timer_that_never_fires_is_stopped_at_its_deadline() {
    FOREVER.stopped_everywhere();
}

#[test]
fn a_config_check_that_blocks_is_stopped_at_its_deadline() {
    BLOCKING_CONFIG.stopped_everywhere();
}

#[test]
fn core_instances_share_one_memory_budget() {
    INSTANCES.stopped_everywhere();
}

#[test]
fn tables_count_against_the_memory_budget() {
    TABLE.stopped_everywhere();
}

#[test]
fn core_instances_are_capped_in_number() {
    COUNT.stopped_everywhere();
}

#[test]
fn warnings_are_capped_in_number() {
    WARNINGS.stopped_everywhere();
}

/// Starts kpo with `args` (`-v`: its debug log on stderr) and reads its stderr until it says
/// it is calling a plugin: the guest is in its call from then on.
fn started_calling(args: &[&str]) -> (Child, String) {
    started_saying(kpo_command(), args, "calling the plugin")
}

/// Starts `kpo` with `args` and `-v`, and reads its stderr until a line says `what`.
fn started_saying(mut kpo: std::process::Command, args: &[&str], what: &str) -> (Child, String) {
    let mut child = kpo
        .arg("-v")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("kpo ended before it called the plugin: {seen}");
        }
        seen.push_str(&line);
        if line.contains(what) {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, seen)
}

/// SIGTERM while `guest` blocks (its limit a minute away) ends kpo within two seconds with exit
/// 130, and no pod of the task exists in `kubeconfig`'s cluster: shared by the simulated and the
/// real cluster.
pub fn sigterm_stops_a_blocked_guest(kubeconfig: &str, guest: &str, command: &str) {
    let guest = [&SLEEP, &FOREVER, &BLOCKING_CONFIG]
        .into_iter()
        .find(|g| g.name == guest)
        .expect("a blocking guest");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.toml");
    let name = format!("sigterm-{}", guest.name);
    std::fs::write(&task, guest.task(&name, "timeout = \"60s\"")).unwrap();
    let task = task.to_str().unwrap();
    let args = match command {
        "validate" => vec!["validate", task],
        "render" => vec!["render", task],
        _ => vec!["run", "--kubeconfig", kubeconfig, task],
    };
    let (child, seen) = started_calling(&args);
    let sent = Instant::now();
    // SAFETY: kill(2) on a child of this process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait(child, Duration::from_secs(2));
    assert_eq!(
        code,
        Some(exit::INTERRUPTED),
        "{} in {command}: {seen}",
        guest.name
    );
    assert!(sent.elapsed() < Duration::from_secs(2));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt.block_on(async {
        let client = crate::harness::e2e_client(kubeconfig).await;
        Api::<Pod>::default_namespaced(client)
            .list(&ListParams::default().labels(&format!("{}={name}", kpo::pod::LABEL_TASK)))
            .await
            .unwrap()
            .items
    });
    assert!(left.is_empty(), "{} in {command}: pods left", guest.name);
}

/// The child's exit code, killing it (and failing) if it has not ended within `limit`.
fn wait(child: Child, limit: Duration) -> Option<i32> {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait().map(|s| s.code()));
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on a child of this process that has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("kpo did not end within {limit:?} of SIGTERM");
        }
    }
}

#[test]
fn sigterm_stops_every_blocked_guest() {
    let (_rt, _sim, _dir, config) = crate::cli::sim_with_kubeconfig();
    for guest in ["sleep", "forever", "blocking-config"] {
        sigterm_stops_a_blocked_guest(&config, guest, "run");
    }
    sigterm_stops_a_blocked_guest(&config, "sleep", "validate");
    sigterm_stops_a_blocked_guest(&config, "blocking-config", "render");
}

/// SIGTERM while kpo compiles a component (CPython's, seconds of CPU, into an empty cache)
/// ends kpo at once: the compile runs beside the load, not in its way.
#[test]
fn sigterm_stops_a_compile() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.toml");
    let python = plugin("python/result-check").display().to_string();
    std::fs::write(
        &task,
        format!("name = \"compile\"\nimage = \"busybox:1.36\"\n[[interpret]]\npath = {python:?}\n"),
    )
    .unwrap();
    let mut kpo = kpo_command();
    kpo.env("KPO_CACHE_DIR", dir.path().join("cache"));
    let (child, seen) = started_saying(
        kpo,
        &["validate", task.to_str().unwrap()],
        "compiling the component",
    );
    // SAFETY: kill(2) on a child of this process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait(child, Duration::from_secs(2));
    assert_eq!(code, Some(exit::INTERRUPTED), "{seen}");
}

/// A batch whose tasks' guests block: SIGTERM ends it at once, with no pod.
#[test]
fn sigterm_stops_a_batch_of_blocked_guests() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let batch = dir.path().join("batch");
    std::fs::create_dir(&batch).unwrap();
    for i in 0..20 {
        let name = format!("t{i:02}");
        std::fs::write(
            batch.join(format!("{name}.toml")),
            SLEEP.task(&name, "timeout = \"60s\""),
        )
        .unwrap();
    }
    let (child, seen) = started_calling(&["run", "--kubeconfig", &config, batch.to_str().unwrap()]);
    // SAFETY: kill(2) on a child of this process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait(child, Duration::from_secs(2));
    assert_eq!(code, Some(exit::INTERRUPTED), "{seen}");
    assert_eq!(pods(&rt, &sim), 0);
}

/// Another kpo takes the run's claim over while a mutator blocks (its limit a minute away): the
/// run stops there with 75 and makes no request for a pod.
#[test]
fn a_claim_lost_while_a_plugin_prepares_stops_the_run_before_its_pod() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = dir.path().join("task.toml");
    std::fs::write(&task, SLEEP.task("lost-early", "timeout = \"60s\"")).unwrap();
    let run_id = "lost-early";
    let args = [
        "run",
        "--kubeconfig",
        &config,
        "--run-id",
        run_id,
        task.to_str().unwrap(),
    ];
    let mut cmd = kpo_command();
    cmd.env("KPO_STATE_DIR", dir.path().join("state"));
    let (child, seen) = started_saying(cmd, &args, "calling the plugin");
    rt.block_on(async {
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::default_namespaced(sim.client());
        crate::claims::take_over(&leases, run_id, "someone-else".into()).await;
    });
    // The next renewal (within 5 s) finds the Lease another's.
    let code = wait(child, Duration::from_secs(15));
    assert_eq!(code, Some(exit::CLAIMED), "{seen}");
    let left = rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&ListParams::default().labels(&format!("kpo.dev/run-id={run_id}")))
            .await
            .unwrap()
            .items
    });
    assert!(left.is_empty(), "a pod was created by a kpo that lost its claim");
    let pod_writes: Vec<_> = sim
        .record()
        .writes
        .into_iter()
        .filter(|w| w.path.contains("/pods"))
        .collect();
    assert!(pod_writes.is_empty(), "{pod_writes:?}");
}

/// SIGTERM while an interpreter blocks in a host call judging a finished run (its limit a minute
/// away): kpo ends within two seconds with 130, the run's pod already gone.
#[test]
fn sigterm_while_an_interpreter_judges_ends_the_run() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = dir.path().join("task.toml");
    let guest = plugin("hostile/slow-judge").display().to_string();
    std::fs::write(
        &task,
        format!("name = \"judged\"\nimage = \"busybox:1.36\"\ncommand = [\"true\"]\n[[interpret]]\npath = {guest:?}\ntimeout = \"60s\"\n"),
    )
    .unwrap();
    let args = ["run", "--kubeconfig", &config, task.to_str().unwrap()];
    let (child, seen) = started_saying(kpo_command(), &args, "calling the plugin");
    let sent = Instant::now();
    // SAFETY: kill(2) on a child of this process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait(child, Duration::from_secs(2));
    assert_eq!(code, Some(exit::INTERRUPTED), "{seen}");
    assert!(sent.elapsed() < Duration::from_secs(2));
    let left = rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&ListParams::default().labels(&format!("{}=judged", kpo::pod::LABEL_TASK)))
            .await
            .unwrap()
            .items
    });
    assert!(left.is_empty(), "pods left: {left:?}");
}
