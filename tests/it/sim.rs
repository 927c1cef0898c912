//! Runs on the simulated cluster, over HTTP through the real `kube` client: every shared
//! scenario, plus what only the simulator can stage (faults, OOM kills, native sidecars).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kpo::report::Cleanup;
use kpo::sim::{SimCluster, Target};
use kpo::supervise::Interrupt;
use kpo::vocabulary::Outcome;
use kube::Api;

use crate::disruptions;
use crate::harness::{pods_of_run, run, task};
use crate::inert;
use crate::logs;
use crate::never_started;
use crate::params;
use crate::policies;
use crate::scenarios::{self, Cluster};

/// A fresh simulated cluster, and the scenarios' view of it.
pub async fn sim() -> (SimCluster, Cluster) {
    let sim = SimCluster::start().await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let kubeconfig = scratch.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
    let cluster = Cluster {
        client: sim.client(),
        admin: sim.client(),
        ns: "default".into(),
        image: "busybox:1.36".into(),
        node: None,
        kubeconfig: kubeconfig.to_string_lossy().into_owned(),
        _scratch: Some(std::sync::Arc::new(scratch)),
    };
    (sim, cluster)
}

macro_rules! shared {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_sim, c) = sim().await;
            $module::$name(&c).await;
        }
    )*};
}

crate::scenarios::shared_scenarios!(shared);

/// 60 numbered lines, so a lost or repeated line shows.
const COUNTING: &str = r#"
name = "counting"
image = "busybox:1.36"
[annotations]
"container.sim.kpo.dev/base" = '{"log_count": 60, "log_interval_ms": 15}'
"#;

fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("line {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_log_streams_cut_mid_run_deliver_every_line_once() {
    let (sim, c) = sim().await;
    sim.faults().drop_watches(2, 6);
    sim.faults().drop_logs(7, 5);
    let (report, rec) = run(&c.client, &task(COUNTING), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(rec.lines_of("base"), numbered(60));
    assert!(pods_of_run(&c.client, &c.ns, &report.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_read_cut_short_is_read_again_until_nothing_is_new() {
    let (sim, c) = sim().await;
    // Followed streams end at once, so the log is read with plain requests, and the first of
    // those ends after 5 of its 20 lines.
    sim.faults().drop_logs(0, 1000);
    sim.faults().cut_log_reads(5, 1);
    let t = task(
        "name = \"cut\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"log_count\": 20}'\n",
    );
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.exit_code, 0, "{}", report.message);
    assert_eq!(rec.lines_of("base"), numbered(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_resource_versions_relist_and_finish() {
    let (sim, c) = sim().await;
    sim.faults().drop_watches(1, 4);
    sim.faults().expire_watches(4);
    let (report, rec) = run(&c.client, &task(COUNTING), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(rec.lines_of("base"), numbered(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_on_watch_and_logs_are_retried() {
    let (sim, c) = sim().await;
    sim.faults().fail(Target::Watch, 500, 2);
    sim.faults().fail(Target::Logs, 429, 2);
    sim.faults().drop_logs(10, 1);
    let (report, rec) = run(&c.client, &task(COUNTING), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(rec.lines_of("base"), numbered(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_that_stalls_after_exit_is_not_waited_on() {
    let (sim, c) = sim().await;
    sim.faults().stall_logs(1);
    let started = std::time::Instant::now();
    let (report, rec) = run(&c.client, &task(COUNTING), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(rec.lines_of("base"), numbered(60));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stalled stream held the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_image_name_fails_at_once() {
    let (_sim, c) = sim().await;
    let t = task("name = \"bad-image\"\nimage = \"Busybox:1.36\"\n[run]\nstartup_timeout = \"60s\"\n");
    let started = std::time::Instant::now();
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted);
    assert!(report.message.contains("InvalidImageName"), "{}", report.message);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_pull_waits_for_the_startup_timeout() {
    let (_sim, c) = sim().await;
    let t = task(
        r#"
name = "rate-limited"
image = "busybox:1.36"
[run]
startup_timeout = "3s"
[annotations]
"container.sim.kpo.dev/base" = '{"pull": "rate-limited"}'
"#,
    );
    let started = std::time::Instant::now();
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::NeverStarted);
    assert!(
        report.message.contains("did not start within 3s"),
        "{}",
        report.message
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "gave up before the timeout"
    );
    assert!(
        report
            .events
            .iter()
            .any(|e| e.message.contains("toomanyrequests")),
        "{:?}",
        report.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_never_hold_the_run_open() {
    // Native sidecars (init containers with restartPolicy Always) need Kubernetes 1.28+, so the
    // v1.20 real cluster cannot show this; it is covered here (a regular sidecar alone is the
    // shared scenario `a_sidecar_never_holds_the_run_open`).
    let (_sim, c) = sim().await;
    let t = task(
        r#"
name = "with-sidecars"
image = "busybox:1.36"
[[sidecars]]
name = "proxy"
image = "busybox:1.36"
[[init_containers]]
name = "agent"
image = "busybox:1.36"
restartPolicy = "Always"
[run]
logs = "all"
[annotations]
"container.sim.kpo.dev/base" = '{"logs": ["main work"], "duration_ms": 300}'
"container.sim.kpo.dev/proxy" = '{"logs": ["proxy up"], "duration_ms": 3600000}'
"container.sim.kpo.dev/agent" = '{"logs": ["agent up"]}'
"#,
    );
    let started = std::time::Instant::now();
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(rec.lines_of("base"), ["main work"]);
    assert_eq!(rec.lines_of("proxy"), ["proxy up"]);
    assert_eq!(rec.lines_of("agent"), ["agent up"]);
    let roles: Vec<_> = report
        .containers
        .iter()
        .map(|k| (k.name.as_str(), k.role.name()))
        .collect();
    assert_eq!(
        roles,
        [
            ("agent", "native_sidecar"),
            ("base", "main"),
            ("proxy", "sidecar")
        ]
    );
    assert_eq!(report.cleanup, Cleanup::Stopping);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_runs_share_one_client() {
    let (_sim, c) = sim().await;
    let runs = (0..8).map(|i| {
        let t = task(&format!(
            "name = \"batch-{i}\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"task {i}\"], \"exit_code\": {i}}}'\n"
        ));
        let client = c.client.clone();
        async move { run(&client, &t, "default").await }
    });
    let results = futures::future::join_all(runs).await;
    for (i, (report, rec)) in results.iter().enumerate() {
        assert_eq!(report.exit_code, i as i32);
        assert_eq!(rec.lines_of("base"), [format!("task {i}")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_on_create_events_and_delete_are_retried() {
    let (sim, c) = sim().await;
    sim.faults().fail(Target::Create, 500, 2);
    sim.faults().fail(Target::Create, 429, 1);
    sim.faults().fail(Target::Events, 503, 2);
    let t = task(
        "name = \"retry\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"exit_code\": 2}'\n",
    );
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.exit_code, 2, "{}", report.message);
    assert!(!report.events.is_empty(), "events were not read after the 503s");
    assert_eq!(report.cleanup, Cleanup::Deleted);
    assert!(pods_of_run(&c.client, &c.ns, &report.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_refuses_connections_until_it_ends() {
    let (sim, c) = sim().await;
    let addr = sim.url().trim_start_matches("http://").to_owned();
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    api.list(&Default::default()).await.unwrap();
    sim.faults().outage(Duration::from_secs(1));
    crate::harness::wait_until("the listener to close", || async {
        tokio::net::TcpStream::connect(&addr)
            .await
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    // A connection the client already had open is answered 503 and closed; new ones are refused.
    let mut errors = Vec::new();
    for _ in 0..2 {
        let e = api.list(&Default::default()).await.unwrap_err();
        let refused = matches!(e, kube::Error::Service(_) | kube::Error::HyperError(_));
        errors.push(e);
        if refused {
            break;
        }
    }
    assert!(
        matches!(
            errors.last(),
            Some(kube::Error::Service(_) | kube::Error::HyperError(_))
        ),
        "{errors:?}"
    );
    crate::harness::wait_until("the outage to end", || async {
        tokio::net::TcpStream::connect(&addr).await.is_ok()
    })
    .await;
    api.list(&Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_request_waits_as_long_as_retry_after_asks() {
    let (sim, c) = sim().await;
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    // The simulated server's 429 says `Retry-After: 1`.
    sim.faults().fail(Target::Any, 429, 1);
    let asked = std::time::Instant::now();
    let e = api.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 429), "{e:?}");
    assert!(asked.elapsed() >= Duration::from_secs(1), "{:?}", asked.elapsed());
    api.list(&Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_create_fails_at_once_with_the_server_message() {
    let (sim, c) = sim().await;
    sim.faults().fail(Target::Create, 403, 1);
    let (report, _) = run(&c.client, &task(COUNTING), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.exit_code, kpo::exit::REJECTED);
    assert!(
        report.message.contains("cannot create resource"),
        "{}",
        report.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_keeps_failing_is_an_error_and_leaves_nothing() {
    let (sim, c) = sim().await;
    sim.faults().fail(Target::Create, 500, 10_000);
    let t = task("name = \"down\"\nimage = \"busybox\"\n[run]\nstartup_timeout = \"2s\"\n");
    let pod = kpo::pod::build(&t, &kpo::pod::RunIdentity::generate("down"), "default");
    let observer = std::sync::Arc::new(crate::harness::Recorder::default());
    let err = kpo::supervise::launch(
        c.client.clone(),
        pod,
        &t.run,
        observer,
        futures::stream::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot reach the cluster"), "{err}");
    let api: Api<Pod> = Api::default_namespaced(c.client.clone());
    assert!(api.list(&Default::default()).await.unwrap().items.is_empty());
}

/// An observer that panics when the pod is running: a bug in kpo, as far as the run can tell.
struct Panicky;

impl kpo::supervise::Observer for Panicky {
    fn status(&self, entry: &kpo::report::TimelineEntry) {
        assert_ne!(entry.phase, "Running", "simulated bug in kpo");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_kpo_still_deletes_the_pod() {
    use futures::FutureExt;
    let (_sim, c) = sim().await;
    let t = task(
        "name = \"doomed\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"duration_ms\": 60000}'\n",
    );
    let identity = kpo::pod::RunIdentity::generate("doomed");
    let pod = kpo::pod::build(&t, &identity, "default");
    let run = kpo::supervise::launch(
        c.client.clone(),
        pod,
        &t.run,
        std::sync::Arc::new(Panicky),
        futures::stream::pending(),
    );
    let outcome = std::panic::AssertUnwindSafe(run).catch_unwind().await;
    assert!(outcome.is_err(), "the panic is passed on");
    assert!(
        pods_of_run(&c.client, &c.ns, &identity.run_id).await.is_empty(),
        "the pod was left behind"
    );
}

/// Interrupts when the run's pod is running, then once more after `again` (if given).
fn interrupts_when_running(
    client: kube::Client,
    asked: Interrupt,
    again: Option<Duration>,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = Interrupt> + Send>> {
    use futures::StreamExt;
    let first = async move {
        let api: Api<Pod> = Api::default_namespaced(client);
        crate::harness::running_pod(&api, "").await;
    };

    let second = futures::stream::iter(again).then(|d| tokio::time::sleep(d));
    Box::pin(
        futures::stream::once(first)
            .chain(second)
            .map(move |()| asked.clone())
            .chain(futures::stream::pending()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fails_its_deadline_while_being_deleted_is_still_removed() {
    // kpo's timeout (1 s) deletes the pod gracefully; its container ignores SIGTERM, and during
    // the grace period the pod fails its activeDeadlineSeconds (2 s). A v1.20 kubelet then never
    // removes it; the sim does the same, so only kpo's force delete of a finished pod helps.
    let (_sim, c) = sim().await;
    let t = task(
        "name = \"late\"\nimage = \"busybox\"\ntermination_grace_period = 5\nactive_deadline_seconds = 2\n[run]\ntimeout = \"1s\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"duration_ms\": 600000, \"ignore_sigterm\": true}'\n",
    );
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::TimedOut, "{}", report.message);
    assert_eq!(report.cleanup, Cleanup::Deleted);
    // Not even a pod stuck in Terminating is left.
    crate::leftovers::assert_nothing_left(&c, &report).await;
}

const STUBBORN: &str = "name = \"stubborn\"\nimage = \"busybox\"\ntermination_grace_period = 60\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"duration_ms\": 600000, \"ignore_sigterm\": true}'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_interrupt_skips_the_grace_period() {
    let (_sim, c) = sim().await;
    let t = task(STUBBORN);
    let recorder = std::sync::Arc::new(crate::harness::Recorder::default());
    let pod = kpo::pod::build(&t, &kpo::pod::RunIdentity::generate("stubborn"), "default");
    let started = std::time::Instant::now();
    let interrupts = interrupts_when_running(
        c.client.clone(),
        Interrupt::Stop,
        Some(Duration::from_millis(500)),
    );
    let report = kpo::supervise::launch(c.client.clone(), pod, &t.run, recorder.clone(), interrupts)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert!(recorder.saw_notice("interrupted again"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "kpo waited out the 60 s grace period"
    );
    let api: Api<Pod> = Api::default_namespaced(c.client.clone());
    assert!(api.list(&Default::default()).await.unwrap().items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_leaves_the_pod_running() {
    let (_sim, c) = sim().await;
    let t = task(STUBBORN);
    let recorder = std::sync::Arc::new(crate::harness::Recorder::default());
    let pod = kpo::pod::build(&t, &kpo::pod::RunIdentity::generate("stubborn"), "default");
    let interrupts = interrupts_when_running(c.client.clone(), Interrupt::Detach, None);
    let report = kpo::supervise::launch(c.client.clone(), pod, &t.run, recorder.clone(), interrupts)
        .await
        .unwrap();
    assert_eq!(
        (report.outcome, report.cleanup),
        (Outcome::Interrupted, Cleanup::Detached)
    );
    assert_eq!(report.exit_code, kpo::exit::INTERRUPTED);
    assert!(recorder.saw_notice("kubectl logs -f"));
    let left = pods_of_run(&c.client, &c.ns, &report.run_id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_are_reloaded_and_the_run_goes_on() {
    credentials_rotate_mid_run(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_are_reloaded_and_a_failure_is_still_reported() {
    credentials_rotate_mid_run(3).await;
}

/// The fault matrix's "expired credentials" row, for a task exiting with `exit_code`.
async fn credentials_rotate_mid_run(exit_code: i32) {
    // The API server starts refusing the token mid-run (401), and the token file gets a new
    // one, as a rotation does. kube re-reads the file within a minute; until then kpo retries.
    let sim = SimCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "alpha").unwrap();
    sim.faults().require_token(Some("alpha"));
    let client_for = |path: &std::path::Path| {
        let yaml = sim
            .kubeconfig()
            .replace("user: {}", &format!("user: {{tokenFile: {}}}", path.display()));
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        async move {
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .unwrap();
            kpo::client::build(config).unwrap()
        }
    };
    let client = client_for(&token).await;
    let rotate = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::fs::write(&token, "beta").unwrap();
        sim.faults().require_token(Some("beta"));
    };
    let t = task(&format!(
        "name = \"rotated\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"log_count\": 20, \"log_interval_ms\": 100, \"exit_code\": {exit_code}}}'\n"
    ));
    let ((report, recorder), ()) = tokio::join!(run(&client, &t, "default"), rotate);
    assert_eq!(report.exit_code, exit_code, "{}", report.message);
    assert_eq!(recorder.lines_of("base"), numbered(20));
    let fresh = client_for(&token).await;
    assert!(pods_of_run(&fresh, "default", &report.run_id).await.is_empty());
}

/// A task whose own containers meet the `restricted` Pod Security Standard runs in a namespace
/// that enforces it, kpo's result sidecar included; one whose containers do not is refused with
/// the API server's words. (Kubernetes enforces the standards from 1.23 on; the v1.20 test
/// cluster does not, so this runs on the sim only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_task_runs_in_a_namespace_enforcing_restricted() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_sim, c) = sim().await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let locked: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "locked", "labels": {kpo::pss::ENFORCE_LABEL: "restricted"}}
    }))
    .unwrap();
    namespaces.create(&Default::default(), &locked).await.unwrap();
    let hardening = "[security_context]\nrunAsNonRoot = true\nrunAsUser = 1000\nseccompProfile = { type = \"RuntimeDefault\" }\n[container_security_context]\nallowPrivilegeEscalation = false\ncapabilities = { drop = [\"ALL\"] }\n";
    let body = "name = \"locked\"\nimage = \"busybox\"\n[result]\nvia = \"sidecar\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"write_path\": \"/kpo/result.json\", \"write\": \"{\\\"rows\\\": 1}\"}'\n";
    let (report, _) = run(&c.client, &task(&format!("{body}{hardening}")), "locked").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_eq!(report.result, Some(serde_json::json!({"rows": 1})));
    let (refused, _) = run(&c.client, &task(body), "locked").await;
    assert_eq!(refused.exit_code, kpo::exit::REJECTED, "{}", refused.message);
    assert!(
        refused
            .message
            .contains("violates PodSecurity \"restricted:latest\""),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.contains("kpo-result"),
        "kpo's own container is never the problem: {}",
        refused.message
    );
}

/// The client's token bucket paces requests: with a burst of 1 at 20 a second, eleven requests
/// cannot take less than half a second (a lower bound the bucket guarantees, not a timing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_a_token_of_the_clients_rate_limit() {
    let sim = SimCluster::start().await.unwrap();
    let limit = kpo::client::RateLimit {
        per_second: std::num::NonZeroU32::new(20).unwrap(),
        burst: std::num::NonZeroU32::new(1).unwrap(),
    };
    let api: Api<Pod> = Api::default_namespaced(sim.client_limited(limit));
    let started = std::time::Instant::now();
    for _ in 0..11 {
        api.list(&Default::default()).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "11 requests in {:?} at 20/s",
        started.elapsed()
    );
    assert_eq!(sim.record().requests, 11);
}

/// The README's inline pod fields, with a generic ephemeral volume added (gated on the real
/// v1.20 cluster): each lands where Kubernetes expects it, and the pod runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_pod_fields_land_in_the_pod_and_run() {
    let (_sim, c) = sim().await;
    let mut text: toml::Table = crate::readme::snippet("**Pod fields inline.**", "toml")
        .parse()
        .unwrap();
    let ephemeral: toml::Table = r#"
name = "scratch"
mounts = [{ path = "/scratch" }, { path = "/scratch", container = "watcher" }]
[ephemeral.volumeClaimTemplate.spec]
accessModes = ["ReadWriteOnce"]
resources = { requests = { storage = "1Gi" } }
"#
    .parse()
    .unwrap();
    text["volumes"].as_array_mut().unwrap().push(ephemeral.into());
    let t = task(&toml::to_string(&text).unwrap());
    let pod = kpo::pod::build(&t, &kpo::pod::RunIdentity::generate(&t.name), &c.ns);
    let pod = serde_json::to_value(&pod).unwrap();
    let spec = &pod["spec"];
    assert_eq!(spec["hostNetwork"], false);
    assert_eq!(spec["dnsConfig"]["options"][0]["name"], "ndots");
    assert_eq!(spec["hostAliases"][0]["hostnames"][0], "db.internal");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    let volume = |name: &str| {
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
    };
    assert_eq!(volume("host-etc").unwrap()["hostPath"]["type"], "Directory");
    assert_eq!(volume("shared").unwrap()["nfs"]["server"], "nfs.example.com");
    assert_eq!(
        volume("vault").unwrap()["csi"]["volumeAttributes"]["secretProviderClass"],
        "vault"
    );
    assert!(volume("scratch").unwrap()["ephemeral"]["volumeClaimTemplate"]["spec"].is_object());
    let container = |name: &str| {
        spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    let mounts = |name: &str| -> Vec<(String, String)> {
        container(name)["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["mountPath"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        mounts("base"),
        [
            pair("host-etc", "/host-etc"),
            pair("info", "/info"),
            pair("scratch", "/scratch")
        ]
    );
    assert_eq!(
        mounts("watcher"),
        [pair("info", "/pod-info"), pair("scratch", "/scratch")]
    );
    let base = container("base");
    assert_eq!(
        base["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(base["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"], "1Mi");
    assert_eq!(base["ports"][0]["name"], "http");
    let (report, _) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
}
