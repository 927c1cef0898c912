//! Plugins: each example plugin through `kpo render` and `kpo run --sim`, every hostile guest
//! stopped with a clear error naming it and no pod created, the compile cache, and the tools
//! for plugin authors (`kpo plugin inspect`, `kpo plugin test`).

use std::path::Path;
use std::process::Output;

use k8s_openapi::api::core::v1::Pod;
use kpo::exit;
use kpo::plugin::{PluginError, PluginHost, TaskPlugins};
use kube::Api;
use serde_json::Value;

use crate::harness::plugin;

fn kpo(args: &[&str]) -> Output {
    crate::harness::kpo_command()
        .args(args)
        .output()
        .expect("kpo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a task file using the plugin entries `plugins` (TOML), returning its path.
fn task_file(dir: &Path, body: &str) -> String {
    let path = dir.join("task.toml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_owned()
}

fn entry(kind: &str, name: &str, extra: &str) -> String {
    format!(
        "[[{kind}]]\npath = {:?}\n{extra}\n",
        plugin(name).display().to_string()
    )
}

fn render(body: &str) -> (Output, Option<Pod>) {
    let dir = tempfile::tempdir().unwrap();
    let out = kpo(&["render", &task_file(dir.path(), body)]);
    let pod = serde_saphyr::from_str(&text(&out.stdout)).ok();
    (out, pod)
}

fn run_json(body: &str) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = kpo(&["run", "--sim", "--output", "json", &task_file(dir.path(), body)]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

const BASE: &str = "name = \"plug\"\nimage = \"busybox:1.36\"\n";

#[test]
fn add_labels_in_render_diff_and_run() {
    let body = format!(
        "{BASE}{}",
        entry(
            "mutate",
            "add-labels",
            "config = { labels = { cost-center = \"ml\" }, annotations = { \"example.com/owner\" = \"ops\" } }"
        )
    );
    let (out, pod) = render(&body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pod = pod.unwrap();
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["cost-center"], "ml");
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()["example.com/owner"],
        "ops"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = kpo(&["render", "--diff", &task_file(dir.path(), &body)]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("# plugin add_labels: 2 change(s)"), "{stdout}");
    assert!(
        stdout.contains("\"path\": \"/metadata/labels/cost-center\""),
        "{stdout}"
    );

    let (out, report) = run_json(&body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report["mutations"][0]["plugin"], "add_labels");
    assert_eq!(report["mutations"][0]["patch"][0]["op"], "add");
}

/// Plugin instances come from a pool that reserves address space up front (terabytes, never
/// committed). Where a `ulimit -v` refuses that, kpo maps each instance on its own instead:
/// the plugin still runs.
#[test]
fn plugins_run_where_address_space_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{BASE}{}",
        entry("mutate", "add-labels", "config = { labels = { team = \"ml\" } }")
    );
    let task = task_file(dir.path(), &body);
    // 64 GiB: room for kpo and an instance or two, none for the pool.
    let script = "ulimit -v 67108864 && exec \"$0\" render \"$1\"";
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", script, env!("CARGO_BIN_EXE_kpo"), &task]);
    for (key, value) in crate::harness::kpo_command().get_envs() {
        match value {
            Some(v) => sh.env(key, v),
            None => sh.env_remove(key),
        };
    }
    let out = sh.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pod: Pod = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(pod.metadata.labels.unwrap()["team"], "ml");
}

#[test]
fn resource_defaults_fill_only_what_is_missing() {
    let body = format!(
        "{BASE}[resources]\nlimits = {{ memory = \"1Gi\" }}\n{}",
        entry(
            "mutate",
            "resource-defaults",
            "config = { requests = { cpu = \"100m\" }, limits = { memory = \"256Mi\", cpu = \"1\" } }"
        )
    );
    let (out, pod) = render(&body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let resources = pod.unwrap().spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
    let limits = resources.limits.unwrap();
    assert_eq!(
        (limits["memory"].0.as_str(), limits["cpu"].0.as_str()),
        ("1Gi", "1")
    );
}

/// A mutator's refusal (a 0.1.0 component) stops the run before any pod exists; the run is
/// still a report, with `--output json` too, that says no pod was created.
#[test]
fn a_mutators_refusal_creates_no_pod_and_is_reported() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(kpo::sim::SimCluster::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, sim.kubeconfig()).unwrap();
    let body = format!(
        "{BASE}{}",
        entry("mutate", "js/inject-sidecar", "config = { name = \"x\" }")
    );
    let out = kpo(&[
        "run",
        "--kubeconfig",
        config.to_str().unwrap(),
        "--output",
        "json",
        &task_file(dir.path(), &body),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a report");
    assert_eq!(report["outcome"], "refused");
    assert_eq!(
        report["message"],
        "plugin inject_sidecar refused the pod: config.image is required; no pod was created"
    );
    assert!(
        stderr.contains("was refused: plugin inject_sidecar refused the pod: config.image is required; no pod was created (exit code 77)"),
        "{stderr}"
    );
    let pods = rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&Default::default())
            .await
            .unwrap()
            .items
    });
    assert!(pods.is_empty(), "a refused pod was created");
}

#[test]
fn exit_codes_turn_an_exit_into_skip_or_success() {
    let script =
        |code: i32| format!("[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"exit_code\": {code}}}'\n");
    let plugin = entry(
        "interpret",
        "exit-codes",
        "config = { skip = [42], success = [3] }",
    );
    let (out, report) = run_json(&format!("{BASE}{}{plugin}", script(42)));
    assert_eq!(out.status.code(), Some(exit::SKIPPED), "{}", text(&out.stderr));
    assert_eq!(report["decision"]["verdict"], "skip");
    assert_eq!(report["decision"]["outputs"]["exit_codes"]["exit_code"], 42);
    let (out, _) = run_json(&format!("{BASE}{}{plugin}", script(3)));
    assert_eq!(out.status.code(), Some(0));
    let (out, _) = run_json(&format!("{BASE}{}{plugin}", script(4)));
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn log_scan_fails_a_clean_exit_and_publishes_matches() {
    let body = format!(
        "{BASE}[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"starting\", \"ERROR: disk full\", \"done\"]}}'\n{}",
        entry("interpret", "log-scan", "config = { patterns = [\"ERROR\"] }")
    );
    let (out, report) = run_json(&body);
    assert_eq!(out.status.code(), Some(exit::FAILED), "{}", text(&out.stderr));
    assert_eq!(
        report["outcome"], "succeeded",
        "kpo's own reading stays in the report"
    );
    assert_eq!(report["decision"]["verdict"], "failure");
    assert_eq!(
        report["decision"]["outputs"]["log_scan"]["matches"],
        serde_json::json!(["ERROR: disk full"])
    );
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("judged failure by log_scan"),
        "{report}"
    );
}

/// Loads `guest` as the only mutator of a task and runs it on the task's pod.
fn mutate_with(guest: &str, extra: &str) -> Result<Pod, PluginError> {
    mutate_in(guest, extra, Default::default())
}

/// [`mutate_with`] on a machine whose environment is `environment`.
fn mutate_in(
    guest: &str,
    extra: &str,
    environment: std::collections::BTreeMap<String, String>,
) -> Result<Pod, PluginError> {
    let dir = tempfile::tempdir().unwrap();
    let path = task_file(dir.path(), &format!("{BASE}{}", entry("mutate", guest, extra)));
    let task = kpo::task::load(Path::new(&path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let host = PluginHost::new(crate::harness::plugin_cache())?.with_environment(environment);
    let plugins = rt.block_on(TaskPlugins::load_in(std::sync::Arc::new(host), &task))?;
    let identity = kpo::pod::RunIdentity::generate("plug");
    let pod = kpo::pod::build(&task, &identity, "default");
    let ctx = kpo::plugin::context("plug", "default", &identity.run_id);
    rt.block_on(plugins.mutate(pod, &ctx)).map(|m| m.pod)
}

/// Every call gets a fresh instance, even where its memory is a pool's slot reused: a guest that
/// leaves a mark past its starting memory never finds it in a later call — one after another,
/// and twenty at once, more than the pool holds.
#[test]
fn no_call_sees_what_an_earlier_call_left_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = task_file(
        dir.path(),
        &format!("{BASE}{}", entry("mutate", "hostile/remember", "")),
    );
    let task = kpo::task::load(Path::new(&path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let host = PluginHost::new(crate::harness::plugin_cache()).unwrap();
    let plugins = std::sync::Arc::new(
        rt.block_on(TaskPlugins::load_in(std::sync::Arc::new(host), &task))
            .unwrap(),
    );
    let identity = kpo::pod::RunIdentity::generate("plug");
    let pod = kpo::pod::build(&task, &identity, "default");
    let ctx = kpo::plugin::context("plug", "default", &identity.run_id);
    for call in 0..5 {
        let mutated = rt.block_on(plugins.mutate(pod.clone(), &ctx));
        assert!(mutated.is_ok(), "call {call}: {}", mutated.unwrap_err());
    }
    let calls = (0..20).map(|_| {
        let (plugins, pod, ctx) = (plugins.clone(), pod.clone(), ctx.clone());
        rt.spawn(async move { plugins.mutate(pod, &ctx).await.map(|_| ()) })
    });
    for (call, answer) in calls.collect::<Vec<_>>().into_iter().enumerate() {
        let answer = rt.block_on(answer).unwrap();
        assert!(answer.is_ok(), "call {call} at once: {}", answer.unwrap_err());
    }
}

fn error_of(guest: &str, extra: &str) -> String {
    match mutate_with(guest, extra) {
        Ok(_) => panic!("{guest} was not stopped"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let e = error_of("hostile/spin", "timeout = \"200ms\"");
    assert_eq!(e, "plugin hostile_spin exceeded its time limit of 200ms");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let e = error_of("hostile/balloon", "memory = \"16Mi\"");
    assert_eq!(e, "plugin hostile_balloon exceeded its memory limit of 16 MiB");
}

#[test]
fn stack_overflow_is_a_crash() {
    let e = error_of("hostile/stack", "");
    assert!(e.starts_with("plugin hostile_stack crashed:"), "{e}");
}

#[test]
fn a_panic_is_a_crash_in_the_guests_words() {
    let e = error_of("hostile/trap", "");
    assert!(e.starts_with("plugin hostile_trap crashed:"), "{e}");
    assert!(
        e.contains("panicked at hostile/trap/src/lib.rs:15:9: this plugin always crashes (wasm trap:"),
        "{e}"
    );
}

/// A JavaScript exception, with its message and where it was thrown, in the error line, the
/// report (enforce mode: the run fails, 76; monitor mode: the pod goes, the check says why) and
/// the journal: `kpo list` shows the crashed run as finished.
#[test]
fn an_exception_is_a_crash_in_the_guests_words() {
    let said = "the JavaScript policy fell over";
    let body = format!("{BASE}{}", entry("policy", "js/throw", ""));
    let (out, report) = run_json(&body);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::PLUGIN_FAILED), "{stderr}");
    assert!(stderr.contains("kpo: error: plugin throw crashed: "), "{stderr}");
    assert!(stderr.contains(said) && stderr.contains("throw.js:7"), "{stderr}");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(message.contains(said), "{report}");
    let run_id = stderr
        .split("kpo: run ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("kpo names the run");
    let list = text(&kpo(&["list"]).stdout);
    let row = list
        .lines()
        .find(|l| l.starts_with(run_id))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.ends_with("finished, exit code 76"), "{row}");

    let monitor = format!("{BASE}{}", entry("policy", "js/throw", "mode = \"monitor\""));
    let (out, report) = run_json(&monitor);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reason = report["policies"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(said), "{report}");
}

#[test]
fn invalid_json_is_rejected() {
    let e = error_of("hostile/garbage", "");
    assert!(
        e.starts_with("plugin hostile_garbage returned an invalid result: not JSON"),
        "{e}"
    );
}

#[test]
fn huge_output_is_rejected() {
    let e = error_of("hostile/huge", "");
    assert!(
        e.contains("hostile_huge returned an invalid result: 8388608 bytes, more than the limit"),
        "{e}"
    );
}

#[test]
fn changing_the_namespace_is_forbidden() {
    let e = error_of("hostile/sneaky", "");
    assert_eq!(
        e,
        "plugin hostile_sneaky changed /metadata/namespace, which it may not change (it identifies the run)"
    );
}

/// Each field kpo owns, changed by a mutator (the `reach` guest sets what its config names):
/// refused before any pod exists, exit 76, the field named. Lowering the deadline is allowed.
#[test]
fn a_mutator_may_not_change_what_kpo_owns() {
    let owner = r#"[{ apiVersion = "v1", kind = "ConfigMap", name = "holder", uid = "u" }]"#;
    let cases = [
        (
            r#"set = { "/spec/restartPolicy" = "Always" }"#,
            "/spec/restartPolicy",
        ),
        (
            r#"set = { "/metadata/labels/kpo.dev~1attempt" = "999" }"#,
            "/metadata/labels/kpo.dev~1attempt",
        ),
        (
            r#"set = { "/metadata/labels/kpo.dev~1batch" = "other" }"#,
            "/metadata/labels/kpo.dev~1batch",
        ),
        (
            r#"remove = ["/metadata/labels/kpo.dev~1run-id"]"#,
            "/metadata/labels/kpo.dev~1run-id",
        ),
        (
            r#"set = { "/metadata/annotations/kpo.dev~1on-finish" = "keep" }"#,
            "/metadata/annotations/kpo.dev~1on-finish",
        ),
        (
            r#"set = { "/metadata/annotations/kpo.dev~1stopped-by" = "kpo delete" }"#,
            "/metadata/annotations/kpo.dev~1stopped-by",
        ),
        (
            r#"set = { "/metadata/labels/app.kubernetes.io~1managed-by" = "me" }"#,
            "/metadata/labels/app.kubernetes.io~1managed-by",
        ),
        (
            r#"set = { "/metadata/finalizers" = ["example.com/hold"] }"#,
            "/metadata/finalizers",
        ),
        (
            &format!(r#"set = {{ "/metadata/ownerReferences" = {owner} }}"#),
            "/metadata/ownerReferences",
        ),
        (
            r#"set = { "/spec/activeDeadlineSeconds" = 999999 }"#,
            "/spec/activeDeadlineSeconds",
        ),
        (
            r#"remove = ["/spec/activeDeadlineSeconds"]"#,
            "/spec/activeDeadlineSeconds",
        ),
        (
            r#"set = { "/spec/containers/1/image" = "evil:1" }"#,
            "the result sidecar (container kpo-result)",
        ),
        (
            r#"set = { "/spec/volumes/0/emptyDir" = { medium = "Memory" } }"#,
            "the result volume (volume kpo-result)",
        ),
        (
            r#"set = { "/spec/containers/0/volumeMounts/0/mountPath" = "/elsewhere" }"#,
            "the result mount of container base",
        ),
    ];
    let task = "[run]\ntimeout = \"1h\"\n[result]\nvia = \"sidecar\"\n";
    for (set, field) in cases {
        let extra = format!("config = {{ {set} }}");
        let (out, _) = render(&format!(
            "{BASE}{task}{}",
            entry("mutate", "hostile/reach", &extra)
        ));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::PLUGIN_FAILED), "{set}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "plugin hostile_reach changed {field}, which it may not change ("
            )),
            "{set}: {stderr}"
        );
    }
    let termination = "[result]\nvia = \"termination-message\"\n";
    let extra =
        r#"config = { set = { "/spec/containers/0/terminationMessagePolicy" = "FallbackToLogsOnError" } }"#;
    let (out, _) = render(&format!(
        "{BASE}{termination}{}",
        entry("mutate", "hostile/reach", extra)
    ));
    assert!(
        text(&out.stderr).contains("changed terminationMessagePolicy of container base"),
        "{}",
        text(&out.stderr)
    );
    // Lowering the deadline is a mutator's to do.
    let extra = r#"config = { set = { "/spec/activeDeadlineSeconds" = 60 } }"#;
    let (out, pod) = render(&format!(
        "{BASE}{task}{}",
        entry("mutate", "hostile/reach", extra)
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pod.unwrap().spec.unwrap().active_deadline_seconds, Some(60));
}

#[test]
fn writable_paths_limit_a_mutator() {
    let e = error_of(
        "add-labels",
        "writable = [\"/spec/tolerations\"]\nconfig = { labels = { a = \"b\" } }",
    );
    assert!(e.starts_with("plugin add_labels changed /metadata/labels"), "{e}");
    assert!(
        mutate_with(
            "add-labels",
            "writable = [\"/metadata/labels\"]\nconfig = { labels = { a = \"b\" } }"
        )
        .is_ok()
    );
}

#[test]
fn files_are_out_of_reach() {
    let e = error_of("hostile/open-file", "");
    assert!(
        e.starts_with("plugin hostile_open_file refused the pod: cannot open /etc/passwd"),
        "{e}"
    );
    assert!(!e.contains("ESCAPED"), "{e}");
}

#[test]
fn sockets_are_out_of_reach() {
    let e = error_of("hostile/socket", "");
    assert!(
        e.starts_with("plugin hostile_socket refused the pod: cannot connect"),
        "{e}"
    );
    assert!(!e.contains("ESCAPED"), "{e}");
}

#[test]
fn environment_clock_and_files_only_when_granted() {
    let environment = || [("KPO_SNOOP_VISIBLE".to_owned(), "yes".to_owned())].into();
    let annotations = |pod: Pod| pod.metadata.annotations.unwrap();
    let denied = annotations(mutate_in("hostile/snoop", "", environment()).unwrap());
    assert_eq!(denied["snoop/env"], "");
    assert_eq!(denied["snoop/clock"], "0");
    assert_eq!(denied["snoop/files"], "0");

    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("a.txt"), "a").unwrap();
    let grant = format!(
        "[mutate.grant]\nenv = [\"KPO_SNOOP_VISIBLE\"]\nclock = true\ndirs = [\"{}:/data\"]",
        data.path().display()
    );
    let granted = annotations(mutate_in("hostile/snoop", &grant, environment()).unwrap());
    assert_eq!(granted["snoop/env"], "KPO_SNOOP_VISIBLE=yes");
    assert!(granted["snoop/clock"].parse::<u64>().unwrap() > 1_700_000_000);
    assert_eq!(granted["snoop/files"], "1");
}

#[test]
fn a_plugin_of_the_wrong_world_is_named() {
    let e = error_of("exit-codes", "");
    assert_eq!(
        e,
        "plugin exit_codes is used as a mutator but does not export kpo:plugin/mutator (0.2.0 or 0.1.0) (it exports: interpreter@0.1.0)"
    );
}

#[test]
fn a_core_module_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let body = format!("{BASE}[[mutate]]\npath = {:?}\n", module.display().to_string());
    let task = kpo::task::load(Path::new(&task_file(dir.path(), &body))).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(TaskPlugins::load(&task, crate::harness::plugin_cache()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("plugin core: not a WebAssembly component"), "{e}");
}

#[test]
fn a_missing_plugin_file_is_a_task_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = kpo(&[
        "validate",
        &task_file(dir.path(), &format!("{BASE}[[mutate]]\npath = \"nope.wasm\"\n")),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::CONFIG));
    assert!(
        stderr.contains("task.toml:4:1: mutate[0].path: no plugin file at"),
        "{stderr}"
    );
}

#[test]
fn hostile_mutators_leave_no_pod_behind() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(kpo::sim::SimCluster::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, sim.kubeconfig()).unwrap();
    for guest in ["hostile/trap", "hostile/garbage", "hostile/spin"] {
        let body = format!("{BASE}{}", entry("mutate", guest, "timeout = \"100ms\""));
        let out = kpo(&[
            "run",
            "--kubeconfig",
            config.to_str().unwrap(),
            &task_file(dir.path(), &body),
        ]);
        assert_eq!(
            out.status.code(),
            Some(exit::PLUGIN_FAILED),
            "{guest}: {}",
            text(&out.stderr)
        );
    }
    let pods = rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&Default::default())
            .await
            .unwrap()
            .items
    });
    assert!(pods.is_empty());
}

