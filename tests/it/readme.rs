//! The README's snippets for users to write, taken from the README itself and run verbatim on
//! the real cluster, so that the two cannot drift apart.

use std::path::Path;

use kpo::vocabulary::Outcome;

use crate::scenarios::{Cluster, unique};

/// The first code block of `language` after `marker` in the README.
pub fn snippet(marker: &str, language: &str) -> String {
    let readme = include_str!("../../README.md");
    let after = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has {marker:?}"))..];
    let fence = format!("```{language}\n");
    let start = after.find(&fence).expect("a code block") + fence.len();
    let end = after[start..].find("```").expect("the block's end");
    after[start..start + end].to_owned()
}

/// The host's own CPython, run inside a busybox pod from a read-only `hostPath` mount of `/`:
/// the test cluster's registry has only busybox, and the Python snippet deserves a real Python.
/// `None` when this machine's `python3` cannot tell where it lives.
fn host_python() -> Option<(Vec<String>, String)> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable)); print(sys.base_prefix)",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let (exe, prefix) = (lines.next()?.to_owned(), lines.next()?.to_owned());
    let loader = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").ok()?;
    let libs = loader.parent()?.to_str()?.to_owned();
    let command = vec![
        format!("/host{}", loader.to_str()?),
        "--library-path".into(),
        format!("/host{libs}:/host{prefix}/lib"),
        format!("/host{exe}"),
        "-c".into(),
    ];
    Some((command, format!("/host{prefix}")))
}

async fn run_recipe(
    c: &Cluster,
    dir: &Path,
    name: &str,
    via: &str,
    command: &[String],
    template: Option<&str>,
) {
    let mut text = format!(
        "name = \"{name}\"\nimage = \"{}\"\ncommand = {}\n[result]\nrequired = true\nvia = \"{via}\"\n",
        c.image,
        serde_json::to_string(command).unwrap()
    );
    if let Some(template) = template {
        std::fs::write(dir.join(format!("{name}.yaml")), template).unwrap();
        text = format!("pod_template = \"{name}.yaml\"\n{text}");
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let task = kpo::task::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // Boxed: a debug build's nested run futures overflow the test thread's stack otherwise.
    let (report, _) = Box::pin(crate::harness::run(&c.client, &task, &c.ns)).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{name}: {}", report.message);
    assert_eq!(report.result_error, None, "{name}");
    assert_eq!(
        report.result,
        Some(serde_json::json!({"rows": 42, "status": "ok"})),
        "{name}"
    );
    assert_eq!(
        report.outputs.get("rows").map(String::as_str),
        Some("42"),
        "{name}"
    );
}

pub async fn result_recipes_run_verbatim(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let shell = snippet("In a shell task:", "sh");
    let python = snippet("In Python", "python");
    for via in ["termination-message", "sidecar"] {
        let sh = ["sh".to_owned(), "-c".to_owned(), format!("rows=42\n{shell}")];
        run_recipe(c, dir.path(), &unique("recipe-sh"), via, &sh, None).await;
        let Some((mut command, home)) = host_python() else {
            panic!("no python3 on this machine to run the README's Python snippet with");
        };
        command.push(format!("rows = 42\n{python}"));
        let template = format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  volumes: [{{name: host, hostPath: {{path: /}}}}]\n  containers:\n  - name: base\n    env: [{{name: PYTHONHOME, value: \"{home}\"}}]\n    volumeMounts: [{{name: host, mountPath: /host, readOnly: true}}]\n"
        );
        run_recipe(
            c,
            dir.path(),
            &unique("recipe-py"),
            via,
            &command,
            Some(&template),
        )
        .await;
    }
}

/// Server-side applies `body` as the test's admin: what a cluster's owner made beforehand.
async fn apply<K>(api: &kube::Api<K>, name: &str, body: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = kube::api::PatchParams::apply("kpo-tests").force();
    api.patch(name, &params, &kube::api::Patch::Apply(body))
        .await
        .unwrap_or_else(|e| panic!("cannot apply {name}: {e}"));
}

/// The objects the task-file reference names — a Secret, a ConfigMap, a service account, a
/// claim bound to a volume, and a node labelled for its selector and affinity — made with the
/// admin's client, since kpo's own Role may not.
async fn what_the_reference_names(c: &Cluster) {
    use k8s_openapi::api::core::v1::{
        ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Secret, ServiceAccount,
    };
    use serde_json::json;
    apply(
        &kube::Api::<Secret>::namespaced(c.admin.clone(), &c.ns),
        "etl-db",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "etl-db"},
               "stringData": {"password": "s3cret"}}),
    )
    .await;
    apply(
        &kube::Api::<ConfigMap>::namespaced(c.admin.clone(), &c.ns),
        "settings",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
               "data": {"level": "info", "app.conf": "mode = full\n"}}),
    )
    .await;
    apply(
        &kube::Api::<PersistentVolume>::all(c.admin.clone()),
        "kpo-etl-data",
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "kpo-etl-data"},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "kpo-readme",
                        "hostPath": {"path": "/tmp/kpo-etl-data", "type": "DirectoryOrCreate"}}}),
    )
    .await;
    let claims = kube::Api::<PersistentVolumeClaim>::namespaced(c.admin.clone(), &c.ns);
    apply(
        &claims,
        "etl-data",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "etl-data"},
               "spec": {"storageClassName": "kpo-readme", "volumeName": "kpo-etl-data",
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    let accounts = kube::Api::<ServiceAccount>::namespaced(c.admin.clone(), &c.ns);
    apply(
        &accounts,
        "etl",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "etl"}}),
    )
    .await;
    let nodes = kube::Api::<Node>::all(c.admin.clone());
    for node in nodes.list(&Default::default()).await.unwrap() {
        let name = node.metadata.name.unwrap_or_default();
        let labels = json!({"metadata": {"labels": {"disk": "ssd", "zone": "a"}}});
        nodes
            .patch(&name, &Default::default(), &kube::api::Patch::Merge(labels))
            .await
            .unwrap();
    }
    // Until they are, the API server refuses the pod (v1.20: no token for the account yet) or no
    // node takes it (an unbound claim).
    crate::harness::wait_until("the claim bound and the account's token made", || async {
        let bound = claims
            .get("etl-data")
            .await
            .ok()
            .and_then(|p| p.status?.phase)
            .is_some_and(|p| p == "Bound");
        let token = accounts
            .get("etl")
            .await
            .ok()
            .is_some_and(|a| a.secrets.is_some_and(|s| !s.is_empty()));
        bound && token
    })
    .await;
}

