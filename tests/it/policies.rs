//! Plugin contract 0.2.0 at work through the `kpo` binary: validating policies on the final pod
//! (from the task file and imposed from outside it), their modes, warnings, configs checked at
//! load, refused runs as reports in the journal, and retries that learn from earlier attempts.
//! The scenarios taking a `Cluster` run on the simulated cluster and on the real one.

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::core::v1::Pod;
use kpo::exit;
use kpo::pod::LABEL_RUN_ID;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::harness::{kpo_command, plugin};
use crate::scenarios::{Cluster, unique};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A plugin entry of `kind` (`mutate`, `policy`, `interpret`) for the built plugin `name`.
fn entry(kind: &str, name: &str, extra: &str) -> String {
    format!(
        "[[{kind}]]\npath = {:?}\n{extra}\n",
        plugin(name).display().to_string()
    )
}

/// Writes `body` to `file` in `dir`, returning its path.
fn write(dir: &Path, file: &str, body: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, body).unwrap();
    path
}

/// The task head: a unique name, the cluster's image, a shell command, a sim script.
fn head(c: &Cluster, name: &str, script: &str, sim: &str) -> String {
    format!(
        "name = \"{}\"\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", {}]\n[annotations]\n\"container.sim.kpo.dev/base\" = '{sim}'\n",
        unique(name),
        c.image,
        serde_json::to_string(script).unwrap()
    )
}

/// `kpo ARGS --kubeconfig ... -n NS --output json TASK`: exit code, report, stderr.
fn run_on(c: &Cluster, args: &[&str], task: &Path) -> (Option<i32>, Value, String) {
    let out = kpo_command()
        .arg("run")
        .args(args)
        .args(["--kubeconfig", &c.kubeconfig, "-n", &c.ns, "--output", "json"])
        .arg(task)
        .output()
        .expect("kpo runs");
    let stderr = text(&out.stderr);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    (out.status.code(), report, stderr)
}

fn kpo(args: &[&str]) -> Output {
    kpo_command().args(args).output().expect("kpo runs")
}

/// The pods of the run the report is about that the cluster still lists.
async fn pods_of(c: &Cluster, report: &Value) -> Vec<Pod> {
    let run_id = report["run_id"].as_str().expect("the report names its run");
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    api.list(&ListParams::default().labels(&format!("{LABEL_RUN_ID}={run_id}")))
        .await
        .unwrap()
        .items
}