#[test]
fn the_second_load_comes_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    let spec = kpo::task::PluginSpec {
        config: serde_json::json!({}),
        ..kpo::task::PluginSpec::at(&plugin("add-labels"))
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(!rt.block_on(host.load(&spec)).unwrap().from_cache);
    assert!(rt.block_on(host.load(&spec)).unwrap().from_cache);
    // A new process (a new host) finds it too.
    let other = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    assert!(rt.block_on(other.load(&spec)).unwrap().from_cache);
}

/// The cache entry of one component, its file name.
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// Another component's compiled code put in place of a cache entry (what a swap between a
/// check and a load would do) is never loaded: the entry is sealed for its own component.
#[test]
fn a_swapped_cache_entry_is_not_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let spec = |name: &str| kpo::task::PluginSpec::at(&plugin(name));
    let (labels, privileged) = (spec("add-labels"), spec("hostile/escalate"));
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    rt.block_on(host.load(&labels)).unwrap();
    let [labels_entry]: [std::path::PathBuf; 1] = entries(cache.path()).try_into().unwrap();
    rt.block_on(host.load(&privileged)).unwrap();
    let other = entries(cache.path())
        .into_iter()
        .find(|p| *p != labels_entry)
        .unwrap();
    std::fs::copy(&other, &labels_entry).unwrap();
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    let loaded = rt.block_on(host.load(&labels)).unwrap();
    assert!(!loaded.from_cache, "a swapped entry was loaded");
    assert!(loaded.serves(kpo::plugin::PluginRole::Mutator));
    // Compiled again and sealed again: the next load is from the cache.
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    assert!(rt.block_on(host.load(&labels)).unwrap().from_cache);
}

