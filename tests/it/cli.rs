//! The `kpo` binary as a user runs it: exit codes, output streams, signals, help.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_openapi::api::core::v1::Pod;
use kpo::sim::SimCluster;
use kube::Api;

fn kpo() -> Command {
    let mut cmd = crate::harness::kpo_command();
    cmd.env_remove("RUST_LOG")
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    cmd
}

fn examples(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> Output {
    kpo().args(args).output().expect("kpo runs")
}

#[test]
fn hello_example_runs_on_the_simulated_cluster() {
    let out = run(&["run", "--sim", examples("hello.toml").to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["hello from kpo", "step 1", "step 2", "step 3", "done"]
    );
    assert!(stderr.contains("SIMULATED cluster"), "{stderr}");
    assert!(
        stderr.contains("Running") && stderr.contains("Succeeded"),
        "{stderr}"
    );
}

#[test]
fn failing_example_exits_with_the_container_code_and_says_why() {
    let out = run(&["run", "--sim", examples("failing.toml").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("base exited 3 (Error)"), "{stderr}");
    assert!(stderr.contains("| input file missing"), "{stderr}");
    assert!(stderr.contains("keeping pod"), "{stderr}");
}

#[test]
fn json_output_is_a_report_on_stdout_with_logs_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let out = run(&[
        "run",
        "--sim",
        "--output",
        "json",
        "--log-file",
        log.to_str().unwrap(),
        examples("hello.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is only the JSON report");
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["task"], "hello");
    assert_eq!(report["cleanup"], "deleted");
    let phases: Vec<&str> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert!(
        phases.contains(&"Running") && phases.contains(&"Submitted"),
        "{phases:?}"
    );
    assert_eq!(report["containers"][0]["exit_code"], 0);
    assert!(text(&out.stderr).contains("step 3"));
    let copy = std::fs::read_to_string(log).unwrap();
    assert_eq!(copy.lines().next(), Some("[base] hello from kpo"));
    assert_eq!(copy.lines().count(), 5);
}

/// Asserts kpo exited 69 (no cluster) saying `says`; its stderr.
fn unavailable(out: &Output, says: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::CLUSTER_UNAVAILABLE),
        "{stderr}"
    );
    assert!(stderr.contains(says), "{stderr}");
    stderr
}

#[test]
fn no_cluster_is_a_clear_error_that_mentions_sim() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {}\ncurrent-context: c\n",
    )
    .unwrap();
    let out = kpo()
        .args(["run", examples("hello.toml").to_str().unwrap()])
        .env("KUBECONFIG", &config)
        .output()
        .unwrap();
    let stderr = unavailable(&out, "cannot reach the cluster at http://127.0.0.1:9");
    assert!(stderr.contains("--sim"), "{stderr}");

    let out = kpo()
        .args(["run", examples("hello.toml").to_str().unwrap()])
        .env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stderr = unavailable(&out, "no cluster configured");
    assert!(stderr.contains("--sim"), "{stderr}");
}

#[test]
fn help_teaches_the_first_command_and_exit_codes() {
    let top = text(&run(&["--help"]).stdout);
    assert!(top.contains("kpo run --sim examples/hello.toml"), "{top}");
    let help = text(&run(&["run", "--help"]).stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "--sim",
        "--output",
        "--log-file",
        "125 never started",
        "130 interrupted",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
}

#[test]
fn render_prints_a_valid_pod_without_a_cluster() {
    let out = run(&["render", examples("hello.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let raw: serde_json::Value = serde_saphyr::from_str(&text(&out.stdout)).expect("render prints YAML");
    let pod: Pod = serde_json::from_value(raw.clone()).expect("render prints a Pod");
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].name, "base");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["kpo.dev/task"], "hello");
    assert!(pod.metadata.name.as_deref().unwrap().starts_with("hello-"));
    // k8s-openapi drops fields a Pod does not have: a lossless round trip means every key in
    // the YAML is a real Pod field with the right type.
    assert_eq!(serde_json::to_value(&pod).unwrap(), raw);
}

#[test]
fn validate_accepts_the_examples() {
    // Some examples use the plugins: build them first.
    for p in ["add-labels", "js/inject-sidecar", "python/result-check"] {
        crate::harness::plugin(p);
    }
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = run(&["validate", path.to_str().unwrap()]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                path.display(),
                text(&out.stderr)
            );
        }
    }
}

/// Starts `kpo run` on a long task, waits for Running, sends SIGINT, and checks exit code 130
/// and that the pod is gone (or terminating) on the cluster.
pub fn ctrl_c_deletes_the_pod_on(kubeconfig: &str, image: &str) {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("long.toml");
    std::fs::write(
        &task,
        format!(
            "name = \"ctrl-c\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"echo started; sleep 60\"]\ntermination_grace_period = 3\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"started\"], \"duration_ms\": 60000}}'\n"
        ),
    )
    .unwrap();
    let mut child = kpo()
        .args(["run", "--kubeconfig", kubeconfig, task.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut pod_name = None;
    let mut seen = String::new();
    for line in (&mut stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        // `Submitted (pod NAMESPACE/NAME)`
        if let Some(rest) = line.split("Submitted (pod ").nth(1) {
            pod_name = rest.trim_end_matches(')').split('/').nth(1).map(String::from);
        }
        if line.contains("Running") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(kpo::exit::INTERRUPTED), "{seen}{rest}");
    assert!(rest.contains("deleted pod"), "{seen}{rest}");
    let pod_name = pod_name.expect("kpo names the pod");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = crate::harness::e2e_client(kubeconfig).await;
        let api: Api<Pod> = Api::default_namespaced(client);
        let pod = api.get_opt(&pod_name).await.unwrap();
        assert!(
            pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            "pod {pod_name} left running"
        );
    });
}

