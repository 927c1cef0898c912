//! One supervisor per run: two kpo with one run id at once give one pod and one supervisor, the
//! other refusing (exit 75, naming the holder) or, with `--wait`, waiting and then reporting; a
//! kpo whose claim is taken over stops acting on the pod and leaves it (a kpo cut off from the
//! API server is `outages.rs`'s). On the sim and on the real cluster (`e2e.rs`).

use std::path::Path;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

/// A run of `lines` lines, 100 ms apart, whose pod is kept (so the test can count the run's pods).
fn kept_task(image: &str, dir: &Path, lines: usize) -> std::path::PathBuf {
    let text = format!(
        r#"name = "claimed"
image = "{image}"
command = ["sh", "-c", "for i in $(seq 1 {lines}); do echo line $i; sleep 0.1; done"]
[run]
on_finish = "keep"
[annotations]
"container.sim.kpo.dev/base" = '{{"log_count": {lines}, "log_interval_ms": 100}}'
"#
    );
    crate::outages::task_file(dir, &format!("kept-{lines}.toml"), &text)
}

use crate::reattach::kpo_run as kpo;

/// Takes run `run_id`'s claim over for `holder`, as another party would: the Lease as it is
/// now, written with its `resourceVersion` (read again after a write of its kpo's in between).
/// Waits for the Lease to exist.
pub async fn take_over(leases: &Api<Lease>, run_id: &str, holder: String) {
    let name = kpo::claim::lease_name(run_id);
    loop {
        let mut lease = crate::harness::wait_for("the kpo's claim", || async {
            leases.get_opt(&name).await.ok().flatten()
        })
        .await;
        lease.spec.as_mut().unwrap().holder_identity = Some(holder.clone());
        match leases.replace(&name, &PostParams::default(), &lease).await {
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            written => return drop(written.unwrap()),
        }
    }
}

/// The run's pods, and after the test, nothing of it left.
async fn pods_and_clean_up(api: &Api<Pod>, leases: &Api<Lease>, run_id: &str) -> usize {
    let params = ListParams::default().labels(&format!("kpo.dev/run-id={run_id}"));
    let pods = api.list(&params).await.unwrap().items;
    for p in &pods {
        let _ = api
            .delete(
                p.metadata.name.as_deref().unwrap(),
                &DeleteParams::default().grace_period(0),
            )
            .await;
    }
    let _ = leases
        .delete(&kpo::claim::lease_name(run_id), &DeleteParams::default())
        .await;
    pods.len()
}

/// `config`: the kubeconfig kpo runs with; `admin`: one that may do what another party does
/// (take a Lease over).
pub fn claims_on(config: &str, admin: &str, image: &str, dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(crate::harness::e2e_client(admin));
    let (api, leases): (Api<Pod>, Api<Lease>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client),
    );
    let task = kept_task(image, dir, 40);

    // Two at once, as from two machines: one pod, one supervisor, the other refuses.
    let run_id = format!("together-{}", kpo::names::random_suffix(4));
    let a = kpo(config, &run_id, &dir.join("a"), &task, &[]).spawn().unwrap();
    let b = kpo(config, &run_id, &dir.join("b"), &task, &[]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(kpo::exit::CLAIMED)], "{a:?}\n{b:?}");
    let refused = if a.status.code() == Some(0) { &b } else { &a };
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("is supervised by another kpo ("), "{said}");
    assert!(refused.stdout.is_empty(), "the refused kpo printed the log");
    let winner = if a.status.code() == Some(0) { &a } else { &b };
    assert_eq!(String::from_utf8_lossy(&winner.stdout).lines().count(), 40);
    assert_eq!(
        rt.block_on(pods_and_clean_up(&api, &leases, &run_id)),
        1,
        "exactly one pod"
    );

    // With --wait the second waits for the first, then reports the finished run from its pod.
    let run_id = format!("waiting-{}", kpo::names::random_suffix(4));
    let mut first = kpo(config, &run_id, &dir.join("c"), &task, &[]).spawn().unwrap();
    rt.block_on(crate::harness::wait_until("the first kpo's claim", || async {
        leases
            .get_opt(&kpo::claim::lease_name(&run_id))
            .await
            .ok()
            .flatten()
            .is_some()
    }));
    let second = kpo(config, &run_id, &dir.join("d"), &task, &["--wait"])
        .output()
        .unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).lines().count(),
        40,
        "the finished run's log"
    );
    assert_eq!(
        rt.block_on(pods_and_clean_up(&api, &leases, &run_id)),
        1,
        "exactly one pod"
    );

    // Another party takes the claim over mid-run: the supervisor stops, leaves the pod, says so
    // (at its next renewal, within seconds: the run lasts longer).
    let run_id = format!("stolen-{}", kpo::names::random_suffix(4));
    let long = kept_task(image, dir, 200);
    let running = kpo(config, &run_id, &dir.join("e"), &long, &[]).spawn().unwrap();
    // Mid-run: once the pod exists (a claim taken before stops the run before its pod).
    let selector = ListParams::default().labels(&format!("kpo.dev/run-id={run_id}"));
    rt.block_on(crate::harness::wait_until("the run's pod", || async {
        api.list(&selector).await.is_ok_and(|l| !l.items.is_empty())
    }));
    rt.block_on(take_over(&leases, &run_id, "someone-else".into()));
    let out = running.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CLAIMED), "{said}");
    assert!(said.contains("was taken over by someone-else"), "{said}");
    assert!(
        !said.contains("kubectl delete pod"),
        "advice to delete a pod it no longer holds: {said}"
    );
    let left = rt.block_on(async {
        let params = ListParams::default().labels(&format!("kpo.dev/run-id={run_id}"));
        api.list(&params).await.unwrap().items
    });
    assert_eq!(
        left.len(),
        1,
        "the pod was deleted by a kpo that no longer held the run"
    );
    assert!(left[0].metadata.deletion_timestamp.is_none());
    let lease = rt.block_on(leases.get(&kpo::claim::lease_name(&run_id))).unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("someone-else"),
        "the successor's claim was released by the one that lost it"
    );
    rt.block_on(pods_and_clean_up(&api, &leases, &run_id));
}

