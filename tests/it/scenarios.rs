//! Scenarios that must behave the same on the simulated cluster and on a real one. Each task
//! carries both the real command and the simulated cluster's script for it, so one task file
//! exercises both; `sim.rs` and `e2e.rs` run every scenario against their cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kpo::pod::LABEL_TASK;
use kpo::report::Cleanup;
use kpo::vocabulary::{ContainerRole, Outcome};
use kube::Api;
use kube::api::DeleteParams;

use crate::harness::{pods_of_run, run, run_until, task};
use crate::leftovers::assert_nothing_left;

/// A cluster to run scenarios on.
pub struct Cluster {
    pub client: kube::Client,
    /// A client with more rights than kpo's ContainerRole, for what others do to kpo's pods (evictions).
    pub admin: kube::Client,
    pub ns: String,
    pub image: String,
    /// The node's runtime, where the test can look at it (the test cluster's containerd).
    pub node: Option<crate::leftovers::Node>,
    /// A kubeconfig file with kpo's credentials, for scenarios that run the `kpo` binary.
    pub kubeconfig: String,
    /// Where the kubeconfig of a simulated cluster is written; removed with the cluster.
    pub _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// Every scenario that runs on both clusters, listed once: `$run!(module: name, ...)` for each
/// module that holds some. `sim.rs` and `e2e.rs` pass the macro that runs one on their cluster.
macro_rules! shared_scenarios {
    ($run:ident) => {
        $run!(policies:
            an_outside_policy_refuses_what_a_later_mutator_slips_in,
            a_monitor_policy_reports_and_the_pod_goes,
            a_c_policy_refuses_a_container_without_its_limit,
            an_oomkilled_attempt_is_retried_with_more_memory,
        );
        $run!(disruptions: an_eviction_is_an_infrastructure_failure_on_any_version, a_run_stopped_with_kpo_delete_is_not_retried);
        $run!(inert: pod_text_reaches_the_terminal_inert);
        $run!(params: a_matrix_runs_as_a_batch);
        $run!(never_started:
            a_pod_that_never_started_is_never_left_to_start_alone,
            never_started_runs_retry_under_their_own_budget,
            skip_on_exit_codes_skip_the_run,
            startup_timeout_counts_from_scheduling,
        );
        $run!(logs: bytes_arrive_unchanged, a_mebibyte_line_arrives_whole, a_hundred_thousand_lines_arrive_once);
        $run!(scenarios:
            succeeds_with_logs,
            failure_exit_code_propagated,
            oom_killed_is_reported,
            a_sidecar_never_holds_the_run_open,
            insufficient_resources_explained,
            the_run_timeout_stops_a_long_task,
            a_pod_deleted_by_someone_else_fails_the_run,
            image_pull_failure_reported_with_events,
            a_missing_secret_never_starts_and_leaves_nothing,
            unschedulable_pod_times_out,
            interrupt_deletes_the_pod,
            keep_keeps_the_pod,
            invalid_pod_rejected_with_server_message,
            result_via_termination_message,
            large_result_via_sidecar,
        );
    };
}
pub(crate) use shared_scenarios;

pub fn unique(name: &str) -> String {
    format!("{name}-{}", kpo::names::random_suffix(4))
}

pub async fn succeeds_with_logs(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo one; sleep 1; echo two; echo three"]
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["one", "two", "three"], "log_interval_ms": 200}}'
"#,
        name = unique("ok"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(report.exit_code, 0);
    assert_eq!(rec.lines_of("base"), ["one", "two", "three"]);
    assert!(
        rec.saw_phase("Succeeded") || rec.saw_phase("Running"),
        "{:?}",
        rec.statuses.lock().unwrap()
    );
    assert_eq!(report.cleanup, Cleanup::Deleted);
    assert_nothing_left(c, &report).await;
    let main = report
        .containers
        .iter()
        .find(|k| k.role == ContainerRole::Main)
        .unwrap();
    assert_eq!(
        (main.exit_code, main.reason.as_deref()),
        (Some(0), Some("Completed"))
    );
}