/// A simulated cluster served from this test process, and a kubeconfig file for `kpo` to use.
/// `--in-cluster` asks for the pod's service account and nothing else: a working kubeconfig in
/// KUBECONFIG is not used instead, and outside a pod that is a clear error.
#[test]
fn in_cluster_ignores_a_kubeconfig_and_says_when_not_in_a_pod() {
    let (_rt, _sim, _dir, config) = sim_with_kubeconfig();
    let hello = examples("hello.toml");
    let out = kpo()
        .args(["run", "--in-cluster", hello.to_str().unwrap()])
        .env("KUBECONFIG", &config)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    unavailable(&out, "--in-cluster: not running inside a pod");
    let out = kpo()
        .args(["run", hello.to_str().unwrap()])
        .env("KUBECONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

pub fn sim_with_kubeconfig() -> (tokio::runtime::Runtime, SimCluster, tempfile::TempDir, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(SimCluster::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, sim.kubeconfig()).unwrap();
    let config = config.to_str().unwrap().to_owned();
    (rt, sim, dir, config)
}

#[test]
fn ctrl_c_deletes_the_pod() {
    let (rt, sim, _dir, config) = sim_with_kubeconfig();
    ctrl_c_deletes_the_pod_on(&config, "busybox:1.36");
    // Through the sim's own API: nothing with the task's label is left.
    let left = rt.block_on(async {
        // No pod may be listed once kpo has exited: no grace for the check either.
        let api: Api<Pod> = Api::default_namespaced(sim.client());
        api.list(&Default::default()).await.unwrap().items
    });
    assert!(left.is_empty(), "{left:?}");
}

/// `render --server`: the API server's dry run fills in its defaults and stores nothing.
pub fn render_server_on(kubeconfig: &str, image: &str) {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("t.toml");
    let render_server = || {
        let args = [
            "render",
            "--server",
            "--kubeconfig",
            kubeconfig,
            task.to_str().unwrap(),
        ];
        kpo().args(args).output().unwrap()
    };
    std::fs::write(&task, format!("name = \"dry\"\nimage = \"{image}\"\n")).unwrap();
    let out = render_server();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pod: Pod = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let base = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        base.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        pod.spec.as_ref().unwrap().service_account_name.as_deref(),
        Some("default")
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let api: Api<Pod> = Api::default_namespaced(crate::harness::e2e_client(kubeconfig).await);
        assert!(
            api.get_opt(pod.metadata.name.as_deref().unwrap())
                .await
                .unwrap()
                .is_none(),
            "dry run created a pod"
        );
    });

    std::fs::write(
        &task,
        "name = \"dry\"\nimage = \"busybox\"\npod_template = \"bad.yaml\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "spec:\n  containers:\n  - name: base\n  - name: extra\n",
    )
    .unwrap();
    let out = render_server();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::REJECTED), "{stderr}");
    assert!(
        stderr.contains("spec.containers[1].image: Required value"),
        "{stderr}"
    );
}

#[test]
fn render_server() {
    let (_rt, _sim, _dir, config) = sim_with_kubeconfig();
    render_server_on(&config, "busybox:1.36");
}

#[test]
fn container_bytes_reach_stdout_and_the_log_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("bytes.toml");
    std::fs::write(
        &task,
        r#"name = "bytes"
image = "busybox:1.36"
[annotations]
"container.sim.kpo.dev/base" = '{"output": "before\nbad \u00ff\u00fe bytes\n50%\r100%\nno newline at the end"}'
"#,
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let out = run(&[
        "run",
        "--sim",
        "--log-file",
        log.to_str().unwrap(),
        task.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        out.stdout,
        b"before\nbad \xff\xfe bytes\n50%\r100%\nno newline at the end"
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        b"[base] before\n[base] bad \xff\xfe bytes\n[base] 50%\r100%\n[base] no newline at the end\n"
    );
    let said = text(&out.stderr)
        .matches("may be incomplete: it ends in the middle of a line")
        .count();
    assert_eq!(said, 1, "{}", text(&out.stderr));
}

#[test]
fn diagnostics_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let out = run(&["run", "--sim", "-v", examples("hello.toml").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("DEBUG"), "-v shows kpo's debug log: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escape codes in piped output: {stderr}"
    );
}

#[test]
fn validate_warns_what_a_restricted_namespace_would_refuse() {
    let out = run(&["validate", examples("hello.toml").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a warning is not an error: {stderr}");
    assert!(
        stderr.contains("restricted Pod Security Standard would refuse"),
        "{stderr}"
    );
    assert!(stderr.contains("allowPrivilegeEscalation != false"), "{stderr}");
    assert!(
        stderr.contains("(containers \"base\")"),
        "only the task's own container: {stderr}"
    );
}
