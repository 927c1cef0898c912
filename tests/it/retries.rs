//! Retries by class on the simulated cluster: each class draws on its own budget, every attempt
//! gets a new pod and is listed in the report.

use std::sync::Arc;

use kpo::sim::SimCluster;
use kpo::vocabulary::FailureClass;
use kpo::vocabulary::Outcome;

use crate::harness::{Recorder, task};

async fn run(sim: &SimCluster, toml: &str) -> (kpo::report::RunReport, Arc<Recorder>) {
    crate::harness::run_task(&sim.client(), &task(toml), "default").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_is_retried_with_a_new_pod() {
    let sim = SimCluster::start().await.unwrap();
    sim.faults().evict(1);
    let (report, recorder) = run(
        &sim,
        "name = \"evictee\"\nimage = \"busybox\"\n[retry]\ninfrastructure = 2\nbackoff = \"100ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"working\"], \"duration_ms\": 800}'\n",
    )
    .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(report.attempt, 2);
    let first = &report.attempts[0];
    assert_eq!(
        (first.class, first.retried),
        (Some(FailureClass::Infrastructure), true)
    );
    assert!(
        first
            .message
            .starts_with("pod Evicted: The node was low on resource: memory"),
        "{}",
        first.message
    );
    assert_ne!(first.pod, report.attempts[1].pod, "a retry must use a new pod");
    assert!(recorder.saw_notice("attempt 1 failed (infrastructure)"));
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::default_namespaced(sim.client());
    assert!(
        api.list(&Default::default()).await.unwrap().items.is_empty(),
        "a pod of some attempt was left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_without_budget_fails_and_says_why() {
    let sim = SimCluster::start().await.unwrap();
    sim.faults().evict(1);
    let (report, _) = run(
        &sim,
        "name = \"evictee\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"duration_ms\": 5000}'\n",
    )
    .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_ne!(report.exit_code, 0);
    assert!(report.message.starts_with("pod Evicted"), "{}", report.message);
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].class, Some(FailureClass::Infrastructure));
    assert!(!report.attempts[0].retried);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_failures_use_their_own_budget_then_give_up() {
    let sim = SimCluster::start().await.unwrap();
    let (report, _) = run(
        &sim,
        "name = \"flaky\"\nimage = \"busybox\"\n[retry]\nuser = 2\ninfrastructure = 5\nbackoff = \"50ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"exit_code\": 2}'\n",
    )
    .await;
    assert_eq!(report.exit_code, 2);
    let retried: Vec<bool> = report.attempts.iter().map(|a| a.retried).collect();
    assert_eq!(retried, [true, true, false]);
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.class == Some(FailureClass::User))
    );
    let pods: std::collections::BTreeSet<&str> = report.attempts.iter().map(|a| a.pod.as_str()).collect();
    assert_eq!(pods.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_exit_codes_are_retried() {
    let sim = SimCluster::start().await.unwrap();
    let (report, _) = run(
        &sim,
        "name = \"picky\"\nimage = \"busybox\"\n[retry]\nuser = 3\non_exit_codes = [75]\nbackoff = \"50ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"exit_code\": 2}'\n",
    )
    .await;
    assert_eq!(report.exit_code, 2);
    assert_eq!(report.attempts.len(), 1);
    assert!(!report.attempts[0].retried);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preemption_is_named_and_retried() {
    let sim = SimCluster::start().await.unwrap();
    sim.faults().preempt(1);
    let (report, _) = run(
        &sim,
        "name = \"victim\"\nimage = \"busybox\"\n[retry]\ninfrastructure = 1\nbackoff = \"100ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"duration_ms\": 800}'\n",
    )
    .await;
    assert_eq!(
        report.outcome,
        Outcome::Succeeded,
        "{} {:?} {:?}",
        report.message,
        report.attempts,
        report
            .final_pod
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .map(|s| &s.conditions)
    );
    let first = &report.attempts[0];
    assert_eq!(first.class, Some(FailureClass::Infrastructure));
    assert!(
        first
            .message
            .contains("(PreemptionByScheduler: Kubernetes default scheduler: preempting"),
        "{}",
        first.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_rate_limit_counts_as_infrastructure() {
    let sim = SimCluster::start().await.unwrap();
    let (report, _) = run(
        &sim,
        "name = \"limited\"\nimage = \"busybox\"\n[run]\nstartup_timeout = \"1s\"\n[retry]\ninfrastructure = 1\nbackoff = \"50ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"pull\": \"rate-limited\"}'\n",
    )
    .await;
    assert_eq!(report.outcome, Outcome::NeverStarted);
    let classes: Vec<_> = report.attempts.iter().map(|a| (a.class, a.retried)).collect();
    assert_eq!(
        classes,
        [
            (Some(FailureClass::Infrastructure), true),
            (Some(FailureClass::Infrastructure), false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interpreter_retry_verdict_has_its_own_budget() {
    let sim = SimCluster::start().await.unwrap();
    let body = format!(
        "name = \"transient\"\nimage = \"busybox\"\n[retry]\nplugin = 1\nuser = 5\nbackoff = \"50ms\"\n[[interpret]]\npath = {:?}\nconfig = {{ retry = [75] }}\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"exit_code\": 75}}'\n",
        crate::harness::plugin("exit-codes").display().to_string()
    );
    let t = task(&body);
    let plugins = kpo::plugin::TaskPlugins::load(&t, crate::harness::plugin_cache())
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let identity = kpo::pod::RunIdentity::generate(&t.name);
    let report = kpo::runner::run_task(
        sim.client(),
        &t,
        plugins.as_ref(),
        identity,
        "default",
        recorder,
        futures::stream::pending(),
        None,
    )
    .await
    .unwrap();
    // The plugin's verdict, not the exit code, decides the class: 2 attempts, not 6.
    let classes: Vec<_> = report.attempts.iter().map(|a| (a.class, a.retried)).collect();
    assert_eq!(
        classes,
        [
            (Some(FailureClass::Plugin), true),
            (Some(FailureClass::Plugin), false)
        ]
    );
    assert_eq!(
        report.decision.as_ref().map(|d| d.verdict),
        Some(kpo::vocabulary::Verdict::Retry)
    );
    assert_eq!(report.exit_code, 75);
}