#[test]
fn one_supervisor_per_run() {
    let (_rt, _sim, dir, config) = crate::cli::sim_with_kubeconfig();
    claims_on(&config, &config, "busybox", dir.path());
}

/// `kpo run` of a task whose one line of `bytes` a loaded kubelet serves at 300 KB/s, once its
/// pod has finished: kpo is still reading the log. The running kpo, the pods, the run's selector.
fn draining(
    rt: &tokio::runtime::Runtime,
    sim: &kpo::sim::SimCluster,
    dir: &Path,
    config: &str,
    run_id: &str,
    bytes: usize,
) -> (std::process::Child, Api<Pod>, String) {
    sim.faults().slow_log_streams(300_000);
    sim.faults().slow_log_reads(300_000);
    let text = format!(
        "name = \"drained\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"long_line\": {bytes}}}'\n"
    );
    let task = crate::outages::task_file(dir, "drained.toml", &text);
    let running = kpo(config, run_id, &dir.join("a"), &task, &[]).spawn().unwrap();
    let pods: Api<Pod> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let selector = format!("kpo.dev/run-id={run_id}");
    rt.block_on(crate::harness::wait_until("the pod to finish", || async {
        let listed = pods.list(&ListParams::default().labels(&selector)).await;
        listed.is_ok_and(|l| l.items.iter().any(kpo::status::finished))
    }));
    (running, pods, selector)
}

/// A claim taken over while kpo reads a finished container's log to its end (5 MB, served at
/// 300 KB/s by a loaded kubelet) ends the run at once with 75, and the pod — which kpo would
/// have deleted next — stays for its new holder.
#[test]
fn a_claim_lost_mid_drain_never_deletes_the_pod() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let run_id = "drained";
    let (running, pods, selector) = draining(&rt, &sim, dir.path(), &config, run_id, 5_000_000);
    let leases: Api<Lease> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    rt.block_on(take_over(&leases, run_id, "someone-else".into()));
    let out = running.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CLAIMED), "{said}");
    assert!(said.contains("taken over by someone-else"), "{said}");
    assert!(
        out.stdout.len() < 5_000_000,
        "the log was read to its end before the claim was lost: the test staged nothing"
    );
    let left = rt
        .block_on(pods.list(&ListParams::default().labels(&selector)))
        .unwrap()
        .items;
    assert_eq!(
        left.len(),
        1,
        "the pod was deleted by a kpo that no longer held the run"
    );
    assert!(left[0].metadata.deletion_timestamp.is_none());
}

