//! The same scenarios on a real cluster, when `KPO_E2E_KUBECONFIG` names one (kind, k3d, or
//! `../shared/cluster`). Without it each test says it was skipped and passes.

use crate::harness::{e2e_client, e2e_image, e2e_kubeconfig};
use crate::scenarios::{self, Cluster};

/// The real cluster's kubeconfig; without one the test says it was skipped.
fn kubeconfig_or_skip() -> Option<String> {
    let path = e2e_kubeconfig();
    if path.is_none() {
        eprintln!("skipped: set KPO_E2E_KUBECONFIG to run the real-cluster suite");
    }
    path
}

async fn real() -> Option<Cluster> {
    let path = kubeconfig_or_skip()?;
    Some(Cluster {
        client: e2e_client(&path).await,
        admin: e2e_client(&std::env::var("KPO_E2E_KUBECONFIG").ok()?).await,
        ns: "default".into(),
        image: e2e_image(),
        node: crate::leftovers::Node::of_the_kit(),
        kubeconfig: path,
        _scratch: None,
    })
}

macro_rules! on_real_cluster {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
        async fn $name() {
            if let Some(c) = real().await {
                $module::$name(&c).await;
            }
        }
    )*};
}

mod e2e_shared {
    use super::*;
    use crate::{disruptions, inert, logs, never_started, params, policies};
    crate::scenarios::shared_scenarios!(on_real_cluster);
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_cli_ctrl_c_deletes_the_pod() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    crate::cli::ctrl_c_deletes_the_pod_on(&path, &e2e_image());
}

