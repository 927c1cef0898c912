//! Task results on the simulated cluster: every way a result can be wrong is an error with its
//! own message and exit code 74, never a silently different result.

use kpo::exit;
use kpo::sim::{SimCluster, filler_document};

use crate::harness::{run, task};

/// Runs a task with `[result]` settings `result` whose main container follows `script`, on
/// `sim` (or a fresh simulated cluster).
async fn result_run_on(sim: Option<&SimCluster>, script: &str, result: &str) -> kpo::report::RunReport {
    let fresh;
    let sim = match sim {
        Some(s) => s,
        None => {
            fresh = SimCluster::start().await.unwrap();
            &fresh
        }
    };
    let t = task(&format!(
        "name = \"r\"\nimage = \"busybox\"\n[result]\n{result}\n[annotations]\n\"container.sim.kpo.dev/base\" = '{script}'\n"
    ));
    run(&sim.client(), &t, "default").await.0
}

async fn result_run(script: &str, result: &str) -> kpo::report::RunReport {
    result_run_on(None, script, result).await
}

fn error_of(report: &kpo::report::RunReport) -> &str {
    assert_eq!(report.exit_code, exit::RESULT_INVALID, "{report:?}");
    report.result_error.as_deref().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_result() {
    let report = result_run(r#"{"logs": ["did nothing"]}"#, "required = true").await;
    assert_eq!(report.exit_code, exit::RESULT_INVALID);
    assert_eq!(
        report.result_error.as_deref(),
        Some("the task wrote no result to /kpo/result.json, and the task file requires one")
    );
    // Not required: no result is fine.
    let report = result_run(r#"{"logs": ["did nothing"]}"#, "required = false").await;
    assert_eq!((report.exit_code, report.result), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_is_not_json() {
    let report = result_run(
        r#"{"write_path": "/out/r.json", "write": "rows: 42"}"#,
        "path = \"/out/r.json\"",
    )
    .await;
    assert_eq!(report.exit_code, exit::RESULT_INVALID);
    assert!(
        report
            .result_error
            .as_deref()
            .unwrap()
            .starts_with("the result is not JSON"),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_over_4_kib_is_reported_as_such() {
    let report = result_run(r#"{"write_path": "/kpo/result.json", "write_size": 5000}"#, "").await;
    assert_eq!(report.exit_code, exit::RESULT_INVALID);
    let e = report.result_error.unwrap();
    assert!(
        e.contains("Kubernetes keeps only 4096 bytes") && e.contains("via = \"sidecar\""),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_keeps_its_exit_code_and_reports_the_result_error() {
    let report = result_run(r#"{"exit_code": 3}"#, "required = true").await;
    assert_eq!(report.exit_code, 3);
    assert!(report.result_error.is_some());
}

/// A 100 kB result through the sidecar, on a cluster whose result sidecar misbehaves as `fault` says.
async fn sidecar_result_with(fault: impl FnOnce(&kpo::sim::Faults)) -> kpo::report::RunReport {
    let sim = SimCluster::start().await.unwrap();
    fault(sim.faults());
    let script = r#"{"write_path": "/kpo/result.json", "write_size": 100000}"#;
    result_run_on(Some(&sim), script, "via = \"sidecar\"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_sidecar_frame_is_an_error_not_a_shorter_result() {
    let report = sidecar_result_with(|f| f.cut_results(1)).await;
    assert!(error_of(&report).contains("truncated"), "{report:?}");
    assert_eq!(report.result, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_reaches_the_log_after_the_sidecar_ended_is_read_whole() {
    let report = sidecar_result_with(|f| f.lag_results(1)).await;
    assert_eq!(report.result_error, None, "{report:?}");
    assert_eq!(report.result_bytes.map(|b| b.len()), Some(100_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_result_over_max_size() {
    let script = r#"{"write_path": "/kpo/result.json", "write_size": 5000}"#;
    let report = result_run(script, "via = \"sidecar\"\nmax_size = \"1Ki\"").await;
    assert_eq!(
        error_of(&report),
        "the result is 5000 bytes, more than `max_size` (1024 bytes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_result_through_the_sidecar_ends_after_the_wait() {
    let report = result_run(
        r#"{"logs": []}"#,
        "via = \"sidecar\"\nwait = \"1s\"\nrequired = true",
    )
    .await;
    assert!(error_of(&report).contains("wrote no result"), "{report:?}");
}

#[test]
fn the_cli_writes_the_result_file_and_reports_result_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let task_path = dir.path().join("t.toml");
    std::fs::write(
        &task_path,
        "name = \"r\"\nimage = \"busybox\"\n[result]\nvia = \"sidecar\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"::kpo-output table=sales\", \"::kpo-output rows=9\"], \"write_path\": \"/kpo/result.json\", \"write_size\": 300000}'\n",
    )
    .unwrap();
    let result = dir.path().join("result.json");
    let out = crate::harness::kpo_command()
        .args([
            "run",
            "--sim",
            "--output",
            "json",
            "--result-file",
            result.to_str().unwrap(),
            task_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&result).unwrap() == filler_document(300000));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["outputs"],
        serde_json::json!({"rows": "9", "table": "sales"})
    );
    assert_eq!(report["result"]["filler"].as_str().unwrap().len(), 300000 - 13);
    // The result sidecar is part of the pod but not of the logs shown.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kpo-result-begin"));
}
