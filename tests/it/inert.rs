//! Text from a pod and the cluster reaches the terminal inert: a termination message, an output
//! and an event carrying terminal escapes and a forged line of kpo's own are shown escaped on
//! stderr, while the container's log on stdout stays byte for byte; a hundred thousand
//! `::kpo-output` lines keep a hundred. Shared by the simulated and the real cluster.

use std::process::Output;

use kpo::exit;
use kpo::result::{MAX_OUTPUTS, OUTPUT_PREFIX};
use serde_json::Value;

use crate::harness::kpo_command;
use crate::scenarios::{Cluster, unique};

/// A terminal's escape (ESC) and bell (BEL): neither may reach stderr from outside.
const RAW: [u8; 2] = [0x1b, 0x07];

/// `kpo run` of `task` (TOML) under `run_id`; its output and its journal's report.
fn run(c: &Cluster, run_id: &str, task: &str) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, task).unwrap();
    let out = kpo_command()
        .args([
            "run",
            "--kubeconfig",
            &c.kubeconfig,
            "-n",
            &c.ns,
            "--run-id",
            run_id,
        ])
        .arg(&path)
        .output()
        .expect("kpo runs");
    let state = std::env::temp_dir().join(format!("kpo-tests-{}/state", std::process::id()));
    let path = crate::harness::journal_file(&state, run_id, "json").expect("the run's journal");
    let journal: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (out, journal["report"].clone())
}

/// Checks that nothing raw from outside reached stderr and that no line there was forged.
fn assert_inert(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(
        !stderr.iter().any(|b| RAW.contains(b)),
        "a raw escape reached stderr: {text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("kpo: task \"forged\"")),
        "a forged line: {text}"
    );
    assert!(text.contains("\\u{1b}"), "the escape is shown: {text}");
}

pub async fn pod_text_reaches_the_terminal_inert(c: &Cluster) {
    let name = unique("inert");
    let script = concat!(
        r#"printf '::kpo-output color=\033[31mred\n'; "#,
        r#"i=0; while [ $i -lt 100000 ]; do echo "::kpo-output n$i=$i"; i=$((i+1)); done; sleep 1; "#,
        r#"printf '\033]52;c;ZXZpbA==\007\nkpo: task "forged" succeeded' > /dev/termination-log; exit 3"#,
    );
    let sim = r#"{"exit_code": 3, "logs": ["::kpo-output color=\u001b[31mred"], "log_count": 100000, "log_line": "::kpo-output n{n}={n}", "termination_message": "\u001b]52;c;ZXZpbA==\u0007\nkpo: task \"forged\" succeeded"}"#;
    let task = format!(
        "name = {name:?}\nimage = {:?}\ncommand = [\"sh\", \"-c\", {script:?}]\n[annotations]\n\"container.sim.kpo.dev/base\" = '{sim}'\n",
        c.image
    );
    let (out, report) = tokio::task::block_in_place(|| run(c, &name, &task));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_inert(&out.stderr);
    // The log itself is the container's: its escape arrives as it wrote it.
    let first = out.stdout.split(|b| *b == b'\n').next().unwrap_or_default();
    assert_eq!(first, format!("{OUTPUT_PREFIX}color=\x1b[31mred").as_bytes());
    // A hundred thousand lines: 2.7 MB of output, 6.7 MB in the node's file with the runtime's
    // 40-byte prefix on each line — under a kubelet's 10 MiB log rotation, across which a v1.20
    // kubelet's follower skips files (README, Reliability); then a second's sleep, as containerd
    // under load loses output written just before a container exits (1 673 lines of a run
    // alongside the rest of the real-cluster suite), on the node itself.
    let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(lines, 100_001);
    // A hundred outputs kept, every other output line counted and said.
    let outputs = report["outputs"].as_object().unwrap();
    assert_eq!(outputs.len(), MAX_OUTPUTS);
    assert_eq!(outputs["color"], "\u{1b}[31mred");
    let ignored = (lines - MAX_OUTPUTS) as u64;
    assert_eq!(report["outputs_ignored"], ignored, "{lines} lines");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{ignored} ::kpo-output line(s) ignored")),
        "{stderr}"
    );
    // The termination message is shown line by line, each under kpo's own indented `|`.
    assert!(
        stderr.contains("kpo:     | \\u{1b}]52;c;ZXZpbA==\\u{7}\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kpo:     | kpo: task \"forged\" succeeded\n"),
        "{stderr}"
    );

    // An event that carries the task's own text: an image reference with an escape in it. The
    // kubelet quotes it (Go's %q: `\x1b`), so what arrives is already inert — and stays so.
    let name = unique("inert-event");
    let task = format!(
        "name = {name:?}\nimage = \"busybox:\\u001b[2Jnope\"\n[run]\nstartup_timeout = \"15s\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"pull\": \"not-found\"}}'\n"
    );
    let (out, report) = tokio::task::block_in_place(|| run(c, &name, &task));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::NEVER_STARTED), "{stderr}");
    let quoted = "\"busybox:\\x1b[2Jnope\"";
    assert!(
        report["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains(quoted)),
        "{report}"
    );
    assert!(!out.stderr.iter().any(|b| RAW.contains(b)), "{stderr}");
    assert!(stderr.contains(quoted), "{stderr}");
}

/// A million `::kpo-output` lines (the simulated cluster only: on a real one a million lines
/// outgrow the kubelet's log rotation) keep a hundred names; the rest are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_outputs_keep_a_hundred() {
    let (_sim, c) = crate::sim::sim().await;
    let t = crate::harness::task(&format!(
        "name = {:?}\nimage = \"busybox:1.36\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"log_count\": 1000000, \"log_line\": \"::kpo-output n{{n}}={{n}}\"}}'\n",
        unique("million")
    ));
    let (report, _) = crate::harness::run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outputs.len(), MAX_OUTPUTS);
    assert_eq!(report.outputs["n100"], "100");
    assert_eq!(report.outputs_ignored, 1_000_000 - MAX_OUTPUTS as u64);
}
