//! The same scenarios on a real cluster, when `KPO_E2E_KUBECONFIG` names one (kind, k3d, or
//! `../shared/cluster`). Without it each test says it was skipped and passes.

use crate::harness::{e2e_client, e2e_image, e2e_kubeconfig};
use crate::scenarios::{self, Cluster};

async fn real() -> Option<Cluster> {
    let Some(path) = e2e_kubeconfig() else {
        eprintln!("skipped: set KPO_E2E_KUBECONFIG to run the real-cluster suite");
        return None;
    };
    Some(Cluster {
        client: e2e_client(&path).await,
        ns: "default".into(),
        image: e2e_image(),
    })
}

macro_rules! on_real_cluster {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if let Some(c) = real().await {
                scenarios::$name(&c).await;
            }
        }
    )*};
}

mod e2e_scenarios {
    use super::*;
    on_real_cluster!(
        succeeds_with_logs,
        failure_exit_code_propagated,
        image_pull_failure_reported_with_events,
        unschedulable_pod_times_out,
        interrupt_deletes_the_pod,
        keep_keeps_the_pod,
        invalid_pod_rejected_with_server_message,
        result_via_termination_message,
        large_result_via_sidecar,
    );
}

#[test]
fn e2e_cli_ctrl_c_deletes_the_pod() {
    let Some(path) = e2e_kubeconfig() else {
        eprintln!("skipped: set KPO_E2E_KUBECONFIG to run the real-cluster suite");
        return;
    };
    crate::cli::ctrl_c_deletes_the_pod_on(&path, &e2e_image());
}

#[test]
fn e2e_render_server_applies_defaults() {
    let Some(path) = e2e_kubeconfig() else {
        eprintln!("skipped: set KPO_E2E_KUBECONFIG to run the real-cluster suite");
        return;
    };
    crate::cli::render_server_on(&path, &e2e_image());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_the_suite_runs_with_only_the_documented_role() {
    let Some(path) = e2e_kubeconfig() else {
        eprintln!("skipped: set KPO_E2E_KUBECONFIG to run the real-cluster suite");
        return;
    };
    let client = e2e_client(&path).await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::default_namespaced(client.clone());
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("the e2e identity can read secrets: {other:?}"),
    }
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
    assert!(
        pods.list(&Default::default()).await.is_err(),
        "the e2e identity can list pods cluster-wide"
    );
}