pub async fn oom_killed_is_reported(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo allocating; x=$(head -c 200000000 /dev/zero | tr '\\0' a)"]
[resources]
limits = {{ memory = "32Mi" }}
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["allocating"], "oom": true}}'
"#,
        name = unique("hungry"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.message);
    assert_eq!(report.exit_code, 137);
    assert_eq!(rec.lines_of("base"), ["allocating"]);
    let main = report
        .containers
        .iter()
        .find(|k| k.role == ContainerRole::Main)
        .unwrap();
    assert_eq!(main.reason.as_deref(), Some("OOMKilled"));
    assert!(report.message.contains("OOMKilled"), "{}", report.message);
    assert_nothing_left(c, &report).await;
}

pub async fn insufficient_resources_explained(c: &Cluster) {
    let t = task(&format!(
        "name = \"{name}\"\nimage = \"{image}\"\n[resources]\nrequests = {{ cpu = \"64\" }}\n[run]\nstartup_timeout = \"3s\"\n",
        name = unique("big"),
        image = c.image
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert_eq!(report.exit_code, kpo::exit::NEVER_STARTED);
    assert!(report.message.contains("Insufficient cpu"), "{}", report.message);
    assert_nothing_left(c, &report).await;
}

pub async fn the_run_timeout_stops_a_long_task(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo working; sleep 60"]
# `sh` as PID 1 ignores SIGTERM: without this the kubelet waits the default 30 s to kill it.
termination_grace_period = 1
[run]
timeout = "3s"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["working"], "duration_ms": 60000}}'
"#,
        name = unique("slow"),
        image = c.image
    ));
    let pod = kpo::pod::build(&t, &kpo::pod::RunIdentity::generate("slow"), &c.ns);
    assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(3));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::TimedOut, "{}", report.message);
    assert_eq!(report.exit_code, kpo::exit::TIMED_OUT);
    crate::leftovers::assert_nothing_listed(c, &report).await;
}

pub async fn a_pod_deleted_by_someone_else_fails_the_run(c: &Cluster) {
    let name = unique("victim");
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo working; sleep 60"]
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["working"], "duration_ms": 60000}}'
"#,
        image = c.image
    ));
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let selector = format!("{LABEL_TASK}={name}");
    let killer = async {
        // Someone force-deletes the pod once it runs.
        let p = crate::harness::running_pod(&api, &selector).await;
        let params = DeleteParams::default().grace_period(0);
        api.delete(p.metadata.name.as_deref().unwrap(), &params)
            .await
            .unwrap();
    };
    let ((report, _), ()) = tokio::join!(run(&c.client, &t, &c.ns), killer);
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.message);
    assert_eq!(report.exit_code, kpo::exit::FAILED);
    assert!(
        report.message.contains("deleted by someone else"),
        "{}",
        report.message
    );
    assert_eq!(report.cleanup, Cleanup::None);
}

/// A sidecar never holds the run open: not while it runs, nor while it takes its whole grace
/// period to stop (as PID 1, `sh` ignores SIGTERM). Once the main container's log is read, the
/// pod is deleted and left stopping (`cleanup = "stopping"`); it is gone within its grace period.
pub async fn a_sidecar_never_holds_the_run_open(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "sleep 1; echo main work"]
termination_grace_period = 20
[[sidecars]]
name = "proxy"
image = "{image}"
command = ["sh", "-c", "echo proxy up; sleep 3600"]
[run]
logs = "all"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["main work"], "duration_ms": 1000}}'
"container.sim.kpo.dev/proxy" = '{{"logs": ["proxy up"], "duration_ms": 3600000, "ignore_sigterm": true}}'
"#,
        name = unique("with-sidecar"),
        image = c.image
    ));
    // A sidecar that held the run open would hold it for an hour: fail instead of hanging.
    let (report, rec) = tokio::time::timeout(Duration::from_secs(120), run(&c.client, &t, &c.ns))
        .await
        .expect("the run ends when its main container does");
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(rec.lines_of("base"), ["main work"]);
    assert_eq!(rec.lines_of("proxy"), ["proxy up"]);
    let roles: Vec<_> = report
        .containers
        .iter()
        .map(|k| (k.name.as_str(), k.role.name()))
        .collect();
    assert_eq!(roles, [("base", "main"), ("proxy", "sidecar")]);
    assert_eq!(report.cleanup, Cleanup::Stopping);
    // kpo did not wait out the sidecar's grace period: the pod is still there, being deleted.
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let stopping = api.get_opt(&report.pod).await.unwrap();
    let stopping = stopping.expect("the pod is still stopping when the run returns");
    assert!(stopping.metadata.deletion_timestamp.is_some());
    // Its containers are stopped within that grace period (and the kubelet's moment to kill);
    // then the pod goes (a v1.20 kubelet takes ~10 s more to remove it).
    let asked = tokio::time::Instant::now();
    crate::harness::wait_until("the stopping pod's containers to stop", || async {
        api.get_opt(&report.pod)
            .await
            .is_ok_and(|p| p.is_none_or(|p| !kpo::status::running(&p)))
    })
    .await;
    let stopped = asked.elapsed();
    assert!(stopped < Duration::from_secs(20 + 10), "{stopped:?}");
    crate::harness::wait_until("the stopping pod to be gone", || async {
        api.get_opt(&report.pod).await.is_ok_and(|p| p.is_none())
    })
    .await;
    assert_nothing_left(c, &report).await;
}