/// Whoever can write a run's Lease names its holder: a holder of a terminal escape and 100 KB
/// reaches kpo's words — the terminal and the run report — escaped and cut, never raw.
#[test]
fn a_hostile_holder_name_is_made_inert() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = kept_task("busybox", dir.path(), 200);
    let run_id = "hostile-holder";
    let json = ["--output", "json"];
    let running = kpo(&config, run_id, &dir.path().join("a"), &task, &json)
        .spawn()
        .unwrap();
    rt.block_on(async {
        let leases: Api<Lease> = Api::default_namespaced(sim.client());
        let holder = format!("\u{1b}[2J{}", "x".repeat(100_000));
        take_over(&leases, run_id, holder).await;
    });
    let out = running.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::CLAIMED),
        "{}",
        &said[..said.len().min(2000)]
    );
    assert!(!said.contains('\u{1b}'), "a raw escape reached the terminal");
    assert!(
        said.contains("taken over by \\u{1b}[2J"),
        "{}",
        &said[..said.len().min(2000)]
    );
    assert!(
        said.len() < 30_000,
        "the holder's name was not cut: {} bytes",
        said.len()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("taken over by \\u{1b}[2J"),
        "{}",
        &message[..message.len().min(500)]
    );
    assert!(
        message.len() < 10_000,
        "the report keeps the whole name: {} bytes",
        message.len()
    );
}

/// A Lease of run `run_id` held by `holder`, renewed `renewed` from now (negative: in the
/// past), its process recorded as `record` if given.
fn foreign_lease(run_id: &str, holder: &str, renewed: jiff::SignedDuration, record: Option<String>) -> Lease {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let mut lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(kpo::claim::lease_name(run_id)),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::now() + renewed)),
            ..Default::default()
        }),
    };
    if let Some(record) = record {
        lease.metadata.annotations = Some([("kpo.dev/holder-process".to_owned(), record)].into());
    }
    lease
}

/// Runs `cmd`; its output, or a failure once `limit` has passed (the kpo is killed).
fn output_within(mut cmd: std::process::Command, limit: std::time::Duration) -> std::process::Output {
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        // SAFETY: a plain kill of the child this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        panic!("kpo still waited after {limit:?}")
    })
}

/// A claim's holder is judged by what cannot be borrowed: its renewals, watched on this kpo's
/// own clock, and a process identity two containers cannot share — never by comparing two
/// machines' clocks, nor by a hostname and a PID.
pub fn claims_judged_without_borrowing_on(config: &str, admin: &str, image: &str, dir: &Path) {
    use std::time::Duration;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(crate::harness::e2e_client(admin));
    let (pods, leases): (Api<Pod>, Api<Lease>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client),
    );
    let task = crate::outages::task_file(
        dir,
        "borrowed.toml",
        &format!(
            "name = \"borrowed\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"echo ran\"]\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"logs\": [\"ran\"]}}'\n"
        ),
    );
    let created = |run_id: &str| {
        let params = ListParams::default().labels(&format!("kpo.dev/run-id={run_id}"));
        rt.block_on(pods.list(&params)).unwrap().items.len()
    };
    let secs = jiff::SignedDuration::from_secs;

    // A live holder whose clock is 20 s behind: its claim looks expired here, but it is renewed
    // while watched, so it is held.
    let run_id = format!("behind-{}", kpo::names::random_suffix(4));
    let lease = foreign_lease(&run_id, "elsewhere/7/abcd", secs(-20), None);
    rt.block_on(leases.create(&PostParams::default(), &lease))
        .unwrap();
    let renewing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let renewer = {
        let (leases, run_id, renewing) = (leases.clone(), run_id.clone(), renewing.clone());
        rt.spawn(async move {
            let name = kpo::claim::lease_name(&run_id);
            while renewing.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(mut lease) = leases.get(&name).await {
                    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(20);
                    lease.spec.as_mut().unwrap().renew_time =
                        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(at));
                    let _ = leases.replace(&name, &PostParams::default(), &lease).await;
                }
            }
        })
    };
    let out = output_within(
        kpo(config, &run_id, &dir.join("b"), &task, &[]),
        Duration::from_secs(60),
    );
    renewing.store(false, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(renewer).unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CLAIMED), "{said}");
    assert!(said.contains("elsewhere/7/abcd"), "{said}");
    assert_eq!(created(&run_id), 0, "a pod of a run another kpo holds");
    rt.block_on(pods_and_clean_up(&pods, &leases, &run_id));

    // A holder whose clock is 10 minutes ahead, gone: without --wait it is held; with --wait
    // the claim is taken once it has gone unrenewed for a term on this kpo's clock.
    let run_id = format!("ahead-{}", kpo::names::random_suffix(4));
    let lease = foreign_lease(&run_id, "elsewhere/7/abcd", secs(600), None);
    rt.block_on(leases.create(&PostParams::default(), &lease))
        .unwrap();
    let out = output_within(
        kpo(config, &run_id, &dir.join("c"), &task, &[]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::CLAIMED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmd = kpo(config, &run_id, &dir.join("c"), &task, &["--wait"]);
    let out = output_within(cmd, Duration::from_secs(90));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    rt.block_on(pods_and_clean_up(&pods, &leases, &run_id));

    // Same hostname, a PID no process here has — but another PID namespace (another container
    // of the pod): not judged gone, held. In this PID namespace: gone, taken at once.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let here = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let holder = format!("shared-host/{}/abcd", i32::MAX);
    let record = |pid_ns: &str| {
        format!(
            "{holder} boot={} pidns={pid_ns} pid={} start=1",
            boot.trim(),
            i32::MAX
        )
    };
    for (pid_ns, code) in [("pid:[1]", kpo::exit::CLAIMED), (here.to_str().unwrap(), 0)] {
        let run_id = format!("shared-{}", kpo::names::random_suffix(4));
        let lease = foreign_lease(&run_id, &holder, secs(0), Some(record(pid_ns)));
        rt.block_on(leases.create(&PostParams::default(), &lease))
            .unwrap();
        let mut cmd = kpo(config, &run_id, &dir.join("d"), &task, &[]);
        cmd.env("HOSTNAME", "shared-host");
        let out = output_within(cmd, Duration::from_secs(60));
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "holder in {pid_ns}: {said}");
        rt.block_on(pods_and_clean_up(&pods, &leases, &run_id));
    }
}