/// SIGTERM while a mutator sleeps in a WASI timer: exit 130 within two seconds, no pod listed.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_sigterm_stops_a_blocked_plugin() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    // A two-second bound: not beside the tests that load the node.
    let _node = crate::harness::node_to_myself();
    crate::limits::sigterm_stops_a_blocked_guest(&path, "sleep", "run");
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_plugin_new_projects_run_their_task() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    crate::plugin_new::new_plugins_run_their_task_on(&path);
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_render_server_applies_defaults() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    crate::cli::render_server_on(&path, &e2e_image());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_suite_runs_with_only_the_documented_role() {
    let Some(path) = kubeconfig_or_skip() else {
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

/// `kpo run --in-cluster` inside a pod, as an Airflow worker in the cluster runs it: the pod's
/// service account (`kpo`, examples/rbac.yaml) and nothing else — a KUBECONFIG naming no file is
/// not even read — runs a task to its end. The test cluster has no service network (no
/// kube-proxy), so the pod shares the node's and is told where the API server listens; this
/// machine's kpo binary and C libraries are mounted into the busybox image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_kpo_in_a_pod_runs_a_task_with_its_service_account() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{DeleteParams, PostParams};
    use kube::runtime::wait::await_condition;

    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let api: kube::Api<Pod> = kube::Api::default_namespaced(e2e_client(&path).await);
    let dir = tempfile::tempdir().unwrap();
    let task = format!(
        "name = \"inner\"\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"echo hello from the inner task\"]\n",
        e2e_image()
    );
    std::fs::write(dir.path().join("task.toml"), task).unwrap();
    let volume = |name: &str, path: &str, kind: &str| serde_json::json!({"name": name, "hostPath": {"path": path, "type": kind}});
    let mount =
        |name: &str, path: &str| serde_json::json!({"name": name, "mountPath": path, "readOnly": true});
    let env = |name: &str, value: &str| serde_json::json!({"name": name, "value": value});
    let name = format!("kpo-in-cluster-{}", kpo::names::random_suffix(5));
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "serviceAccountName": "kpo", "hostNetwork": true,
            "containers": [{"name": "kpo", "image": e2e_image(),
                "command": ["/kpo/bin/kpo", "run", "--in-cluster", "/kpo/task/task.toml"],
                "env": [env("KUBERNETES_SERVICE_HOST", "127.0.0.1"), env("KUBERNETES_SERVICE_PORT", "6443"),
                        env("KUBECONFIG", "/nowhere/kubeconfig"), env("KPO_STATE_DIR", "/tmp/kpo"),
                        env("HOME", "/tmp")],
                "volumeMounts": [mount("kpo", "/kpo/bin/kpo"), mount("task", "/kpo/task"),
                                 mount("libs", "/lib/x86_64-linux-gnu"), mount("lib64", "/lib64")]}],
            "volumes": [volume("kpo", env!("CARGO_BIN_EXE_kpo"), "File"),
                        volume("task", dir.path().to_str().unwrap(), "Directory"),
                        volume("libs", "/lib/x86_64-linux-gnu", "Directory"),
                        volume("lib64", "/lib64", "Directory")]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let finished = |p: Option<&Pod>| {
        let phase = p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref());
        matches!(phase, Some("Succeeded" | "Failed"))
    };
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        await_condition(api.clone(), &name, finished),
    )
    .await
    .expect("the pod finishes")
    .unwrap()
    .unwrap();
    let log = api.logs(&name, &Default::default()).await.unwrap();
    api.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let phase = done.status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Succeeded"), "{log}");
    assert!(log.contains("hello from the inner task"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_gc_keeps_what_the_runs_policy_keeps() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{DeleteParams, PostParams};
    use kube::runtime::wait::await_condition;

    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let client = e2e_client(&path).await;
    let api: kube::Api<Pod> = kube::Api::default_namespaced(client.clone());
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::default_namespaced(client);
    let suffix = fastrand::u32(..);
    // Two finished pods of a run whose kpo is gone, one kept on purpose — recorded as that kpo
    // left them, its claim long expired.
    let names = [
        (format!("gc-orphan-{suffix}"), "delete"),
        (format!("gc-kept-{suffix}"), "keep"),
    ];
    let run_id = format!("gc-dead-{suffix}");
    let record = serde_json::from_value(serde_json::json!({
        "metadata": {"name": kpo::claim::lease_name(&run_id), "labels": {"kpo.dev/run-id": run_id},
            "annotations": {"kpo.dev/pods": format!("default/{}/ default/{}/", names[0].0, names[1].0)}},
        "spec": {"holderIdentity": "gone/1/abcd", "leaseDurationSeconds": 15,
                 "renewTime": (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string()}
    }))
    .unwrap();
    leases.create(&PostParams::default(), &record).await.unwrap();
    for (name, on_finish) in &names {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name,
                "labels": {"app.kubernetes.io/managed-by": "kpo", "kpo.dev/run-id": run_id},
                "annotations": {"kpo.dev/on-finish": on_finish}},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "base", "image": e2e_image(), "command": ["true"]}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
    for (name, _) in &names {
        let finished = |p: Option<&Pod>| {
            let phase = p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref());
            matches!(phase, Some("Succeeded" | "Failed"))
        };
        let done = await_condition(api.clone(), name, finished);
        tokio::time::timeout(std::time::Duration::from_secs(120), done)
            .await
            .expect("the pod finishes")
            .unwrap();
    }
    // --dry-run only: the namespace is shared with the other tests' runs.
    let out = crate::harness::kpo_command()
        .args(["gc", "--dry-run", "--kubeconfig", &path])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("would delete default/{} (finished)", names[0].0)),
        "{stdout}"
    );
    assert!(!stdout.contains(&names[1].0), "{stdout}");
    for (name, _) in &names {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let _ = leases
        .delete(&kpo::claim::lease_name(&run_id), &DeleteParams::default())
        .await;
}