pub async fn failure_exit_code_propagated(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo working; echo 'input file missing' > /dev/termination-log; exit 3"]
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["working"], "exit_code": 3, "termination_message": "input file missing\n"}}'
"#,
        name = unique("fail"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.exit_code, 3);
    assert_eq!(rec.lines_of("base"), ["working"]);
    let main = report
        .containers
        .iter()
        .find(|k| k.role == ContainerRole::Main)
        .unwrap();
    assert_eq!(main.reason.as_deref(), Some("Error"));
    assert_eq!(main.message.as_deref().map(str::trim), Some("input file missing"));
    assert!(
        report.events.iter().any(|e| e.reason == "Started"),
        "{:?}",
        report.events
    );
}

pub async fn image_pull_failure_reported_with_events(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "busybox:does-not-exist"
[run]
startup_timeout = "90s"
[annotations]
"container.sim.kpo.dev/base" = '{{"pull": "not-found", "pull_ms": 100}}'
"#,
        name = unique("pull")
    ));
    let started = std::time::Instant::now();
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert_eq!(report.exit_code, kpo::exit::NEVER_STARTED);
    assert!(report.message.contains("not found"), "{}", report.message);
    // A missing image does not heal: kpo says so without waiting for the startup timeout.
    assert!(started.elapsed() < Duration::from_secs(80));
    assert!(
        report.events.iter().any(|e| e
            .message
            .starts_with("Failed to pull image \"busybox:does-not-exist\"")),
        "{:?}",
        report.events
    );
    assert_eq!(report.cleanup, Cleanup::Deleted);
    // A pod that never started goes too, its sandbox with it: not a force delete that leaves
    // the node running it.
    assert_nothing_left(c, &report).await;
}

/// A task whose container cannot be made (its Secret does not exist), with these `[run]` keys.
pub fn missing_secret(c: &Cluster, name: &str, run: &str) -> String {
    format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo never"]
[env]
PASSWORD = {{ secret = "kpo-no-such-secret", key = "password" }}
[run]
{run}
"#,
        image = c.image
    )
}

pub async fn a_missing_secret_never_starts_and_leaves_nothing(c: &Cluster) {
    // 20 s: long enough for a loaded node to reach the container's creation (CI saw 5 s not suffice).
    let t = task(&missing_secret(
        c,
        &unique("nosecret"),
        "startup_timeout = \"20s\"",
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert_eq!(report.exit_code, kpo::exit::NEVER_STARTED);
    assert!(
        report.message.contains("CreateContainerConfigError"),
        "{}",
        report.message
    );
    assert!(
        report
            .events
            .iter()
            .any(|e| e.message.contains("secret \"kpo-no-such-secret\" not found")),
        "{:?}",
        report.events
    );
    assert_eq!(report.cleanup, Cleanup::Deleted);
    // Its sandbox ran while the container waited: gone too once kpo returns.
    assert_nothing_left(c, &report).await;
}

pub async fn unschedulable_pod_times_out(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
node_selector = {{ "kpo.dev/no-such-node" = "true" }}
[run]
startup_timeout = "3s"
"#,
        name = unique("unsched"),
        image = c.image
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert!(
        report.message.contains("did not start within 3s"),
        "{}",
        report.message
    );
    assert!(report.message.contains("Unschedulable"), "{}", report.message);
    assert!(
        report.events.iter().any(|e| e.reason == "FailedScheduling"),
        "{:?}",
        report.events
    );
    assert_eq!(report.cleanup, Cleanup::Deleted);
    assert_nothing_left(c, &report).await;
}

pub async fn interrupt_deletes_the_pod(c: &Cluster) {
    let name = unique("interrupt");
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo started; sleep 60"]
termination_grace_period = 5
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["started"], "duration_ms": 60000}}'
"#,
        image = c.image
    ));
    let client = c.client.clone();
    let ns = c.ns.clone();
    let running = async move {
        let api: Api<Pod> = Api::namespaced(client, &ns);
        crate::harness::running_pod(&api, &format!("{LABEL_TASK}={name}")).await;
    };

    let (report, rec) = run_until(&c.client, &t, &c.ns, running).await;
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.exit_code, kpo::exit::INTERRUPTED);
    assert_eq!(report.cleanup, Cleanup::Deleted);
    assert!(rec.saw_notice("deleted pod"));
    // kpo returns only once the pod is really gone, not merely terminating.
    assert_nothing_left(c, &report).await;
}

