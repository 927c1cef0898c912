//! Runs whose main container never started — scheduling and startup timeouts, their retry
//! class, and the rule that such a pod is never left to start later with no one supervising
//! it — and `skip_on_exit_codes`: shared scenarios, run on the simulated and the real cluster.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kpo::report::{Cleanup, RunReport};
use kpo::vocabulary::{FailureClass, Outcome, StartFailure};
use kube::Api;
use kube::api::DeleteParams;

use crate::harness::{Recorder, pods_of_run, task, wait_for};
use crate::leftovers::assert_nothing_left;
use crate::scenarios::{Cluster, unique};

/// A whole run of `toml` (retries, interpreters, skip codes), as `kpo run` makes it.
async fn run_task(c: &Cluster, toml: &str) -> (RunReport, Arc<Recorder>) {
    crate::harness::run_task(&c.client, &task(toml), &c.ns).await
}

/// A task no node takes, waiting `schedule_timeout` for one, kept or deleted by `on_finish`.
fn unschedulable(c: &Cluster, name: &str, on_finish: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo never"]
node_selector = {{ "kpo.dev/no-such-node" = "true" }}
[run]
schedule_timeout = "2s"
on_finish = "{on_finish}"
{extra}
"#,
        image = c.image
    )
}

/// A task whose pod is bound to a node but whose image does not exist: it never starts.
fn missing_image(name: &str, on_finish: &str) -> String {
    format!(
        r#"
name = "{name}"
image = "busybox:does-not-exist"
[run]
startup_timeout = "90s"
on_finish = "{on_finish}"
[annotations]
"container.sim.kpo.dev/base" = '{{"pull": "not-found", "pull_ms": 100}}'
"#
    )
}

/// Under `delete_succeeded` and `keep` alike, a pod that never started is not left to start
/// later on its own: one never scheduled is deleted (its events are in the report), one on a
/// node under `keep` is kept but fenced — its kubelet fails it at once (`DeadlineExceeded`).
pub async fn a_pod_that_never_started_is_never_left_to_start_alone(c: &Cluster) {
    for on_finish in ["delete_succeeded", "keep"] {
        let name = unique("unsched");
        let (report, rec) = run_task(c, &unschedulable(c, &name, on_finish, "")).await;
        assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
        assert_eq!(report.start_failure, Some(StartFailure::ScheduleTimeout));
        assert!(
            report
                .message
                .starts_with("the pod was not scheduled within 2s (last seen: Unschedulable"),
            "{}",
            report.message
        );
        assert_eq!(report.cleanup, Cleanup::DeletedUnstarted, "{on_finish}");
        assert!(rec.saw_notice(&format!("despite on_finish = {on_finish}")));
        assert!(
            report.events.iter().any(|e| e.reason == "FailedScheduling"),
            "{:?}",
            report.events
        );
        assert_nothing_left(c, &report).await;
    }

    let (report, _) = run_task(c, &missing_image(&unique("pull"), "delete_succeeded")).await;
    assert_eq!(
        report.start_failure,
        Some(StartFailure::Unstartable),
        "{}",
        report.message
    );
    assert_eq!(report.cleanup, Cleanup::DeletedUnstarted);
    assert_nothing_left(c, &report).await;

    let (report, rec) = run_task(c, &missing_image(&unique("pull"), "keep")).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert_eq!(report.cleanup, Cleanup::Fenced);
    assert!(rec.saw_notice("its activeDeadlineSeconds is now 1"));
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let fenced = wait_for("the fenced pod to fail its deadline", || async {
        let pod = api.get(&report.pod).await.expect("a fenced pod is kept");
        let status = pod.status.clone().unwrap_or_default();
        (status.phase.as_deref() == Some("Failed")).then_some(status)
    })
    .await;
    assert_eq!(fenced.reason.as_deref(), Some("DeadlineExceeded"), "{fenced:?}");
    assert_eq!(pods_of_run(&c.client, &c.ns, &report.run_id).await.len(), 1);
    api.delete(&report.pod, &DeleteParams::default()).await.unwrap();
}