/// A mutator slips a privileged container in after the task file's own policy would have seen
/// the pod; the policy imposed with `--policy` sees the final pod and refuses it: exit 77, no
/// pod, a report that says so, and the run in the journal. The task file cannot switch the
/// imposed policy to monitor mode, and `validate` and `render` show the same refusal.
pub async fn an_outside_policy_refuses_what_a_later_mutator_slips_in(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "policy.toml",
        &entry(
            "policy",
            "deny-privileged",
            "name = \"no-privileges\"\nconfig = { allow_root = true }",
        ),
    );
    let flag = format!("--policy={}", policy.display());
    let task = write(
        dir.path(),
        "task.toml",
        &format!(
            "{}{}",
            head(c, "escalating", "echo hi", r#"{"logs": ["hi"]}"#),
            entry("mutate", "hostile/escalate", "")
        ),
    );
    let (code, report, stderr) = run_on(c, &[&flag], &task);
    assert_eq!(code, Some(exit::REFUSED), "{stderr}");
    assert_eq!(report["outcome"], "refused", "{report:#}");
    assert_eq!(report["pod"], "", "{report:#}");
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "policy no-privileges (--policy {}) refused the pod: container escalate is privileged",
            policy.display()
        )),
        "{message}"
    );
    assert!(message.ends_with("no pod was created"), "{message}");
    assert_eq!(report["policies"][0]["admission"], "refused");
    assert_eq!(report["policies"][0]["mode"], "enforce");
    assert_eq!(report["mutations"][0]["plugin"], "hostile_escalate");
    assert!(pods_of(c, &report).await.is_empty(), "a refused pod was created");
    assert!(!stderr.contains("Submitted"), "{stderr}");
    let list = text(&kpo(&["list"]).stdout);
    let run_id = report["run_id"].as_str().unwrap();
    assert!(
        list.lines().any(|l| l.contains(run_id) && l.contains("77")),
        "the refused run is not in the journal:\n{list}"
    );
    let logs = kpo(&["logs", "--kubeconfig", &c.kubeconfig, "-n", &c.ns, run_id]);
    assert_eq!(logs.status.code(), Some(exit::FAILED));
    assert!(
        text(&logs.stderr).contains(&format!("run {run_id} never had a pod: a plugin refused it")),
        "{}",
        text(&logs.stderr)
    );

    // The task file cannot weaken the imposed policy by redefining it.
    let weakening = write(
        dir.path(),
        "weakening.toml",
        &format!(
            "{}{}",
            head(c, "weakening", "echo hi", r#"{"logs": ["hi"]}"#),
            entry(
                "policy",
                "deny-privileged",
                "name = \"no-privileges\"\nmode = \"monitor\""
            )
        ),
    );
    let out = kpo(&["validate", &flag, weakening.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::CONFIG), "{stderr}");
    assert!(
        stderr.contains("weakening.toml:6:1: policy[0]: policy `no-privileges` is imposed by --policy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a task file cannot redefine it, change its mode or switch it off"),
        "{stderr}"
    );

    // `validate` and `render` load the plugins and say what the policy says.
    for command in ["validate", "render"] {
        let out = kpo(&[command, &flag, task.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::REFUSED), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "policy no-privileges (enforce, from --policy {}): refused: container escalate is privileged",
                policy.display()
            )),
            "{command}: {stderr}"
        );
        // A refused task is not called valid, nor is its pod printed as if it could run.
        assert_eq!(text(&out.stdout), "", "{command}");
    }
    // Unless asked for, as a fixture: the refused pod, still exit 77.
    let out = kpo(&["render", "--refused", &flag, task.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out.stderr));
    let pod: serde_json::Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(pod["kind"], "Pod", "{pod}");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert!(
        containers
            .iter()
            .any(|c| c["name"] == "escalate" && c["securityContext"]["privileged"] == true),
        "{pod}"
    );
}