/// A cache folder others may write to is not used: nothing read from it, nothing written.
#[cfg(unix)]
#[test]
fn a_cache_folder_others_may_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let spec = kpo::task::PluginSpec::at(&plugin("add-labels"));
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    rt.block_on(host.load(&spec)).unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    assert!(!rt.block_on(host.load(&spec)).unwrap().from_cache);
    let shared = cache.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
    let host = PluginHost::new(Some(shared.clone())).unwrap();
    rt.block_on(host.load(&spec)).unwrap();
    assert!(
        entries(&shared).is_empty(),
        "kpo wrote into a folder others may write"
    );
}

#[test]
fn inspect_names_roles_and_imports() {
    let out = kpo(&["plugin", "inspect", plugin("log-scan").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("roles:    interpreter"), "{stdout}");
    assert!(stdout.contains("contract: interpreter@0.1.0"), "{stdout}");
    assert!(
        stdout.contains("imports:  kpo:plugin/log@0.1.0, kpo:plugin/types@0.1.0"),
        "{stdout}"
    );
    assert!(stdout.contains("kpo:plugin/interpreter@0.1.0"), "{stdout}");
}

#[test]
fn plugin_test_compares_with_a_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(&pod, "metadata:\n  name: p\n  namespace: default\nspec:\n  containers:\n  - name: base\n    image: busybox\n").unwrap();
    let golden = dir.path().join("expected.json");
    let wasm = plugin("add-labels");
    let args = |update: bool| {
        let mut a = vec![
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--pod",
            pod.to_str().unwrap(),
            "--config",
            "{\"labels\": {\"a\": \"b\"}}",
            "--expect",
            golden.to_str().unwrap(),
        ];
        if update {
            a.push("--update");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| crate::harness::kpo_command().args(a).output().unwrap();
    assert_eq!(run(args(true)).status.code(), Some(0));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    assert_eq!(written["metadata"]["labels"]["a"], "b");
    assert_eq!(run(args(false)).status.code(), Some(0));
    std::fs::write(
        &golden,
        serde_json::to_string(&serde_json::json!({"metadata": {"name": "p"}})).unwrap(),
    )
    .unwrap();
    let out = run(args(false));
    assert_eq!(out.status.code(), Some(exit::FAILED));
    assert!(text(&out.stderr).contains("MISMATCH"));
    assert!(text(&out.stdout).contains("\"op\""), "{}", text(&out.stdout));

    let outcome = dir.path().join("outcome.json");
    std::fs::write(
        &outcome,
        r#"{"status": "succeeded", "log_tail": ["fine", "ERROR x"]}"#,
    )
    .unwrap();
    let golden = dir.path().join("judgement.json");
    std::fs::write(&golden, r#"{"verdict": "failure", "reason": "log matches [\"ERROR\"]: ERROR x", "outputs": {"matches": ["ERROR x"]}}"#).unwrap();
    let out = crate::harness::kpo_command()
        .args([
            "plugin",
            "test",
            plugin("log-scan").to_str().unwrap(),
            "--outcome",
            outcome.to_str().unwrap(),
        ])
        .args([
            "--config",
            "{\"patterns\": [\"ERROR\"]}",
            "--expect",
            golden.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn plugins_in_python_and_javascript() {
    // One test for both: the CPython component takes a while to compile the first time, and
    // the cache (shared by this test process) then serves every later load.
    let body = format!(
        // The interpreter decides on a field of the task's result document (rows = 0).
        "{BASE}[result]\nrequired = true\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"working\"], \"write_path\": \"/kpo/result.json\", \"write\": \"{{\\\"rows\\\": 0, \\\"status\\\": \\\"ok\\\"}}\"}}'\n{}{}",
        entry(
            "mutate",
            "js/inject-sidecar",
            "config = { name = \"shipper\", image = \"busybox:1.36\" }"
        ),
        entry(
            "interpret",
            "python/result-check",
            "memory = \"128Mi\"\nconfig = { checks = { rows = { min = 1 }, status = { equals = \"ok\" } } }"
        ),
    );
    let (out, pod) = render(&body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names: Vec<String> = pod
        .unwrap()
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["base", "shipper"]);

    let (out, report) = run_json(&body);
    assert_eq!(out.status.code(), Some(exit::FAILED), "{}", text(&out.stderr));
    assert_eq!(report["decision"]["verdict"], "failure");
    assert_eq!(report["decision"]["reason"], "rows is 0, below the minimum 1");
    assert_eq!(
        report["decision"]["outputs"]["result_check"]["result"]["status"],
        "ok"
    );

    // The JavaScript plugin refuses a pod when its config lacks an image.
    let body = format!(
        "{BASE}{}",
        entry("mutate", "js/inject-sidecar", "config = { name = \"x\" }")
    );
    let (out, _) = render(&body);
    assert_eq!(out.status.code(), Some(exit::REFUSED));
    assert!(
        text(&out.stderr).contains("plugin inject_sidecar refused the pod: config.image is required"),
        "{}",
        text(&out.stderr)
    );
}

/// A recorded outcome with a status the contract does not know is named, with the known ones.
#[test]
fn plugin_test_names_an_unknown_status() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = dir.path().join("outcome.json");
    std::fs::write(&outcome, r#"{"status": "lost", "exit_code": 1}"#).unwrap();
    let golden = dir.path().join("golden.json");
    let out = kpo(&[
        "plugin",
        "test",
        plugin("exit-codes").to_str().unwrap(),
        "--outcome",
        outcome.to_str().unwrap(),
        "--expect",
        golden.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::CONFIG), "{stderr}");
    assert!(
        stderr.contains("status `lost` is none of succeeded, failed, never_started, timed_out, rejected, refused, interrupted"),
        "{stderr}"
    );
}
