//! Plugin costs on this machine, per example plugin: cold compile, load from the on-disk
//! cache, a fresh instance, and one full mutate/interpret call (JSON in and out, checks, patch)
//! on the ~2 KB pod of `examples/etl.toml`; and the same label mutation done natively in Rust as
//! the floor. Prints a Markdown table for the README.
//!
//! Build the plugins first (`cargo test` does, or see plugins/*/README.md), then:
//!     cargo bench --bench plugins
//!     cargo bench --bench plugins -- deny    # only the plugins whose name holds `deny`

mod measure;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kpo::plugin::{self, Loaded, PluginHost, PluginRole};
use kpo::report::{ContainerReport, RunReport};
use kpo::task::PluginSpec;
use measure::{fmt, time};

fn spec(name: &str, path: PathBuf, config: serde_json::Value) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        config,
        timeout: Duration::from_secs(10),
        memory: 256 << 20,
        ..PluginSpec::at(&path)
    }
}

fn report() -> RunReport {
    let task = kpo::task::load(Path::new("examples/etl.toml")).expect("examples/etl.toml");
    let pod = kpo::pod::build(&task, &kpo::pod::RunIdentity::generate("etl"), "default");
    let mut report = RunReport::new(
        "etl",
        "bench",
        "default",
        "etl-bench",
        1,
        kpo::task::OnFinish::Delete,
    );
    report.uid = Some("uid".into());
    report.outcome = kpo::vocabulary::Outcome::Succeeded;
    report.cleanup = kpo::report::Cleanup::Deleted;
    report.containers = vec![ContainerReport {
        name: "base".into(),
        role: kpo::vocabulary::ContainerRole::Main,
        exit_code: Some(0),
        reason: Some("Completed".into()),
        message: None,
        started_at: None,
        finished_at: None,
    }];
    report.result = Some(serde_json::json!({"rows": 42}));
    report.log_tail = (0..100)
        .map(|i| format!("processed batch {i} of 100: 4096 rows {{\"rows\": {i}}}"))
        .collect();
    report.final_pod = Some(pod);
    report
}