/// The C example policy (jsmn reading the pod): a container without a memory limit refused
/// before any pod exists, with the policy's reason; given its limit, the pod goes.
pub async fn a_c_policy_refuses_a_container_without_its_limit(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let policy = entry("policy", "c/require-limits", "config = { limits = [\"memory\"] }");
    // A task with these resources under the policy: its exit code and report.
    let run = |name: &str, resources: &str| {
        let head = head(c, name, "echo hi", r#"{"logs": ["hi"]}"#);
        let task = write(
            dir.path(),
            &format!("{name}.toml"),
            &format!("{head}{resources}{policy}"),
        );
        let (code, report, stderr) = run_on(c, &[], &task);
        (code, report, stderr)
    };
    let (code, report, stderr) = run("unlimited", "");
    assert_eq!(code, Some(exit::REFUSED), "{stderr}");
    assert_eq!(report["policies"][0]["admission"], "refused", "{report:#}");
    let reason = report["policies"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("container ") && reason.ends_with(" has no memory limit"),
        "{report:#}"
    );
    assert_eq!(report["pod"], "", "no pod was created: {report:#}");
    let (code, report, stderr) = run("limited", "[resources]\nlimits = { memory = \"32Mi\" }\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["policies"][0]["admission"], "accepted", "{report:#}");
}

/// A policy in monitor mode reports the refusal and lets the pod go; a policy sees the pod
/// after every mutator (a label a mutator adds satisfies it) and its warnings reach the report.
/// The policies are JavaScript (0.2.0), the mutator is a 0.1.0 component: one host, both.
pub async fn a_monitor_policy_reports_and_the_pod_goes(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "audit.toml",
        &entry(
            "policy",
            "js/require-labels",
            "name = \"cost-centers\"\nmode = \"monitor\"\nconfig = { required = [\"cost-center\"] }",
        ),
    );
    let own = entry(
        "policy",
        "js/require-labels",
        "name = \"teams\"\nconfig = { required = [\"team\"], recommended = [\"owner\"] }",
    );
    let labels = entry(
        "mutate",
        "add-labels",
        "config = { labels = { team = \"data\" } }",
    );
    let task = write(
        dir.path(),
        "task.toml",
        &format!(
            "{}{labels}{own}",
            head(c, "audited", "echo audited", r#"{"logs": ["audited"]}"#)
        ),
    );
    let (code, report, stderr) = run_on(c, &["--policy", policy.to_str().unwrap()], &task);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["outcome"], "succeeded");
    let policies = report["policies"].as_array().unwrap();
    assert_eq!(
        (
            &policies[0]["policy"],
            &policies[0]["mode"],
            &policies[0]["admission"]
        ),
        (&json!("cost-centers"), &json!("monitor"), &json!("refused")),
        "{report:#}"
    );
    assert_eq!(
        policies[0]["reason"],
        "the pod lacks the required label(s) cost-center"
    );
    assert_eq!(policies[1]["source"], "task file");
    assert_eq!(
        policies[1]["admission"], "warned",
        "the mutator's label reached the policy: {report:#}"
    );
    assert_eq!(
        report["warnings"],
        json!([{"plugin": "teams", "message": "the pod has no owner label (recommended)"}])
    );
    assert!(
        stderr.contains("policy cost-centers (monitor mode, --policy")
            && stderr.contains(
                "would refuse the pod: the pod lacks the required label(s) cost-center; letting it go"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning from teams: the pod has no owner label (recommended)"),
        "{stderr}"
    );
    assert!(pods_of(c, &report).await.is_empty(), "the pod was left behind");
}

/// Retries that learn: the first attempt is OOMKilled; `oom-memory` sees it in the context's
/// earlier attempts and raises the memory limit for the second, which succeeds; `flaky` sees
/// the first attempt too and flags the run.
pub async fn an_oomkilled_attempt_is_retried_with_more_memory(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}[resources]\nlimits = {{ memory = \"32Mi\" }}\n[retry]\nuser = 1\nbackoff = \"1s\"\n{}{}",
        head(
            c,
            "hungry",
            "echo allocating; x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo done",
            r#"{"logs": ["allocating", "done"], "memory": "60M"}"#
        ),
        entry("mutate", "oom-memory", "config = { factor = 8, max = \"1Gi\" }"),
        entry("interpret", "flaky", ""),
    );
    let task = write(dir.path(), "task.toml", &body);
    let (code, report, stderr) = run_on(c, &[], &task);
    assert_eq!(code, Some(0), "{stderr}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{report:#}");
    assert_eq!(attempts[0]["exit_code"], 137, "{report:#}");
    assert_eq!(
        report["warnings"],
        json!([{
            "plugin": "oom_memory",
            "message": "raised the memory of container base from 32Mi to 256Mi (OOMKilled in 1 of 1 earlier attempt(s))"
        }])
    );
    let patch = &report["mutations"][0]["patch"];
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/containers/0/resources/limits/memory" && op["value"] == "256Mi"),
        "{patch:#}"
    );
    let outputs = &report["decision"]["outputs"]["flaky"];
    assert_eq!(outputs["flaky"], true, "{report:#}");
    assert_eq!(outputs["earlier"][0]["exit_code"], 137);
    assert_eq!(outputs["earlier"][0]["reason"], "OOMKilled");
    assert!(pods_of(c, &report).await.is_empty(), "a pod was left behind");
}

/// A policy that fails stops the run in enforce mode (exit 76, no pod) and is only reported in
/// monitor mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_policy_stops_the_run_only_in_enforce_mode() {
    let (_sim, c) = crate::sim::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let task = |mode: &str| {
        write(
            dir.path(),
            &format!("{mode}.toml"),
            &format!(
                "{}{}",
                head(&c, mode, "true", "{}"),
                entry("policy", "hostile/trap-policy", &format!("mode = \"{mode}\""))
            ),
        )
    };
    let out = kpo_command()
        .args(["run", "--kubeconfig", &c.kubeconfig, "--output", "json"])
        .arg(task("enforce"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::PLUGIN_FAILED), "{stderr}");
    assert!(stderr.contains("plugin hostile_trap_policy crashed"), "{stderr}");
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    assert!(pods.list(&Default::default()).await.unwrap().items.is_empty());

    let (code, report, stderr) = run_on(&c, &[], &task("monitor"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["policies"][0]["admission"], "failed");
    assert!(
        report["policies"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("plugin hostile_trap_policy crashed"),
        "{report:#}"
    );
    assert!(
        stderr.contains("failed: plugin hostile_trap_policy crashed"),
        "{stderr}"
    );
}

/// A config its plugin rejects fails at load, in `validate` as in `run`, with the plugin's own
/// message — Rust and JavaScript — and a plugin used for a role it does not export is named.
#[test]
fn configs_and_worlds_are_checked_when_plugins_load() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"checked\"\nimage = \"busybox:1.36\"\n";
    let cases = [
        (
            entry("policy", "deny-privileged", "config = { allow_rot = true }"),
            exit::CONFIG,
            "plugin deny_privileged rejected its config: unknown config key `allow_rot`",
        ),
        (
            entry("mutate", "oom-memory", "config = { factor = 0.5 }"),
            exit::CONFIG,
            "plugin oom_memory rejected its config: `factor` must be a number above 1",
        ),
        (
            entry(
                "policy",
                "c/require-limits",
                "config = { limits = [\"memory\"], limit = 1 }",
            ),
            exit::CONFIG,
            "plugin require_limits rejected its config: unknown key `limit` (known: limits)",
        ),
        (
            entry("policy", "js/require-labels", "config = { requird = [\"team\"] }"),
            exit::CONFIG,
            "plugin require_labels rejected its config: unknown key `requird` (known: required, recommended)",
        ),
        // A plugin in a role it does not export is the task file's mistake: 78, as a config.
        (
            entry("policy", "add-labels", ""),
            exit::CONFIG,
            "plugin add_labels is used as a policy but does not export kpo:plugin/validator (new in 0.2.0; a 0.1.0 mutator that refuses pods belongs under [[mutate]]) (it exports: mutator@0.1.0)",
        ),
        (
            entry("policy", "oom-memory", ""),
            exit::CONFIG,
            "plugin oom_memory is used as a policy but does not export kpo:plugin/validator (new in 0.2.0) (it exports: ",
        ),
        (
            entry("interpret", "deny-privileged", ""),
            exit::CONFIG,
            "plugin deny_privileged is used as an interpreter but does not export kpo:plugin/interpreter (0.2.0 or 0.1.0) (it exports: validator@0.2.0, settings@0.2.0)",
        ),
    ];
    for (i, (plugins, code, message)) in cases.iter().enumerate() {
        let task = write(dir.path(), &format!("t{i}.toml"), &format!("{base}{plugins}"));
        for args in [vec!["validate"], vec!["run", "--sim"]] {
            let out = kpo_command().args(&args).arg(&task).output().unwrap();
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
            assert!(stderr.contains(message), "{args:?}: {stderr}");
            assert!(
                !stderr.contains("SIMULATED"),
                "{args:?}: connected before loading plugins: {stderr}"
            );
        }
    }
    // A good task: validate lists each policy with its origin and answer.
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "{base}[security_context]\nrunAsNonRoot = true\n{}",
            entry("policy", "deny-privileged", "mode = \"monitor\"")
        ),
    );
    let out = kpo(&["validate", good.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("kpo: policy deny_privileged (monitor, from task file): accepted"),
        "{stderr}"
    );
}

/// Policies from the user's configuration folder apply to every task, batch members too; a
/// refused member is reported in the batch like any failed one.
#[test]
fn the_users_policies_apply_to_every_task_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("policies.d")).unwrap();
    write(
        &config.join("policies.d"),
        "labels.toml",
        &entry(
            "policy",
            "js/require-labels",
            "config = { required = [\"team\"] }",
        ),
    );
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    write(
        &tasks,
        "a.toml",
        "name = \"labelled\"\nimage = \"busybox:1.36\"\n[labels]\nteam = \"data\"\n",
    );
    write(
        &tasks,
        "b.toml",
        "name = \"unlabelled\"\nimage = \"busybox:1.36\"\n",
    );
    let out = kpo_command()
        .env("KPO_CONFIG_DIR", &config)
        .args(["run", "--sim", "--output", "json"])
        .arg(&tasks)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::BATCH_FAILED), "{stderr}");
    let docs: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |task: &str| {
        docs.iter()
            .find(|d| d["kind"] == "run" && d["task"] == task)
            .unwrap_or_else(|| panic!("no report of {task}: {docs:?}"))
            .clone()
    };
    assert_eq!(of("labelled")["exit_code"], 0);
    let refused = of("unlabelled");
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    assert_eq!(
        refused["policies"][0]["source"],
        format!(
            "user configuration {}",
            config.join("policies.d/labels.toml").display()
        )
    );
    let summary = docs.last().unwrap();
    assert_eq!(summary["counts"]["failed"], 1, "{summary:#}");
}