/// A shared reattach scenario of `reattach.rs` on the real cluster, under a fresh run id that
/// starts with `prefix`.
fn reattach_scenario(prefix: &str, scenario: fn(&str, &str, &str, &std::path::Path)) {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let _node = crate::harness::node_to_myself();
    let dir = tempfile::tempdir().unwrap();
    let run_id = format!("{prefix}-{}", kpo::names::random_suffix(5));
    scenario(&path, &e2e_image(), &run_id, dir.path());
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_a_killed_kpo_reattaches_by_uid_and_continues_the_log() {
    reattach_scenario("e2e-reattach", crate::reattach::killed_and_started_again_on);
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_a_kpo_on_another_machine_finds_the_run_in_the_cluster() {
    reattach_scenario("e2e-elsewhere", crate::reattach::killed_and_started_elsewhere_on);
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_rerun_finished_follows_a_killed_run_and_runs_an_ended_one_anew() {
    reattach_scenario("e2e-rerun", |config, image, run_id, dir| {
        let admin = std::env::var("KPO_E2E_KUBECONFIG").expect("the admin kubeconfig");
        let release = crate::reattach::Release::Exec {
            kubectl: kubectl(),
            admin,
        };
        crate::reattach::rerun_finished_on(config, image, run_id, dir, &release);
    });
}

/// The KpoOperator's whole suite in a real Airflow (see `airflow.rs`) against the real cluster;
/// none of its runs' pods is left.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_the_airflow_operator_passes_its_tests_on_the_real_cluster() {
    use k8s_openapi::api::core::v1::Pod;

    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let _node = crate::harness::node_to_myself();
    crate::airflow::operator_suite(&path);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left: Vec<String> = rt.block_on(async {
        let api: kube::Api<Pod> = kube::Api::namespaced(e2e_client(&path).await, "default");
        let runs = kube::api::ListParams::default().labels(kpo::pod::LABEL_RUN_ID);
        let pods = api.list(&runs).await.unwrap().items;
        pods.into_iter()
            .filter(|p| {
                let run_id = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(kpo::pod::LABEL_RUN_ID));
                run_id.is_some_and(|id| {
                    ["kpo-demo-", "kpo-slow-", "nightly-export-"]
                        .iter()
                        .any(|dag| id.starts_with(dag))
                })
            })
            .filter_map(|p| p.metadata.name)
            .collect()
    });
    assert!(left.is_empty(), "pods left behind: {left:?}");
}

/// `count` `kpo run` processes at once, of tasks `{prefix}-{i}` running `script` in `sh -c`
/// (quoted for a TOML basic string) with `on_finish`; what each printed and how it exited.
fn concurrent_runs(
    path: &str,
    dir: &std::path::Path,
    prefix: &str,
    count: usize,
    script: &str,
    on_finish: &str,
) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..count)
        .map(|i| {
            let task = dir.join(format!("{prefix}-{i}.toml"));
            let text = format!(
                "name = \"{prefix}-{i}\"\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\n[run]\non_finish = \"{on_finish}\"\n",
                e2e_image()
            );
            std::fs::write(&task, text).unwrap();
            crate::harness::kpo_command()
                .args(["run", "--kubeconfig", path])
                .arg(&task)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// 20 `kpo run` processes at once, each printing 10 000 lines as fast as a shell can, five
/// times over. containerd 1.6 loses the end of such output on the node itself now and then (with
/// exit 0), so where the node can be read the pods are kept and kpo's output is compared with
/// what the node stored: the same bytes, every time, and a warning whenever that ends in the
/// middle of a line. Elsewhere: every line once, or a warned prefix.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_twenty_fast_printers_at_once_lose_no_line() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let _node = crate::harness::node_to_myself();
    let node = crate::leftovers::Node::of_the_kit();
    let on_finish = if node.is_some() { "keep" } else { "delete" };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::default_namespaced(rt.block_on(e2e_client(&path)));
    let dir = tempfile::tempdir().unwrap();
    let want = crate::logs::numbered_bytes(10_000);
    let (mut warned, mut lost_by_the_node) = (0, 0);
    for round in 0..5 {
        let script = r#"i=1; while [ $i -le 10000 ]; do echo \"line $i\"; i=$((i+1)); done"#;
        let prefix = format!("printer-{round}");
        for out in concurrent_runs(&path, dir.path(), &prefix, 20, script, on_finish) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            let said = stderr.contains("may be incomplete");
            warned += usize::from(said);
            let kept = stderr
                .split("keeping pod default/")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            match (&node, kept) {
                (Some(node), Some(pod)) => {
                    let stored = node
                        .stored_log("default", pod, "base")
                        .expect("the node's log file");
                    crate::logs::assert_exact(&out.stdout, &stored);
                    lost_by_the_node += usize::from(stored != want);
                    assert_eq!(
                        said,
                        !stored.ends_with(b"\n"),
                        "warned exactly when it ends mid-line: {stderr}"
                    );
                    let finished = kube::api::DeleteParams::default().grace_period(0);
                    rt.block_on(pods.delete(pod, &finished))
                        .expect("the kept pod is deleted");
                }
                _ if said => assert!(
                    want.starts_with(&out.stdout),
                    "a warned log is still never altered: {stderr}"
                ),
                _ => crate::logs::assert_exact(&out.stdout, &want),
            }
        }
    }
    eprintln!(
        "{warned} of 100 runs said their log may be incomplete; the node lost the end of {lost_by_the_node}"
    );
}