/// `[retry] never_started` retries a run that was not scheduled in time, with a new pod, under
/// its own budget — and never one that no new pod could start (a missing image).
pub async fn never_started_runs_retry_under_their_own_budget(c: &Cluster) {
    let retry = "[retry]\nnever_started = 1\nuser = 3\nbackoff = \"100ms\"";
    let name = unique("unsched");
    let (report, rec) = run_task(c, &unschedulable(c, &name, "delete", retry)).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    let classes: Vec<_> = report.attempts.iter().map(|a| (a.class, a.retried)).collect();
    assert_eq!(
        classes,
        [
            (Some(FailureClass::NeverStarted), true),
            (Some(FailureClass::NeverStarted), false)
        ]
    );
    assert_ne!(report.attempts[0].pod, report.attempts[1].pod);
    assert!(rec.saw_notice("attempt 1 failed (never_started)"));
    assert_nothing_left(c, &report).await;

    let with_retry = format!(
        "{}\n[retry]\nnever_started = 2\n",
        missing_image(&unique("pull"), "delete")
    );
    let (report, _) = run_task(c, &with_retry).await;
    assert_eq!(report.attempts.len(), 1, "{:?}", report.attempts);
    assert_eq!(report.attempts[0].class, None);
    assert_nothing_left(c, &report).await;
}

/// `skip_on_exit_codes`: a listed exit skips the run (exit 99) — and is no failure to retry —
/// while any other exit fails it as before.
pub async fn skip_on_exit_codes_skip_the_run(c: &Cluster) {
    let task = |code: i32| {
        format!(
            r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo nothing to do; exit {code}"]
[run]
skip_on_exit_codes = [3, 5]
[retry]
user = 2
backoff = "100ms"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["nothing to do"], "exit_code": {code}}}'
"#,
            name = unique("skip"),
            image = c.image
        )
    };
    let (report, _) = run_task(c, &task(5)).await;
    assert_eq!(report.exit_code, kpo::exit::SKIPPED, "{}", report.message);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.attempts.len(),
        1,
        "a skip is not retried: {:?}",
        report.attempts
    );
    let decision = report.decision.as_ref().expect("the skip is the run's verdict");
    assert_eq!(decision.plugin, "[run] skip_on_exit_codes");
    assert!(
        report
            .message
            .ends_with("(judged skip by [run] skip_on_exit_codes: exit code 5 is one of skip_on_exit_codes)"),
        "{}",
        report.message
    );
    assert_nothing_left(c, &report).await;

    let (report, _) = run_task(c, &task(4)).await;
    assert_eq!(report.exit_code, 4, "{}", report.message);
    assert_eq!(report.attempts.len(), 3, "{:?}", report.attempts);
    assert!(report.decision.is_none());
    assert_nothing_left(c, &report).await;
}

/// With a `schedule_timeout`, `startup_timeout` counts from the pod's scheduling (as KPO's two
/// timeouts do): a pod a node took but whose container cannot be made (a missing Secret) ends
/// by the startup timeout, said so.
pub async fn startup_timeout_counts_from_scheduling(c: &Cluster) {
    let run = "schedule_timeout = \"60s\"\nstartup_timeout = \"20s\"";
    let t = crate::scenarios::missing_secret(c, &unique("startup"), run);
    let (report, _) = run_task(c, &t).await;
    assert_eq!(report.outcome, Outcome::NeverStarted, "{}", report.message);
    assert_eq!(report.start_failure, Some(StartFailure::StartupTimeout));
    assert!(
        report.message.starts_with(
            "base did not start within 20s of being scheduled (last seen: base: CreateContainerConfigError"
        ),
        "{}",
        report.message
    );
    assert_nothing_left(c, &report).await;
}