/// `kpo run --output json` of `task` with kpo's own Role; its exit code and report.
fn kpo_run(c: &Cluster, task: &Path) -> (Option<i32>, serde_json::Value) {
    let kubeconfig = crate::harness::e2e_kubeconfig().expect("a real cluster");
    let out = crate::harness::kpo_command()
        .args([
            "run",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &c.ns,
            "--output",
            "json",
        ])
        .arg(task)
        .output()
        .expect("kpo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    (out.status.code(), report)
}

/// Copies a built example plugin to `to`.
fn place(plugin: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(crate::harness::plugin(plugin), to).unwrap();
}

/// The task-file reference, whole, with its pod template and plugins beside it.
pub async fn task_file_reference_runs_verbatim(c: &Cluster) {
    what_the_reference_names(c).await;
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.toml");
    std::fs::write(&task, snippet("## Task file reference", "toml")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pod-template.yaml"),
        dir.path().join("pod-template.yaml"),
    )
    .unwrap();
    place("add-labels", &dir.path().join("plugins/add_labels.wasm"));
    place(
        "deny-privileged",
        &dir.path().join("plugins/deny_privileged.wasm"),
    );
    place("log-scan", &dir.path().join("plugins/log_scan.wasm"));
    let (code, report) = kpo_run(c, &task);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["result"], serde_json::json!({}));
    assert_eq!(report["decision"]["plugin"], "log_scan");
    assert_eq!(report["policies"][0]["admission"], "accepted", "{report:#}");
    let roles: Vec<(&str, &str)> = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["role"].as_str().unwrap()))
        .collect();
    for expected in [("fetch", "init"), ("base", "main"), ("proxy", "sidecar")] {
        assert!(roles.contains(&expected), "{expected:?} in {roles:?}");
    }
    assert!(
        crate::harness::pods_of_run(&c.client, &c.ns, report["run_id"].as_str().unwrap())
            .await
            .is_empty()
    );
}

