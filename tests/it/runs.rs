//! `kpo list`, `logs`, `delete`, `attach` and `gc`: for a person who lost their terminal.

use std::process::{Command, Output, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

use crate::cli::sim_with_kubeconfig;

struct Env {
    config: String,
    state: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Env {
    fn kpo(&self, args: &[&str]) -> Command {
        let mut cmd = crate::harness::kpo_command();
        cmd.args(args).env("KPO_STATE_DIR", &self.state);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.kpo(args).output().unwrap()
    }

    fn task(&self, name: &str, body: &str) -> String {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn list_logs_and_delete_a_kept_run() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let env = Env {
        config,
        state: dir.path().join("state"),
        dir: dir.path().to_owned(),
    };
    let task = env.task("kept", "name = \"kept\"\nimage = \"busybox\"\n[run]\non_finish = \"keep\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"a\", \"b\"]}'\n");
    let out = env.run(&["run", "--kubeconfig", &env.config, "--run-id", "kept-1", &task]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let listing = text(&env.run(&["list"]).stdout);
    let row = listing
        .lines()
        .find(|l| l.starts_with("kept-1"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.contains("finished, exit code 0"), "{row}");

    let out = env.run(&["logs", "kept-1", "--kubeconfig", &env.config]);
    assert_eq!(text(&out.stdout), "a\nb\n", "{}", text(&out.stderr));

    let out = env.run(&["delete", "kept-1", "--kubeconfig", &env.config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pods = rt.block_on(async {
        Api::<Pod>::default_namespaced(sim.client())
            .list(&Default::default())
            .await
            .unwrap()
            .items
    });
    assert!(pods.is_empty());
    // Gone now: said clearly.
    let out = env.run(&["logs", "kept-1", "--kubeconfig", &env.config]);
    assert_eq!(out.status.code(), Some(kpo::exit::FAILED));
    assert!(
        text(&out.stderr).contains("the pod of run kept-1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn attach_finishes_a_run_whose_kpo_was_killed() {
    let (_rt, _sim, dir, config) = sim_with_kubeconfig();
    let env = Env {
        config,
        state: dir.path().join("state"),
        dir: dir.path().to_owned(),
    };
    let task = env.task("long", "name = \"long\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"log_count\": 12, \"log_interval_ms\": 100}'\n");
    let mut run = env.kpo(&["run", "--kubeconfig", &env.config, "--run-id", "lost-1", &task]);
    run.stdout(Stdio::piped()).stderr(Stdio::null());
    let first = crate::reattach::start_and_kill(run, 3, &env.state, "lost-1");
    let out = env.run(&["attach", "lost-1", "--kubeconfig", &env.config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all: Vec<String> = first
        .into_iter()
        .chain(text(&out.stdout).lines().map(String::from))
        .collect();
    assert_eq!(all, (1..=12).map(|i| format!("line {i}")).collect::<Vec<_>>());
}

#[test]
fn gc_applies_the_on_finish_policy_of_dead_runs() {
    let (rt, sim, dir, config) = sim_with_kubeconfig();
    let env = Env {
        config,
        state: dir.path().join("state"),
        dir: dir.path().to_owned(),
    };
    // A finished pod that its run kept on purpose: not garbage.
    let kept = env.task(
        "kept",
        "name = \"kept\"\nimage = \"busybox\"\n[run]\non_finish = \"keep\"\n",
    );
    assert_eq!(
        env.run(&["run", "--kubeconfig", &env.config, &kept])
            .status
            .code(),
        Some(0)
    );
    let api: Api<Pod> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let kpo = serde_json::json!({"app.kubernetes.io/managed-by": "kpo", "kpo.dev/run-id": "dead"});
    // Pods whose kpo died, as it left them: recorded in its run's Lease (by name, as a kpo killed
    // right after its creates leaves them), its claim long expired. Only the one its policy
    // would have deleted is garbage. A running pod of kpo and a finished pod that is not kpo's
    // are not garbage either.
    let leases: Api<Lease> = rt.block_on(async { Api::default_namespaced(sim.client()) });
    let record: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kpo-run-dead", "labels": {"kpo.dev/run-id": "dead"}, "annotations": {
            "kpo.dev/pods": "default/orphan-done/ default/orphan-failed/ default/alive/"}},
        "spec": {"holderIdentity": "gone/1/abcd", "leaseDurationSeconds": 15,
                 "renewTime": (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string()}
    }))
    .unwrap();
    rt.block_on(leases.create(&PostParams::default(), &record))
        .unwrap();
    let pods = [
        ("orphan-done", &kpo, "delete", "{}"),
        ("orphan-failed", &kpo, "delete_succeeded", "{\"exit_code\": 1}"),
        ("alive", &kpo, "delete", "{\"duration_ms\": 600000}"),
        ("other", &serde_json::json!({}), "delete", "{}"),
    ];
    rt.block_on(async {
        for (name, labels, on_finish, script) in pods {
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": labels, "annotations": {
                    "container.sim.kpo.dev/base": script, "kpo.dev/on-finish": on_finish}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]}
            }))
            .unwrap();
            api.create(&PostParams::default(), &pod).await.unwrap();
        }
        // Until the sim's kubelet has played them: the finished ones finished, the live one runs.
        let phases = ["Succeeded", "Failed", "Running", "Succeeded"];
        crate::harness::wait_until("the orphans to reach their phases", || async {
            let phase_of = |name: &str, pods: &[Pod]| {
                pods.iter()
                    .find(|p| p.metadata.name.as_deref() == Some(name))
                    .and_then(|p| p.status.as_ref()?.phase.clone())
            };
            let pods = api.list(&Default::default()).await.unwrap().items;
            ["orphan-done", "orphan-failed", "alive", "other"]
                .iter()
                .zip(phases)
                .all(|(name, phase)| phase_of(name, &pods).as_deref() == Some(phase))
        })
        .await;
    });
    let out = env.run(&["gc", "--kubeconfig", &env.config, "--dry-run"]);
    assert_eq!(text(&out.stdout), "would delete default/orphan-done (finished)\n");
    let out = env.run(&["gc", "--kubeconfig", &env.config]);
    assert_eq!(text(&out.stdout), "deleted default/orphan-done (finished)\n");
    let mut left: Vec<String> = rt
        .block_on(async { api.list(&Default::default()).await.unwrap().items })
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    left.sort();
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left[1].starts_with("kept-"), "{left:?}");
    assert_eq!(
        [&left[0], &left[2], &left[3]],
        ["alive", "orphan-failed", "other"]
    );
    // Once none of its pods is left, gc removes the dead run's record too.
    rt.block_on(async {
        for name in ["alive", "orphan-failed"] {
            api.delete(name, &kube::api::DeleteParams::default().grace_period(0))
                .await
                .unwrap();
        }
    });
    rt.block_on(crate::harness::wait_until(
        "the dead run's pods to go",
        || async {
            let pods = api.list(&Default::default()).await.unwrap().items;
            let names: Vec<_> = pods.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
            !names.contains(&"alive") && !names.contains(&"orphan-failed")
        },
    ));
    let out = env.run(&["gc", "--kubeconfig", &env.config]);
    assert_eq!(
        text(&out.stdout),
        "removed default/kpo-run-dead (the record of a run whose pods are gone)\n"
    );
    assert!(rt.block_on(leases.get_opt("kpo-run-dead")).unwrap().is_none());
}
