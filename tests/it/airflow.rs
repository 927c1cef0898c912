//! The KpoOperator (`integrations/airflow`) in a real Airflow: the package's pytest suite, run
//! with the pinned Airflow of its `constraints.txt` (installed once by its `install.sh` into
//! `~/.cache/kpo/airflow-venv`, skipped when there), against a cluster this process serves —
//! the simulated one here, the real one in the real-cluster suite — which must have no pod left
//! when the suite is done.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

/// The virtualenv with the pinned Airflow and pytest, installed if missing.
fn airflow_venv() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/airflow/install.sh");
    let out = Command::new("bash").arg(&script).output().expect("bash runs");
    assert!(
        out.status.success(),
        "installing Airflow failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs the operator's pytest suite against the cluster of `kubeconfig`; its output.
pub fn operator_suite(kubeconfig: &str) -> String {
    let venv = airflow_venv();
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-v", "--durations=5"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/airflow"))
        .env("KPO_BIN", env!("CARGO_BIN_EXE_kpo"))
        .env("KPO_TEST_KUBECONFIG", kubeconfig)
        .env("KPO_CACHE_DIR", scratch.path().join("cache"))
        .env("KPO_CONFIG_DIR", scratch.path().join("config"))
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .output()
        .expect("pytest runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{said}");
    assert!(out.status.success(), "the operator's tests failed");
    let last = said
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or_default();
    assert!(
        last.contains("16 passed") && !last.contains("failed") && !last.contains("skipped"),
        "{last}\n{said}"
    );
    said
}

#[test]
fn the_airflow_operator_passes_its_tests_in_a_real_airflow() {
    let (rt, sim, _dir, config) = crate::cli::sim_with_kubeconfig();
    operator_suite(&config);
    let left = rt.block_on(async {
        let api: Api<Pod> = Api::default_namespaced(sim.client());
        api.list(&Default::default()).await.unwrap().items
    });
    let names: Vec<_> = left.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert!(names.is_empty(), "pods left behind: {names:?}");
}