/// A fragment of a task file from the README, made a task by the lines it leaves to the reader.
fn task_with(dir: &Path, c: &Cluster, name: &str, script: &str, fragment: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let head = format!(
        "name = \"{}\"\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", {}]\n",
        unique(name),
        c.image,
        serde_json::to_string(script).unwrap()
    );
    std::fs::write(&path, head + fragment).unwrap();
    path
}

/// The `[result]` block and the plugin block of the README, each completed to a task.
pub async fn task_file_fragments_run_verbatim(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let result = task_with(
        dir.path(),
        c,
        "readme-result",
        "echo '{\"rows\": 42}' > /kpo/result.json",
        &snippet("## Results and outputs", "toml"),
    );
    let (code, report) = kpo_run(c, &result);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["result"], serde_json::json!({"rows": 42}));

    let plugins = task_with(
        dir.path(),
        c,
        "readme-plugins",
        "echo all quiet",
        &snippet("### In the task file", "toml"),
    );
    place("add-labels", &dir.path().join("plugins/add_labels.wasm"));
    place(
        "deny-privileged",
        &dir.path().join("plugins/deny_privileged.wasm"),
    );
    place("log-scan", &dir.path().join("plugins/log_scan.wasm"));
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let (code, report) = kpo_run(c, &plugins);
    assert_eq!(code, Some(0), "{report:#}");
    let mutation = &report["mutations"][0];
    assert_eq!(mutation["plugin"], "labels");
    assert_eq!(
        mutation["patch"][0],
        serde_json::json!({"op": "add", "path": "/metadata/labels/cost-center", "value": "ml"}),
        "{mutation:#}"
    );
    assert_eq!(report["policies"][0]["policy"], "deny_privileged", "{report:#}");
    assert_eq!(report["policies"][0]["admission"], "accepted", "{report:#}");
    assert_eq!(report["decision"]["verdict"], "success");
}

/// The inline command of the README that starts with `start`, as words.
fn command_line(start: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let from = readme
        .find(&format!("`{start}"))
        .unwrap_or_else(|| panic!("README has `{start}…`"))
        + 1;
    let end = readme[from..].find('`').expect("the command's end");
    readme[from..from + end]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Builds a README plugin snippet as the README says: the snippet as `file`, the WIT at `wit`,
/// the README's own command, in a folder of its own; the component it makes.
fn build_snippet(
    folder: &Path,
    file: &str,
    source: &str,
    command: &[String],
    path: &str,
) -> std::path::PathBuf {
    std::fs::create_dir_all(folder).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("wit"),
        folder.join("wit"),
    )
    .unwrap();
    std::fs::write(folder.join(file), source).unwrap();
    let search = format!("{path}:{}", std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new(&command[0])
        .args(&command[1..])
        .current_dir(folder)
        .env("PATH", search)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", command[0]));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    folder.join("app.wasm")
}

/// The README's three minimal plugins — a Rust mutator (built from the README by
/// `plugins/readme-mutator`), a Python interpreter and a JavaScript validating policy (built
/// here with the README's own commands) — in tasks on the cluster.
pub fn minimal_plugins_run_verbatim(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    // Building the Python and JavaScript components keeps both cores busy for a minute.
    let node = crate::harness::node_to_myself();
    // componentize-py and componentize-qjs come with the example plugins: building them makes sure.
    crate::harness::plugin("python/result-check");
    crate::harness::plugin("js/inject-sidecar");
    let qjs_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/js/node_modules/.bin");
    let python = build_snippet(
        &dir.path().join("python"),
        "app.py",
        &snippet("**Python**", "python"),
        &command_line("componentize-py -d"),
        "",
    );
    let js = build_snippet(
        &dir.path().join("js"),
        "app.js",
        &snippet("**JavaScript**", "js"),
        &command_line("componentize-qjs --wit"),
        qjs_bin.to_str().unwrap(),
    );
    let rust = crate::harness::plugin("readme-mutator");
    drop(node);
    let uses = format!(
        "[[mutate]]\npath = \"{}\"\n[[policy]]\npath = \"{}\"\n[[interpret]]\npath = \"{}\"\n",
        rust.display(),
        js.display(),
        python.display()
    );
    let quiet = task_with(dir.path(), c, "readme-quiet", "echo all quiet", &uses);
    let (code, report) = kpo_run(c, &quiet);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        report["mutations"][0]["patch"][0]["path"], "/metadata/labels/hello",
        "{report:#}"
    );
    assert_eq!(
        report["warnings"],
        serde_json::json!([
            {"plugin": "readme_mutator", "message": "labelled hello=world"},
            {"plugin": "app", "message": "the pod has no team label"},
        ]),
        "{report:#}"
    );
    assert_eq!(report["policies"][0]["admission"], "warned");
    assert_eq!(report["decision"]["verdict"], "success");
    let raising = task_with(
        dir.path(),
        c,
        "readme-raise",
        "echo 'Traceback (most recent call last):'",
        &format!("[labels]\nteam = \"data\"\n{uses}"),
    );
    let (code, report) = kpo_run(c, &raising);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["decision"]["reason"], "the task raised an exception");
    assert_eq!(report["policies"][0]["admission"], "accepted", "{report:#}");
    let template = dir.path().join("host-network.yaml");
    std::fs::write(
        &template,
        "apiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: true\n",
    )
    .unwrap();
    let refused = task_with(
        dir.path(),
        c,
        "readme-refused",
        "true",
        &format!("pod_template = \"{}\"\n{uses}", template.display()),
    );
    let (code, report) = kpo_run(c, &refused);
    assert_eq!(code, Some(77), "{report:#}");
    assert_eq!(report["outcome"], "refused", "{report:#}");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("policy app (task file) refused the pod: hostNetwork is not allowed here"),
        "{report:#}"
    );
}