/// `kpo plugin test` on a validating policy compares its answer about a pod.
#[test]
fn plugin_test_answers_for_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let pod = write(
        dir.path(),
        "pod.yaml",
        "metadata: { name: p }\nspec:\n  hostNetwork: true\n  containers: [{ name: base, image: busybox }]\n",
    );
    let golden = dir.path().join("golden.json");
    let policy = plugin("deny-privileged");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "plugin",
            "test",
            policy.to_str().unwrap(),
            "--pod",
            pod.to_str().unwrap(),
        ];
        a.extend_from_slice(&["--expect", golden.to_str().unwrap()]);
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let out = kpo_command().args(args(&["--update"])).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    assert_eq!(answer["admission"], "refuse");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("hostNetwork is not allowed"),
        "{answer}"
    );
    let out = kpo_command()
        .args(args(&["--config", "{\"allow_root\": true}"]))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the reason differs without the root violation"
    );
}

/// In a batch the host asks a plugin about each config once, and about every distinct config:
/// a bad config beside a good one of the same policy is still found.
#[test]
fn each_config_of_a_batch_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    for (file, config) in [
        ("a.toml", "{ allow_root = true }"),
        ("b.toml", "{ allow_rot = true }"),
    ] {
        let name = file.trim_end_matches(".toml");
        write(
            dir.path(),
            file,
            &format!(
                "name = \"{name}\"\nimage = \"busybox:1.36\"\n{}",
                entry("policy", "deny-privileged", &format!("config = {config}"))
            ),
        );
    }
    let out = kpo_command()
        .args(["run", "--sim"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::CONFIG), "{stderr}");
    assert!(
        stderr.contains("plugin deny_privileged rejected its config: unknown config key `allow_rot`"),
        "{stderr}"
    );
}

/// A plugin's words reach the terminal, the report and the journal bounded and inert: the
/// escape sequence and the forged line of a hostile policy are shown escaped, its mebibyte cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_words_are_bounded_and_inert() {
    let (_sim, c) = crate::sim::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let task = write(
        dir.path(),
        "task.toml",
        &format!(
            "{}{}",
            head(&c, "loud", "true", "{}"),
            entry("policy", "hostile/loud-policy", "")
        ),
    );
    let (code, report, stderr) = run_on(&c, &[], &task);
    assert_eq!(code, Some(exit::REFUSED), "{stderr}");
    let message = report["message"].as_str().unwrap();
    assert!(message.len() < 8 * 1024, "{} bytes", message.len());
    assert!(
        message.contains("refused the pod: \\u{1b}[2J\\nkpo: task \"x\" succeeded (exit code 0)\\nxxx"),
        "{message}"
    );
    assert!(message.contains("bytes in all)"), "{message}");
    assert!(
        !stderr.contains('\u{1b}'),
        "an escape sequence reached the terminal"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("kpo: task \"x\"")),
        "a plugin forged a line of kpo's: {stderr}"
    );
}
