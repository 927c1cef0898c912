//! A pod deleted from outside while it runs — an eviction through the API, as `kubectl drain`
//! does, on a cluster that sets no DisruptionTarget condition (before Kubernetes 1.26) — is an
//! infrastructure failure whatever the container's exit code; a deletion a kpo command made is
//! not, and is never retried. Shared by the simulated and the real cluster.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kpo::pod::{LABEL_ATTEMPT, LABEL_RUN_ID, RunIdentity};
use kpo::report::RunReport;
use kpo::vocabulary::FailureClass;
use kpo::vocabulary::Outcome;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::harness::{Recorder, task};
use crate::scenarios::{Cluster, unique};

/// A task that runs until it is stopped, and stops at once on SIGTERM (exit 143).
fn long_task(c: &Cluster, name: &str) -> kpo::task::Task {
    task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "trap 'exit 143' TERM; echo working; sleep 60 & wait"]
termination_grace_period = 5
[retry]
infrastructure = 1
backoff = "100ms"
[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["working"], "duration_ms": 60000}}'
"#,
        image = c.image
    ))
}

/// The pod of attempt `attempt` of the run, once its main container runs.
async fn running(c: &Cluster, run_id: &str, attempt: u32) -> Pod {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let labels = format!("{LABEL_RUN_ID}={run_id},{LABEL_ATTEMPT}={attempt}");
    let pods = watcher(api, watcher::Config::default().labels(&labels)).applied_objects();
    let mut pods = std::pin::pin!(pods);
    while let Some(pod) = pods.next().await {
        let Ok(pod) = pod else { continue };
        let started = kpo::status::of(&pod, "base")
            .and_then(|s| s.state.as_ref())
            .is_some_and(|s| s.running.is_some());
        if started {
            return pod;
        }
    }
    panic!("the watch ended before attempt {attempt} ran");
}

/// Runs `task` with retries while `act` does something to each attempt's running pod.
async fn run_while<F, Fut>(c: &Cluster, task: &kpo::task::Task, attempts: u32, act: F) -> RunReport
where
    F: Fn(Pod) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let identity = RunIdentity::generate(&task.name);
    let run_id = identity.run_id.clone();
    let run = kpo::runner::run_task(
        c.client.clone(),
        task,
        None,
        identity,
        &c.ns,
        Arc::new(Recorder::default()),
        futures::stream::pending(),
        None,
    );
    let acting = async {
        for attempt in 1..=attempts {
            act(running(c, &run_id, attempt).await).await;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        report = run => report.expect("the cluster answers"),
        () = acting => unreachable!(),
    }
}

pub async fn an_eviction_is_an_infrastructure_failure_on_any_version(c: &Cluster) {
    let t = long_task(c, &unique("evicted"));
    let api: Api<Pod> = Api::namespaced(c.admin.clone(), &c.ns);
    let evict = |pod: Pod| {
        let api = api.clone();
        async move {
            let name = pod.metadata.name.unwrap_or_default();
            api.evict(&name, &Default::default())
                .await
                .expect("the eviction is accepted");
        }
    };
    let report = Box::pin(run_while(c, &t, 2, evict)).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.message);
    assert_eq!(report.attempts.len(), 2, "retried once: {:?}", report.attempts);
    let first = &report.attempts[0];
    assert_eq!(
        (first.class, first.retried),
        (Some(FailureClass::Infrastructure), true)
    );
    assert!(
        first
            .message
            .contains("after the pod was disrupted (deleted by someone else while it ran"),
        "{}",
        first.message
    );
    assert!(report.disruption.is_some(), "the report names the disruption");
}

pub async fn a_run_stopped_with_kpo_delete_is_not_retried(c: &Cluster) {
    let t = long_task(c, &unique("stopped"));
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let stop = |pod: Pod| {
        let api = api.clone();
        async move {
            let (name, uid) = (
                pod.metadata.name.unwrap_or_default(),
                pod.metadata.uid.unwrap_or_default(),
            );
            kpo::stop::stop(&api, &name, &uid, "kpo delete", None)
                .await
                .expect("kpo may stop its pod");
        }
    };
    let report = Box::pin(run_while(c, &t, 1, stop)).await;
    assert_ne!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(report.attempts.len(), 1, "not retried: {:?}", report.attempts);
    assert_eq!(report.attempts[0].class, None, "{:?}", report.attempts);
    assert!(report.message.contains("kpo delete"), "{}", report.message);
    assert_eq!(report.disruption, None);
}