pub async fn keep_keeps_the_pod(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo kept"]
[run]
on_finish = "keep"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["kept"]}}'
"#,
        name = unique("keep"),
        image = c.image
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.cleanup, Cleanup::Kept);
    let left = pods_of_run(&c.client, &c.ns, &report.run_id).await;
    assert_eq!(left.len(), 1, "the kept pod must still exist");
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    api.delete(&report.pod, &DeleteParams::default()).await.unwrap();
}

pub async fn invalid_pod_rejected_with_server_message(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("template.yaml"),
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: base\n  - name: helper\n",
    )
    .unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{}\"\nimage = \"{}\"\npod_template = \"template.yaml\"\n",
            unique("reject"),
            c.image
        ),
    )
    .unwrap();
    let t = kpo::task::load(&path).unwrap();
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.exit_code, kpo::exit::REJECTED);
    assert!(
        report
            .message
            .contains("spec.containers[1].image: Required value"),
        "{}",
        report.message
    );
    assert_eq!(report.uid, None);
    assert!(pods_of_run(&c.client, &c.ns, &report.run_id).await.is_empty());
}

pub async fn result_via_termination_message(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo '::kpo-output rows=42'; echo '{{\"rows\": 42, \"status\": \"ok\"}}' > /kpo/result.json"]
[result]
required = true
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["::kpo-output rows=42"], "write_path": "/kpo/result.json", "write": "{{\"rows\": 42, \"status\": \"ok\"}}\n"}}'
"#,
        name = unique("result"),
        image = c.image
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.exit_code, 0, "{}", report.message);
    assert_eq!(
        report.result,
        Some(serde_json::json!({"rows": 42, "status": "ok"}))
    );
    assert_eq!(report.result_error, None);
    assert_eq!(report.outputs.get("rows").map(String::as_str), Some("42"));
}

/// A 1 MiB result through the sidecar, compared byte for byte.
pub async fn large_result_via_sidecar(c: &Cluster) {
    let size = 1 << 20;
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "{{ printf '{{\"filler\":\"'; yes abcdefghijklmnopqrstuvwxyz0123456789 | tr -d '\\n' | head -c {body}; printf '\"}}'; }} > /kpo/partial && mv /kpo/partial /kpo/result.json"]
[result]
via = "sidecar"
required = true
max_size = "2Mi"
sidecar_image = "{image}"
[annotations]
"container.sim.kpo.dev/base" = '{{"write_path": "/kpo/result.json", "write_size": {size}}}'
"#,
        name = unique("big-result"),
        image = c.image,
        body = size - 13,
    ));
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.exit_code, 0, "{}", report.message);
    assert_eq!(report.result_error, None);
    let bytes = report.result_bytes.expect("a result");
    assert_eq!(bytes.len(), size);
    assert!(
        bytes == kpo::sim::filler_document(size),
        "the result differs from what the task wrote"
    );
    // Deleted, or left stopping if the result's sidecar had not yet been seen to end.
    assert!(
        matches!(report.cleanup, Cleanup::Deleted | Cleanup::Stopping),
        "{:?}",
        report.cleanup
    );
}