/// A hundred ordinary runs, ten at a time: none says its log may be incomplete.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_ordinary_runs_give_no_false_warnings() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let script = "echo hello from kpo; for i in 1 2 3; do echo step $i; done; echo done";
        for out in concurrent_runs(
            &path,
            dir.path(),
            &format!("ordinary-{round}"),
            10,
            script,
            "delete",
        ) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert_eq!(
                out.stdout, b"hello from kpo\nstep 1\nstep 2\nstep 3\ndone\n",
                "{stderr}"
            );
            assert!(!stderr.contains("incomplete"), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_readmes_result_recipes_run_verbatim() {
    if let Some(c) = real().await {
        crate::readme::result_recipes_run_verbatim(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_task_file_reference_runs_verbatim() {
    if let Some(c) = real().await {
        crate::readme::task_file_reference_runs_verbatim(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_readmes_task_file_fragments_run_verbatim() {
    if let Some(c) = real().await {
        crate::readme::task_file_fragments_run_verbatim(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_readmes_pod_fields_run_verbatim() {
    if let Some(c) = real().await {
        let admin = std::env::var("KPO_E2E_KUBECONFIG").unwrap();
        crate::readme::pod_fields_run_verbatim(&c, &kubectl(), &admin).await;
    }
}

/// The real cluster's kubectl: `$KUBECTL`, or the kit's.
fn kubectl() -> std::path::PathBuf {
    let home = std::env::var_os("KPO_CLUSTER_HOME").unwrap_or_else(|| "/var/lib/kpo-cluster".into());
    std::env::var_os("KUBECTL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(home).join("bin/kubectl"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_readmes_plugins_run_verbatim() {
    if let Some(c) = real().await {
        crate::readme::minimal_plugins_run_verbatim(&c);
    }
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_the_readmes_parameters_and_matrix_run_verbatim() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    crate::readme::parameters_and_matrix_run_verbatim(&path);
}

/// Fifty mixed tasks as one batch, with kpo's own Role: each ends as it should, every log line
/// once, nothing of it left. Twenty at a time, and not beside the other tests that load the node.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_a_batch_of_fifty_mixed_tasks() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let _node = crate::harness::node_to_myself();
    let batch_id = format!("mixed-{}", kpo::names::random_suffix(5));
    crate::batches::mixed_batch_on(&path, &e2e_image(), 50, 20, &batch_id);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = e2e_client(&path).await;
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::default_namespaced(client);
        let params =
            kube::api::ListParams::default().labels(&format!("{}={batch_id}", kpo::pod::LABEL_BATCH));
        let left = api.list(&params).await.unwrap().items;
        assert!(
            left.is_empty(),
            "pods of the batch left: {:?}",
            left.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>()
        );
    });
}

/// Ctrl-C in a batch on the real cluster: one label-selected delete (kpo's Role allows it), every
/// running task interrupted, no new one started, no pod of the batch left.
#[cfg(unix)]
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_ctrl_c_stops_a_batch() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    crate::batches::ctrl_c_stops_a_batch_on(&path, &e2e_image());
}

/// The README's `kubectl kpo`: kpo installed as `kubectl-kpo` on the PATH, run by the real
/// kubectl against the real cluster.
#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_kubectl_runs_kpo_as_its_plugin() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let kubectl = kubectl();
    let dir = tempfile::tempdir().unwrap();
    crate::cli_edge::as_kubectl_plugin(dir.path());
    let search = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let task = dir.path().join("quick.toml");
    std::fs::write(
        &task,
        format!(
            "name = \"kubectl-plugin\"\nimage = \"{}\"\ncommand = [\"echo\", \"via kubectl\"]\n",
            e2e_image()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(kubectl)
        .args(["kpo", "run", "--kubeconfig", &path])
        .arg(&task)
        .env("PATH", search)
        .env("KPO_STATE_DIR", dir.path().join("state"))
        .output()
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "via kubectl");
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_one_supervisor_per_run() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let admin = std::env::var("KPO_E2E_KUBECONFIG").unwrap();
    let dir = tempfile::tempdir().unwrap();
    crate::claims::claims_on(&path, &admin, &e2e_image(), dir.path());
}

/// Stops `component` of `../shared/cluster` for `down` (its `restart.sh`), then waits until the
/// API server answers `/readyz` again, so that what follows finds the cluster whole.
fn stop_for(component: &str, down: std::time::Duration, admin: &str) {
    let kit = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cluster/restart.sh");
    let status = std::process::Command::new("bash")
        .args([kit, component, &down.as_secs().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "restart.sh {component} failed");
    let home = std::env::var("KPO_CLUSTER_HOME").unwrap_or_else(|_| "/var/lib/kpo-cluster".into());
    let ready = || {
        std::process::Command::new(format!("{home}/bin/kubectl"))
            .args(["--kubeconfig", admin, "get", "--raw", "/readyz"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(180),
            "the API server did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The control plane's outages stop the API server or etcd for twice the claim's term, which
/// other tests running at the same time would feel: `.ci/run` runs these alone, after the suite.
fn outage_on_the_real_cluster(component: &str, scenario: fn(&str, &str, &str, &std::path::Path, &dyn Fn())) {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let admin = std::env::var("KPO_E2E_KUBECONFIG").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outage = || stop_for(component, kpo::claim::TERM * 2, &admin);
    scenario(&path, &admin, &e2e_image(), dir.path(), &outage);
}

#[test]
#[ignore = "stops the API server: .ci/run runs it alone, after the suite"]
fn e2e_outage_of_the_api_server_mid_run() {
    outage_on_the_real_cluster("kube-apiserver", crate::outages::mid_run_on);
}

#[test]
#[ignore = "stops the API server: .ci/run runs it alone, after the suite"]
fn e2e_outage_of_the_api_server_while_the_pod_is_deleted() {
    outage_on_the_real_cluster("kube-apiserver", crate::outages::during_deletion_on);
}

#[test]
#[ignore = "stops the API server: .ci/run runs it alone, after the suite"]
fn e2e_outage_of_the_api_server_during_a_retrys_backoff() {
    outage_on_the_real_cluster("kube-apiserver", crate::outages::during_backoff_on);
}

#[test]
#[ignore = "stops the API server: .ci/run runs it alone, after the suite"]
fn e2e_outage_of_the_api_server_under_a_batch_of_ten() {
    outage_on_the_real_cluster("kube-apiserver", crate::outages::a_batch_on);
}

#[test]
#[ignore = "stops etcd: .ci/run runs it alone, after the suite"]
fn e2e_outage_of_etcd_mid_run() {
    outage_on_the_real_cluster("etcd", crate::outages::mid_run_on);
}

/// `examples/etl.toml` as it is: its sidecar (from the pod template) ignores SIGTERM and has 20 s
/// to stop, yet kpo exits within a second of the API saying the main container ended, before the
/// pod is gone; and the pod is gone within its grace period after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
async fn e2e_the_etl_example_ends_with_its_main_container() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::watcher::{self, Event, watcher};
    use std::time::{Duration, Instant};

    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let api: kube::Api<Pod> = kube::Api::namespaced(e2e_client(&path).await, "default");
    let run_id = format!("etl-{}", kpo::names::random_suffix(4));
    let selector = format!("{}={run_id}", kpo::pod::LABEL_RUN_ID);
    let mut pods = watcher(api.clone(), watcher::Config::default().labels(&selector)).boxed();
    let child = crate::harness::kpo_command()
        .args(["run", "--kubeconfig", &path, "--run-id", &run_id])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/etl.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        (out, Instant::now())
    });
    let (name, ended) = loop {
        match pods.next().await.expect("the watch goes on") {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) if kpo::status::terminated(&pod, "base") => {
                break (pod.metadata.name.clone().unwrap(), Instant::now());
            }
            _ => {}
        }
    };
    let (out, exited) = tokio::task::spawn_blocking(move || waiter.join().unwrap())
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("is stopping (grace period 20s)"), "{said}");
    let took = exited.saturating_duration_since(ended);
    eprintln!("the API showed the main container ended; kpo exited {took:?} later");
    assert!(took < Duration::from_secs(1), "{took:?}: {said}");
    let still = api.get_opt(&name).await.unwrap();
    assert!(still.is_some(), "kpo waited for the pod to be gone: {said}");
    // Its containers are stopped within the grace period (the kubelet kills the sidecar at its
    // end); a v1.20 kubelet then takes ~10 s more to remove the pod.
    let (mut stopped, mut gone) = (None, None);
    while gone.is_none() {
        match pods.next().await.expect("the watch goes on") {
            Ok(Event::Apply(pod)) if stopped.is_none() && !kpo::status::running(&pod) => {
                stopped = Some(Instant::now());
            }
            Ok(Event::Delete(_)) => gone = Some(Instant::now()),
            // After a resumed watch: gone meanwhile.
            Ok(Event::InitDone) if api.get_opt(&name).await.unwrap().is_none() => {
                gone = Some(Instant::now());
            }
            _ => {}
        }
    }
    let stopped = stopped.unwrap_or(gone.unwrap()).saturating_duration_since(exited);
    let gone = gone.unwrap().saturating_duration_since(exited);
    eprintln!("after kpo exited, the pod's containers were stopped in {stopped:?}, the pod gone in {gone:?}");
    assert!(stopped < Duration::from_secs(20 + 10), "{stopped:?}");
    assert!(gone < Duration::from_secs(20 + 60), "{gone:?}");
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_claims_are_judged_without_borrowing() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let admin = std::env::var("KPO_E2E_KUBECONFIG").unwrap();
    let dir = tempfile::tempdir().unwrap();
    crate::claims::claims_judged_without_borrowing_on(&path, &admin, &e2e_image(), dir.path());
}

#[test]
#[ignore = "needs a real cluster (KPO_E2E_KUBECONFIG): .ci/run runs it with --ignored"]
fn e2e_forged_labels_are_no_identity() {
    let Some(path) = kubeconfig_or_skip() else {
        return;
    };
    let admin = std::env::var("KPO_E2E_KUBECONFIG").unwrap();
    let dir = tempfile::tempdir().unwrap();
    crate::claims::forged_labels_on(&path, &admin, &e2e_image(), dir.path());
}