#[test]
fn claims_are_judged_without_borrowing() {
    let (_rt, _sim, dir, config) = crate::cli::sim_with_kubeconfig();
    claims_judged_without_borrowing_on(&config, &config, "busybox", dir.path());
}

/// `kpo gc` while a run's kpo still reads its finished pod's log (3 MB served at 300 KB/s): the
/// pod is its supervisor's — gc leaves it, saying so, and the run ends with every byte.
#[test]
fn gc_leaves_the_pods_of_a_supervised_run() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let (running, pods, selector) = draining(&rt, &sim, dir.path(), &config, "supervised", 3_000_000);
    let gc = crate::harness::kpo_command()
        .args(["gc", "--kubeconfig", &config])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&gc.stdout);
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(said.contains("but its run is supervised by"), "{said}");
    let left = rt
        .block_on(pods.list(&ListParams::default().labels(&selector)))
        .unwrap()
        .items;
    assert!(
        left.iter().all(|p| p.metadata.deletion_timestamp.is_none()),
        "gc deleted it"
    );
    let out = running.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 3_000_001, "the whole log");
}

/// `kpo run --run-id <batch>-<task>` while the batch's kpo supervises that member: claimed
/// through its batch, so it refuses (75, naming the batch) — never a second supervisor, never
/// a second pod.
#[test]
fn a_live_batch_member_is_claimed_through_its_batch() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    for name in ["a", "b"] {
        let text = format!(
            "name = \"{name}\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"log_count\": 40, \"log_interval_ms\": 100}}'\n"
        );
        std::fs::write(tasks.join(format!("{name}.toml")), text).unwrap();
    }
    let batch = crate::harness::kpo_command()
        .args(["run", "--kubeconfig", &config, "--run-id", "bat"])
        .arg(&tasks)
        .env("KPO_STATE_DIR", dir.path().join("first"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pods: Api<Pod> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let member = ListParams::default().labels("kpo.dev/run-id=bat-a");
    rt.block_on(crate::harness::wait_until("the member's pod", || async {
        pods.list(&member).await.is_ok_and(|l| !l.items.is_empty())
    }));
    let out = kpo(
        &config,
        "bat-a",
        &dir.path().join("second"),
        &tasks.join("a.toml"),
        &[],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::CLAIMED), "{said}");
    assert!(said.contains("member of batch bat"), "{said}");
    let out = batch.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = sim.record().created_per_run;
    assert_eq!(created.get("bat-a"), Some(&1), "{created:?}");
}