fn main() {
    let root = Path::new("plugins/target");
    let rust = |n: &str| root.join(format!("wasm32-wasip2/release/{n}.wasm"));
    let labels = serde_json::json!({"labels": {"cost-center": "ml"}});
    let plugins: Vec<(&str, PluginRole, PathBuf, serde_json::Value)> = vec![
        (
            "add-labels (Rust)",
            PluginRole::Mutator,
            rust("add_labels"),
            labels.clone(),
        ),
        (
            "resource-defaults (Rust)",
            PluginRole::Mutator,
            rust("resource_defaults"),
            serde_json::json!({"requests": {"cpu": "100m"}}),
        ),
        (
            "deny-privileged (Rust, policy)",
            PluginRole::Policy,
            rust("deny_privileged"),
            serde_json::json!({"allow_root": true}),
        ),
        (
            "exit-codes (Rust)",
            PluginRole::Interpreter,
            rust("exit_codes"),
            serde_json::json!({"skip": [99]}),
        ),
        (
            "log-scan (Rust)",
            PluginRole::Interpreter,
            rust("log_scan"),
            serde_json::json!({"patterns": ["ERROR"]}),
        ),
        (
            "oom-memory (Rust, 0.2.0)",
            PluginRole::Mutator,
            rust("oom_memory"),
            serde_json::json!({"factor": 2, "max": "2Gi"}),
        ),
        (
            "flaky (Rust, 0.2.0)",
            PluginRole::Interpreter,
            rust("flaky"),
            serde_json::json!({}),
        ),
        (
            "require-labels (JavaScript, policy)",
            PluginRole::Policy,
            root.join("js/require_labels.wasm"),
            serde_json::json!({"required": ["app"], "recommended": ["owner"]}),
        ),
        (
            "inject-sidecar (JavaScript, QuickJS)",
            PluginRole::Mutator,
            root.join("js/inject_sidecar.wasm"),
            serde_json::json!({"image": "busybox"}),
        ),
        (
            "result-check (Python)",
            PluginRole::Interpreter,
            root.join("python/result_check.wasm"),
            serde_json::json!({"checks": {"rows": {"min": 1}}}),
        ),
    ];
    let report = report();
    let pod = report.final_pod.clone().unwrap();
    let pod_bytes = serde_json::to_string(&pod).unwrap().len();
    let ctx = plugin::context("etl", "default", "bench");
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
    // Plugin calls are futures under a timer, as in kpo: on one thread here, so that what is
    // measured is the call, not a hand-off between threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("pod: {pod_bytes} bytes of JSON; medians\n");
    println!("| plugin | size | cold compile | load from cache | load again | fresh instance | one call |");
    println!("|---|---|---|---|---|---|---|");
    for (name, role, path, config) in plugins {
        if only.as_ref().is_some_and(|only| !name.contains(only.as_str())) {
            continue;
        }
        let Ok(bytes) = std::fs::metadata(&path) else {
            println!("| {name} | not built ({}) | | | | | |", path.display());
            continue;
        };
        let spec = spec(name, path, config);
        let heavy = bytes.len() > 4 << 20;
        // A host of its own each time: a host compiles a component once and keeps it.
        let cold = time(if heavy { 1 } else { 3 }, || {
            rt.block_on(PluginHost::new(None).unwrap().load(&spec)).unwrap()
        });
        rt.block_on(host.load(&spec)).unwrap();
        // A later run is a new process: a new host, the compiled code read from the disk cache.
        let cached = time(20, || {
            let host = PluginHost::new(Some(cache.path().to_owned())).unwrap();
            rt.block_on(host.load(&spec)).unwrap()
        });
        let again = time(20, || rt.block_on(host.load(&spec)).unwrap());
        let loaded: Vec<Loaded> = rt
            .block_on(host.load_all(std::slice::from_ref(&spec), role))
            .unwrap();
        let runs = if heavy { 30 } else { 200 };
        let fresh = time(runs, || rt.block_on(loaded[0].instantiate(&host)).unwrap());
        let call = match role {
            PluginRole::Mutator => time(runs, || {
                drop(
                    rt.block_on(plugin::mutate(&host, &loaded, pod.clone(), &ctx))
                        .unwrap(),
                )
            }),
            PluginRole::Policy => time(runs, || {
                drop(rt.block_on(plugin::admit(&host, &loaded, &pod, &ctx)).unwrap())
            }),
            PluginRole::Interpreter => time(runs, || {
                drop(
                    rt.block_on(plugin::interpret(&host, &loaded, &report, &ctx))
                        .unwrap(),
                )
            }),
        };
        println!(
            "| {name} | {:.0} KB | {} | {} | {} | {} | {} |",
            bytes.len() as f64 / 1024.0,
            fmt(cold),
            fmt(cached),
            fmt(again),
            fmt(fresh),
            fmt(call)
        );
    }
    let native = time(2000, || {
        let mut value = serde_json::to_value(&pod).unwrap();
        value["metadata"]["labels"]["cost-center"] = "ml".into();
        serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(value).unwrap()
    });
    println!(
        "| add labels natively in Rust (the floor) | | | | | | {} |",
        fmt(native)
    );
    if only.is_none() {
        cli_path();
    }
}

/// What the plugins add on the path users take: `kpo run --sim examples/plugins.toml` (two
/// mutators, a policy, two interpreters; compiled components from the cache, journal on) against
/// the same task with its plugin entries taken out. Whole processes, median of 5.
fn cli_path() {
    let dir = tempfile::tempdir().unwrap();
    let with = Path::new("examples/plugins.toml");
    let mut task: toml::Table = toml::from_str(&std::fs::read_to_string(with).unwrap()).unwrap();
    for key in ["mutate", "policy", "interpret"] {
        task.remove(key);
    }
    let without = dir.path().join("no-plugins.toml");
    std::fs::write(&without, toml::to_string(&task).unwrap()).unwrap();
    let run = |task: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpo"))
            .args(["run", "--sim"])
            .arg(task)
            .env("KPO_STATE_DIR", dir.path().join("state"))
            .env("KPO_CACHE_DIR", dir.path().join("cache"))
            .env("KPO_CONFIG_DIR", dir.path().join("config"))
            .output()
            .expect("kpo runs");
        assert!(
            out.status.success(),
            "kpo run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(with); // compiles the components into the cache
    let plugged = time(5, || run(with));
    let bare = time(5, || run(&without));
    println!("\n| `kpo run --sim`, whole process, journal on | time |\n|---|---|");
    println!("| `examples/plugins.toml` without its plugins | {} |", fmt(bare));
    println!(
        "| `examples/plugins.toml` (2 mutators, 1 policy, 2 interpreters, from the cache) | {} (+{}) |",
        fmt(plugged),
        fmt(plugged.saturating_sub(bare))
    );
}