/// The README's parameterised, fanned-out task, verbatim, with the README's own command line:
/// three members, each with its values.
pub fn parameters_and_matrix_run_verbatim(kubeconfig: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("export.toml"),
        snippet("**A parameterised task, fanned out**", "toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("token.txt"), "hunter2").unwrap();
    let readme = include_str!("../../README.md");
    let after = &readme[readme.find("**A parameterised task, fanned out**").unwrap()..];
    let line = after
        .lines()
        .find(|l| l.starts_with("kpo run "))
        .expect("the README's command");
    let out = crate::harness::kpo_command()
        .args(line.split_whitespace().skip(1))
        .args(["--kubeconfig", kubeconfig, "--output", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (runs, _) = crate::batches::json_lines(&out.stdout);
    let names: Vec<&String> = runs.keys().collect();
    assert_eq!(
        names,
        ["export-eu-gold", "export-eu-silver", "export-us-gold"],
        "{stderr}"
    );
    assert_eq!(runs["export-us-gold"]["params"]["token"], "[redacted]");
    let logs = crate::batches::logs_by_task(&out.stderr);
    assert_eq!(
        logs["export-eu-silver"],
        ["exporting 2026-12-03 from eu/silver to s3://exports"],
        "{stderr}"
    );
}

/// The README's inline pod fields: `kpo render`ed, the whole pod accepted by `kubectl apply
/// --dry-run=server` (with the PriorityClass and RuntimeClass it names made beforehand), then run
/// without what needs servers this cluster has not got (`nfs`, `csi`, the runtime class) — each
/// field seen from inside the pod.
pub async fn pod_fields_run_verbatim(c: &Cluster, kubectl: &Path, admin_kubeconfig: &str) {
    use k8s_openapi::api::node::v1::RuntimeClass;
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    use serde_json::json;
    apply(
        &kube::Api::<PriorityClass>::all(c.admin.clone()),
        "batch-low",
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
               "metadata": {"name": "batch-low"}, "value": 100}),
    )
    .await;
    apply(
        &kube::Api::<RuntimeClass>::all(c.admin.clone()),
        "runc",
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
               "metadata": {"name": "runc"}, "handler": "runc"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = snippet("**Pod fields inline.**", "toml");
    let task = dir.path().join("pod-fields.toml");
    std::fs::write(&task, &text).unwrap();
    let rendered = crate::harness::kpo_command()
        .args(["render", "-n", &c.ns])
        .arg(&task)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&rendered.stderr);
    assert_eq!(rendered.status.code(), Some(0), "{stderr}");
    let pod_file = dir.path().join("pod.yaml");
    std::fs::write(&pod_file, &rendered.stdout).unwrap();
    let accepted = std::process::Command::new(kubectl)
        .args([
            "apply",
            "--dry-run=server",
            "-o",
            "json",
            "--kubeconfig",
            admin_kubeconfig,
            "-f",
        ])
        .arg(&pod_file)
        .output()
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&accepted.stderr);
    assert_eq!(accepted.status.code(), Some(0), "{stderr}");
    let pod: serde_json::Value = serde_json::from_slice(&accepted.stdout).unwrap();
    let spec = &pod["spec"];
    for (field, value) in [
        ("dnsPolicy", json!("None")),
        ("hostname", json!("worker")),
        ("subdomain", json!("jobs")),
        ("priorityClassName", json!("batch-low")),
        ("priority", json!(100)),
        ("runtimeClassName", json!("runc")),
        ("automountServiceAccountToken", json!(false)),
    ] {
        assert_eq!(spec[field], value, "{field} in {spec:#}");
    }
    let base = &spec["containers"][0];
    assert_eq!(base["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(base["ports"][0]["containerPort"], 8080);

    // What this cluster can run: the same file without the NFS and CSI volumes and the runtime
    // class, whose servers and handler it has not got.
    let mut runnable: toml::Table = text.parse().unwrap();
    runnable.remove("runtime_class_name");
    let volumes = runnable["volumes"].as_array_mut().unwrap();
    volumes.retain(|v| !["shared", "vault"].contains(&v["name"].as_str().unwrap()));
    runnable.insert("name".into(), unique("pod-fields").into());
    std::fs::write(&task, toml::to_string(&runnable).unwrap()).unwrap();
    let (code, report) = kpo_run(c, &task);
    assert_eq!(code, Some(0), "{report:#}");
    let outputs = &report["outputs"];
    assert_eq!(outputs["pod"], report["pod"], "{report:#}");
    assert_eq!(outputs["memory_mi"], "64");
    assert_eq!(outputs["db"], "10.1.2.3");
    assert_eq!(outputs["nameserver"], "10.96.0.10");
    assert_eq!(outputs["host_etc"], "readable");
    assert_eq!(outputs["info"], "labels");
    let watcher = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "watcher");
    assert_eq!(
        watcher.map(|w| w["exit_code"].clone()),
        Some(json!(0)),
        "{report:#}"
    );
}

/// "Coming from KubernetesPodOperator" names every parameter of the operator's `__init__`
/// (cncf.kubernetes provider, `operators/pod.py`), so none is forgotten when it grows.
#[test]
fn the_kpo_table_names_every_operator_parameter() {
    const PARAMETERS: &str = "kubernetes_conn_id namespace image name random_name_suffix cmds arguments ports \
        volume_mounts volumes env_vars env_from secrets in_cluster cluster_context labels \
        reattach_on_restart startup_timeout_seconds startup_check_interval_seconds \
        schedule_timeout_seconds get_logs base_container_name base_container_status_polling_interval \
        init_container_logs container_logs image_pull_policy annotations container_resources affinity \
        config_file node_selector image_pull_secrets service_account_name \
        automount_service_account_token hostnetwork host_aliases tolerations security_context \
        container_security_context dnspolicy dns_config hostname subdomain schedulername full_pod_spec \
        init_containers log_events_on_failure do_xcom_push pod_template_file pod_template_dict \
        priority_class_name pod_runtime_info_envs termination_grace_period configmaps skip_on_exit_code \
        deferrable poll_interval log_pod_spec_on_failure on_finish_action is_delete_operator_pod \
        termination_message_policy active_deadline_seconds callbacks progress_callback logging_interval \
        trigger_kwargs container_name_log_prefix_enabled log_formatter";
    let readme = include_str!("../../README.md");
    let start = readme
        .find("### Coming from KubernetesPodOperator")
        .expect("the section");
    let end = start + readme[start..].find("\n### ").expect("the next section");
    let operator_column: String = readme[start..end]
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split(" | ").next())
        .collect();
    let missing: Vec<&str> = PARAMETERS
        .split_whitespace()
        .filter(|p| !operator_column.contains(&format!("`{p}`")))
        .collect();
    assert!(missing.is_empty(), "not in the table: {missing:?}");
}
