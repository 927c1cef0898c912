//! The fault-injection matrix: every fault the simulated cluster can inject, against a task that
//! succeeds and one that fails. Each cell asserts the outcome and exit code, every log line
//! printed exactly once (by the attempt that finished), and no pod left behind.
//! (kpo itself killed with SIGKILL and restarted is in `reattach.rs`.)

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kpo::sim::{SimCluster, Target};
use kpo::vocabulary::Outcome;
use kube::Api;
use kube::api::DeleteParams;

use crate::harness::{Recorder, task};

/// What happens to the cluster during the run.
#[derive(Clone, Copy)]
enum Fault {
    WatchDrop,
    LogDrop,
    LogStall,
    Gone410,
    ServerErrors,
    TooManyRequests,
    Outage,
    Eviction,
    Preemption,
    DeletedBySomeoneElse,
}

const LINES: usize = 30;

/// Waits until a pod of the run is running, then returns its name.
async fn running_pod(client: kube::Client) -> String {
    let api: Api<Pod> = Api::default_namespaced(client);
    let pod = crate::harness::running_pod(&api, "").await;
    pod.metadata.name.unwrap_or_default()
}

async fn cell(fault: Fault, exit_code: i32) {
    let sim = SimCluster::start().await.unwrap();
    let faults = sim.faults();
    match fault {
        Fault::WatchDrop => faults.drop_watches(2, 5),
        Fault::LogDrop => faults.drop_logs(5, 4),
        Fault::LogStall => faults.stall_logs(1),
        Fault::Gone410 => {
            faults.drop_watches(1, 3);
            faults.expire_watches(3);
        }
        Fault::ServerErrors => {
            for target in [Target::Create, Target::Watch, Target::Logs, Target::Events] {
                faults.fail(target, 500, 3);
            }
        }
        Fault::TooManyRequests => {
            for target in [Target::Create, Target::Watch, Target::Logs] {
                faults.fail(target, 429, 2);
            }
        }
        Fault::Eviction => faults.evict(1),
        Fault::Preemption => faults.preempt(1),
        Fault::Outage | Fault::DeletedBySomeoneElse => {}
    }
    let client = sim.client();
    let trigger = async {
        match fault {
            Fault::Outage => {
                running_pod(client.clone()).await;
                faults.outage(Duration::from_secs(3));
            }
            Fault::DeletedBySomeoneElse => {
                let name = running_pod(client.clone()).await;
                let api: Api<Pod> = Api::default_namespaced(client.clone());
                api.delete(&name, &DeleteParams::default().grace_period(0))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    };
    let t = task(&format!(
        "name = \"matrix\"\nimage = \"busybox\"\n[retry]\ninfrastructure = 1\nbackoff = \"100ms\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"log_count\": {LINES}, \"log_interval_ms\": 40, \"exit_code\": {exit_code}}}'\n"
    ));
    let recorder = Arc::new(Recorder::default());
    let identity = kpo::pod::RunIdentity::generate("matrix");
    let run = kpo::runner::run_task(
        client.clone(),
        &t,
        None,
        identity,
        "default",
        recorder.clone(),
        futures::stream::pending(),
        None,
    );
    let (report, ()) = tokio::join!(run, trigger);
    let report = report.unwrap();
    let expected_exit = exit_code;
    assert_eq!(
        report.exit_code,
        expected_exit,
        "{}: {}",
        report.message,
        report.attempts.len()
    );
    let expected_outcome = if exit_code == 0 {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    assert_eq!(report.outcome, expected_outcome, "{}", report.message);
    let lines = recorder.lines_of("base");
    let numbered: Vec<String> = (1..=LINES).map(|i| format!("line {i}")).collect();
    if report.attempts.len() == 1 {
        assert_eq!(lines, numbered, "every line exactly once");
    } else {
        // A retried run: the last attempt's pod printed everything, exactly once.
        assert!(lines.ends_with(&numbered), "the last attempt's lines: {lines:?}");
    }
    let api: Api<Pod> = Api::default_namespaced(client);
    let left = api.list(&Default::default()).await.unwrap().items;
    assert!(
        left.is_empty(),
        "pods left: {:?}",
        left.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
}

macro_rules! matrix {
    ($($name:ident => $fault:expr),* $(,)?) => {
        mod succeeds {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    cell($fault, 0).await;
                }
            )*
        }
        mod fails {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    cell($fault, 3).await;
                }
            )*
        }
    };
}

matrix!(
    watch_drop => Fault::WatchDrop,
    log_drop => Fault::LogDrop,
    log_stall => Fault::LogStall,
    gone_410 => Fault::Gone410,
    server_errors => Fault::ServerErrors,
    too_many_requests => Fault::TooManyRequests,
    outage => Fault::Outage,
    eviction => Fault::Eviction,
    preemption => Fault::Preemption,
    deleted_by_someone_else => Fault::DeletedBySomeoneElse,
);