/// A pod made by someone else, labelled as run `run_id`'s (attempt 999), ending with `exit`:
/// `forged` on its output.
fn forged_pod(run_id: &str, image: &str, exit: i32, batch: Option<&str>) -> Pod {
    let mut labels = serde_json::json!({
        "kpo.dev/run-id": run_id, "kpo.dev/attempt": "999", "kpo.dev/task": "claimed",
        "app.kubernetes.io/managed-by": "kpo",
    });
    if let Some(batch) = batch {
        labels["kpo.dev/batch"] = batch.into();
    }
    let mut script = serde_json::json!({"logs": ["forged"], "exit_code": exit});
    if batch.is_some() {
        script["duration_ms"] = 600_000.into();
    }
    let command = match batch {
        Some(_) => "echo forged; sleep 600".to_owned(),
        None => format!("echo forged; exit {exit}"),
    };
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("forged-{}", kpo::names::random_suffix(5)),
            "labels": labels,
            "annotations": {"kpo.dev/on-finish": "delete", "container.sim.kpo.dev/base": script.to_string()},
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "base", "image": image, "command": ["sh", "-c", command]}],
        },
    }))
    .unwrap()
}

/// Labels are no identity: a pod anyone labelled as a run's (attempt 999) is never followed or
/// reported as the run's, deleted by no command — not `run --run-id`, `delete`, `gc` nor a
/// batch's sweep — and `kpo logs` shows it only marked unverified.
pub fn forged_labels_on(config: &str, admin: &str, image: &str, dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(crate::harness::e2e_client(admin));
    let (pods, leases): (Api<Pod>, Api<Lease>) = (
        Api::default_namespaced(client.clone()),
        Api::default_namespaced(client),
    );
    let cli = |state: &str, args: &[&str]| {
        crate::harness::kpo_command()
            .args(args)
            .args(["--kubeconfig", config])
            .env("KPO_STATE_DIR", dir.join(state))
            .output()
            .unwrap()
    };
    let run_id = format!("forged-{}", kpo::names::random_suffix(4));
    let task = kept_task(image, dir, 3);
    let out = kpo(config, &run_id, &dir.join("a"), &task, &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forged = rt.block_on(pods.create(&PostParams::default(), &forged_pod(&run_id, image, 3, None)));
    let forged = forged.unwrap().metadata.name.unwrap();
    rt.block_on(crate::harness::wait_until("the forged pod to finish", || async {
        pods.get(&forged).await.is_ok_and(|p| kpo::status::finished(&p))
    }));
    let standing = |name: &str| {
        rt.block_on(pods.get_opt(name))
            .unwrap()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    };

    // From another machine: the run's own kept pod is reported, attempt 999 is left alone.
    let out = kpo(config, &run_id, &dir.join("b"), &task, &[]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 1\nline 2\nline 3\n",
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "pod default/{forged} carries the labels of run {run_id}, but the run does not record it"
        )),
        "{said}"
    );
    assert!(standing(&forged));

    // `kpo delete` deletes the run's pod, not the forged one.
    let out = cli("c", &["delete", &run_id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(standing(&forged), "kpo delete deleted the forged pod");
    let own = ListParams::default().labels(&format!("kpo.dev/run-id={run_id},kpo.dev/attempt=1"));
    rt.block_on(crate::harness::wait_until("the run's pod to go", || async {
        pods.list(&own).await.is_ok_and(|l| l.items.is_empty())
    }));

    // Only the forged pod is left: `logs` shows it marked unverified, `delete` refuses it, `gc`
    // leaves it although it is finished and asks to be deleted.
    let out = cli("d", &["logs", &run_id]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forged\n");
    assert!(said.contains("unverified"), "{said}");
    let out = cli("e", &["delete", &run_id]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(kpo::exit::FAILED), "{said}");
    assert!(said.contains("does not record it"), "{said}");
    let out = cli("f", &["gc"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        listed.contains(&format!(
            "left default/{forged} (its labels name run {run_id}, which does not record it"
        )),
        "{listed}"
    );
    assert!(standing(&forged), "kpo gc deleted the forged pod");
    rt.block_on(pods_and_clean_up(&pods, &leases, &run_id));

    // A batch stopped by SIGTERM deletes its pods at once — not one that only carries its label.
    let batch_id = format!("fb-{}", kpo::names::random_suffix(4));
    let tasks = dir.join("batch");
    std::fs::create_dir_all(&tasks).unwrap();
    // Its pod deleted when the batch stops (a kept one would keep the sweep away).
    let long = format!(
        "name = \"claimed\"\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"sleep 600\"]\ntermination_grace_period = 1\n[annotations]\n\"container.sim.kpo.dev/base\" = '{{\"duration_ms\": 600000}}'\n"
    );
    std::fs::write(tasks.join("long.toml"), long).unwrap();
    let running = crate::harness::kpo_command()
        .args(["run", "--kubeconfig", config, "--run-id", &batch_id])
        .arg(&tasks)
        .env("KPO_STATE_DIR", dir.join("g"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let member = format!("{batch_id}-claimed");
    let forged = rt
        .block_on(pods.create(
            &PostParams::default(),
            &forged_pod(&member, image, 0, Some(&batch_id)),
        ))
        .unwrap()
        .metadata
        .name
        .unwrap();
    let selector = ListParams::default().labels(&format!("kpo.dev/run-id={member},kpo.dev/attempt=1"));
    rt.block_on(crate::harness::wait_until("the member to run", || async {
        pods.list(&selector)
            .await
            .is_ok_and(|l| l.items.iter().any(kpo::status::running))
    }));
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(running.id() as i32, libc::SIGTERM) };
    let out = running.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::INTERRUPTED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(standing(&forged), "the batch's sweep deleted the forged pod");
    let left = rt.block_on(pods.list(&selector)).unwrap().items;
    assert!(left.is_empty(), "the member's pod outlived its batch");
    rt.block_on(async {
        let _ = pods
            .delete(&forged, &DeleteParams::default().grace_period(0))
            .await;
        let _ = leases
            .delete(&kpo::claim::lease_name(&batch_id), &DeleteParams::default())
            .await;
    });
}

#[test]
fn forged_labels_are_no_identity() {
    let (_rt, _sim, dir, config) = crate::cli::sim_with_kubeconfig();
    forged_labels_on(&config, &config, "busybox", dir.path());
}

/// The record is written before the pod exists: the run's Lease names the pod (being created)
/// before the create is sent, and by UID once it exists; a kept pod's record outlives the
/// claim, released and owned by that pod, and goes with it.
#[test]
fn a_run_records_its_pod_before_creating_it() {
    let (rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = kept_task("busybox", dir.path(), 3);
    let run_id = "recorded";
    let out = kpo(&config, run_id, &dir.path().join("a"), &task, &[])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let writes: Vec<(String, String)> = sim
        .record()
        .writes
        .into_iter()
        .map(|w| (w.method, w.path))
        .collect();
    let lease = format!("/leases/{}", kpo::claim::lease_name(run_id));
    let at = |method: &str, path: &str| {
        writes
            .iter()
            .position(|(m, p)| m == method && p.ends_with(path))
            .unwrap_or_else(|| panic!("no {method} {path} in {writes:?}"))
    };
    let created = at("POST", "/pods");
    let recorded = writes[..created]
        .iter()
        .filter(|(m, p)| m == "PUT" && p.ends_with(&lease))
        .count();
    assert!(
        recorded >= 1,
        "the pod was created before it was recorded: {writes:?}"
    );
    let (pods, leases): (Api<Pod>, Api<Lease>) = rt.block_on(async {
        (
            Api::default_namespaced(sim.client()),
            Api::default_namespaced(sim.client()),
        )
    });
    let pod = rt
        .block_on(pods.list(&ListParams::default().labels(&format!("kpo.dev/run-id={run_id}"))))
        .unwrap()
        .items
        .remove(0);
    let record = rt.block_on(leases.get(&kpo::claim::lease_name(run_id))).unwrap();
    let (name, uid) = (
        pod.metadata.name.clone().unwrap(),
        pod.metadata.uid.clone().unwrap(),
    );
    assert_eq!(
        record.metadata.annotations.as_ref().unwrap()["kpo.dev/pods"],
        format!("default/{name}/{uid}")
    );
    assert_eq!(record.spec.as_ref().unwrap().holder_identity, None, "released");
    let owners = record.metadata.owner_references.unwrap();
    assert_eq!(
        (owners[0].name.as_str(), owners[0].uid.as_str()),
        (name.as_str(), uid.as_str())
    );
    rt.block_on(pods.delete(&name, &DeleteParams::default().grace_period(0)))
        .unwrap();
    rt.block_on(crate::harness::wait_until(
        "the record to go with its pod",
        || async {
            leases
                .get_opt(&kpo::claim::lease_name(run_id))
                .await
                .is_ok_and(|l| l.is_none())
        },
    ));
}
