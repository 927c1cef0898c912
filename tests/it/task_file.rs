//! Task files: every mistake is reported with file, line, column and key; good files become
//! the pod one would expect, templates merged by container name.

use std::path::Path;

use kpo::pod::{self, RunIdentity};
use kpo::task::{self, TaskError};

fn problems(toml: &str) -> String {
    match task::parse(toml, Path::new("bad.toml")) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e @ TaskError::Invalid { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn mistakes_name_line_column_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "name = \"t\"\nimage = \"x\"\nimagee = \"y\"\n",
            "bad.toml:3:1: imagee: unknown key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[run]\non_finsh = \"keep\"\n",
            "bad.toml:4:1: run.on_finsh: unknown key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[run]\non_finish = \"never\"\n",
            "bad.toml:4:1: run.on_finish: `never` is not one of delete, keep, delete_succeeded",
        ),
        (
            "name = \"t\"\nimage = \"x\"\nactive_deadline_seconds = \"ten\"\n",
            "bad.toml:3:1: active_deadline_seconds: invalid type: string \"ten\", expected i64",
        ),
        (
            "name = \"t\"\nimage = \"x\"\ncommand = \"echo\"\n",
            "bad.toml:3:1: command: invalid type",
        ),
        ("image = \"x\"\n", "missing field `name`"),
        (
            "name = \"t\"\nimage = \"x\"\n[resources]\nlimits = { memory = \"lots\" }\n",
            "bad.toml:4:12: resources.limits.memory: `lots` is not a quantity",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[volumes]]\nname = \"data\"\nmount_path = \"data\"\nempty_dir = {}\n",
            "bad.toml:5:1: volumes[0].mount_path: `data` must be an absolute path",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[volumes]]\nname = \"data\"\n",
            "bad.toml:3:1: volumes[0]: needs exactly one of",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[env]\nPASSWORD = { secret = \"db\" }\n",
            "bad.toml:4:1: env.PASSWORD: needs `key`: which key of it",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[env]\nA = { secret = \"s\", config_map = \"c\", key = \"k\" }\n",
            "bad.toml:4:1: env.A: needs exactly one of `secret`, `config_map` (with `key`), `field` or `resource`",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[env]\nNODE = { field = \"spec.node\" }\n",
            "env.NODE.field: `spec.node` is not a field the downward API gives",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[env]\nMEM = { resource = \"limits.memory\", divisor = \"lots\" }\n",
            "env.MEM.divisor: `lots` is not a quantity",
        ),
        (
            "name = \"t\"\nimage = \"x\"\ndns_policy = \"Cluster\"\n",
            "bad.toml:3:1: dns_policy: `Cluster` is not one of ClusterFirst, ClusterFirstWithHostNet, Default, None",
        ),
        (
            "name = \"t\"\nimage = \"x\"\ndns_policy = \"None\"\n",
            "dns_config: dns_policy = \"None\" needs dns_config with at least one of `nameservers`",
        ),
        (
            "name = \"t\"\nimage = \"x\"\nhost_aliases = [{ ip = \"db\", hostnames = [\"db\"] }]\n",
            "host_aliases[0].ip: `db` is not an IP address",
        ),
        (
            "name = \"t\"\nimage = \"x\"\nports = [{ containerPort = 80, name = \"Web_Port\" }]\n",
            "ports[0].name: `Web_Port` is not a valid port name",
        ),
        (
            "name = \"t\"\nimage = \"x\"\nports = [{ containerPort = 80, prot = \"TCP\" }]\n",
            "ports[0].prot: unknown key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\ntermination_message_policy = \"FallbackToLogsOnError\"\n[result]\nvia = \"termination_message\"\n",
            "termination_message_policy: `FallbackToLogsOnError` would hand back the log's end as the result",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[volumes]]\nname = \"d\"\nnfs = { server = \"s\", path = \"/e\" }\nmounts = [{ path = \"/d\", container = \"nobody\" }]\n",
            "volumes[0].mounts[0].container: no container named `nobody`",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[volumes]]\nname = \"d\"\nempty_dir = {}\nmount_path = \"/d\"\nmounts = [{ path = \"/d\" }]\n",
            "volumes[0].mounts[0]: `/d` is mounted twice in container `base`",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[volumes]]\nname = \"d\"\nhost_path = { path = \"/d\", typ = \"Directory\" }\n",
            "volumes[0].host_path.typ: unknown key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[run]\nskip_on_exit_codes = [0, 3]\n",
            "run.skip_on_exit_codes: 0 is success",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[tolerations]]\nkey = \"k\"\noperater = \"Exists\"\n",
            "bad.toml:5:1: tolerations[0].operater: unknown key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[affinity.nodeAffinity]\nrequired = 1\n",
            "bad.toml:4:1: affinity.nodeAffinity.required: unknown key",
        ),
        (
            "name = \"Bad Name!\"\nimage = \"x\"\n",
            "bad.toml:1:1: name: `Bad Name!` is not a valid label value",
        ),
        (
            "name = \"t\"\nimage = \"x\"\nnamespace = \"Prod\"\n",
            "bad.toml:3:1: namespace: `Prod` is not a valid name",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[[sidecars]]\nname = \"base\"\nimage = \"y\"\n",
            "bad.toml:4:1: sidecars[0].name: container name `base` is already used",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[run]\nstartup_timeout = \"soon\"\n",
            "bad.toml:4:1: run.startup_timeout: `soon` is not a duration",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[run]\nlogs = [\"nope\"]\n",
            "run.logs: no container named `nope`",
        ),
        (
            "name = \"t\"\nimage = \"x\"\npod_template = \"missing.yaml\"\n",
            "bad.toml:3:1: pod_template: cannot read pod template",
        ),
        ("name = \"t\"\nimage = = \"x\"\n", "bad.toml:2:9:"),
        (
            "name = \"t\"\nimage = \"x\"\n[labels]\n\"bad key!\" = \"v\"\n",
            "bad.toml:4:1: labels.bad key!: `bad key!` is not a valid key",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[annotations]\n\"kpo.dev/stopped-by\" = \"kpo delete\"\n",
            "bad.toml:4:1: annotations.kpo.dev/stopped-by: `kpo.dev/stopped-by`: the `kpo.dev/` prefix is kpo's own",
        ),
        (
            "name = \"t\"\nimage = \"x\"\n[labels]\n\"kpo.dev/batch\" = \"b\"\n",
            "bad.toml:4:1: labels.kpo.dev/batch: `kpo.dev/batch`: the `kpo.dev/` prefix is kpo's own",
        ),
    ];
    for (toml, expected) in cases {
        let got = problems(toml);
        assert!(
            got.contains(expected),
            "for\n{toml}\nexpected {expected:?}\ngot {got:?}"
        );
    }
}

#[test]
fn every_problem_is_listed_not_just_the_first() {
    let got = problems("name = \"t\"\nimage = \"x\"\nfoo = 1\nbar = 2\n[run]\non_finish = \"never\"\n");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "bad.toml:3:1: foo: unknown key",
            "bad.toml:4:1: bar: unknown key",
            "bad.toml:6:1: run.on_finish: `never` is not one of delete, keep, delete_succeeded"
        ]
    );
}

#[test]
fn the_cli_reports_config_errors_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, "name = \"t\"\nimage = \"x\"\n[run]\ntimeout = 5\n").unwrap();
    for cmd in ["run", "validate", "render"] {
        let out = crate::harness::kpo_command()
            .args(
                [cmd, path.to_str().unwrap(), "--sim"]
                    .iter()
                    .take(if cmd == "run" { 3 } else { 2 }),
            )
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(kpo::exit::CONFIG), "{cmd}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}:4:1: run.timeout: invalid type: integer `5`",
                path.display()
            )),
            "{cmd}: {stderr}"
        );
    }
    let out = crate::harness::kpo_command()
        .args(["validate", "/nonexistent/task.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/task.toml"));
}

#[test]
fn a_full_task_becomes_the_expected_pod() {
    let t = task::parse(
        r#"
name = "Nightly_ETL"
namespace = "data"
image = "python:3.12"
command = ["python", "-m", "etl"]
args = ["--date", "today"]
working_dir = "/work"
service_account = "etl"
image_pull_policy = "Always"
image_pull_secrets = ["regcred"]
active_deadline_seconds = 3600
termination_grace_period = 15
node_selector = { "disk" = "ssd" }
[env]
MODE = "full"
PASSWORD = { secret = "db", key = "password" }
LEVEL = { config_map = "settings", key = "level", optional = true }
[[env_from]]
config_map = "common"
prefix = "APP_"
[resources]
requests = { cpu = "500m", memory = "1Gi" }
limits = { memory = "2Gi" }
[labels]
team = "data"
[annotations]
"example.com/owner" = "ops"
[[tolerations]]
key = "dedicated"
operator = "Equal"
value = "batch"
effect = "NoSchedule"
[affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution]
nodeSelectorTerms = [{ matchExpressions = [{ key = "zone", operator = "In", values = ["a"] }] }]
[security_context]
runAsNonRoot = true
runAsUser = 1000
[container_security_context]
allowPrivilegeEscalation = false
[[volumes]]
name = "config"
config_map = "settings"
mount_path = "/etc/settings"
read_only = true
[[volumes]]
name = "scratch"
empty_dir = { medium = "Memory", size_limit = "64Mi" }
mount_path = "/scratch"
[[volumes]]
name = "creds"
secret = "creds"
[[volumes]]
name = "data"
persistent_volume_claim = "etl-data"
mount_path = "/data"
[[init_containers]]
name = "fetch"
image = "busybox"
command = ["sh", "-c", "echo fetch"]
[[sidecars]]
name = "proxy"
image = "envoy:v1"
"#,
        Path::new("etl.toml"),
    )
    .unwrap();
    let id = RunIdentity {
        batch: None,
        batch_namespace: None,
        run_id: "r1".into(),
        pod_name: "nightly-etl-abcde".into(),
        attempt: 1,
    };
    let pod = pod::build(&t, &id, "data");
    let json = serde_json::to_value(&pod).unwrap();
    let base = &json["spec"]["containers"][0];
    assert_eq!(base["name"], "base");
    assert_eq!(base["command"], serde_json::json!(["python", "-m", "etl"]));
    // Environment variables keep the file's order, which `$(VAR)` references depend on.
    assert_eq!(base["env"][0]["value"], "full");
    assert_eq!(base["env"][1]["valueFrom"]["secretKeyRef"]["name"], "db");
    assert_eq!(base["env"][2]["valueFrom"]["configMapKeyRef"]["optional"], true);
    assert_eq!(base["envFrom"][0]["prefix"], "APP_");
    assert_eq!(base["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(base["volumeMounts"].as_array().unwrap().len(), 3);
    assert_eq!(base["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(json["spec"]["containers"][1]["name"], "proxy");
    assert_eq!(json["spec"]["initContainers"][0]["name"], "fetch");
    assert_eq!(json["spec"]["restartPolicy"], "Never");
    assert_eq!(json["spec"]["serviceAccountName"], "etl");
    assert_eq!(json["spec"]["volumes"][1]["emptyDir"]["sizeLimit"], "64Mi");
    assert_eq!(
        json["spec"]["volumes"][3]["persistentVolumeClaim"]["claimName"],
        "etl-data"
    );
    assert_eq!(json["spec"]["tolerations"][0]["value"], "batch");
    assert_eq!(
        json["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["key"],
        "zone"
    );
    assert_eq!(json["spec"]["securityContext"]["runAsUser"], 1000);
    assert_eq!(json["spec"]["activeDeadlineSeconds"], 3600);
    assert_eq!(json["spec"]["terminationGracePeriodSeconds"], 15);
    assert_eq!(json["metadata"]["namespace"], "data");
    assert_eq!(json["metadata"]["labels"]["kpo.dev/task"], "Nightly_ETL");
    assert_eq!(json["metadata"]["labels"]["kpo.dev/run-id"], "r1");
    assert_eq!(json["metadata"]["labels"]["team"], "data");
    assert_eq!(json["metadata"]["annotations"]["example.com/owner"], "ops");
    // Deterministic: the same task and identity give the same pod.
    assert_eq!(pod, pod::build(&t, &id, "data"));
    assert!(
        RunIdentity::generate("Nightly_ETL")
            .pod_name
            .starts_with("nightly-etl-")
    );
}

#[test]
fn templates_merge_by_container_name_and_the_task_wins() {
    let dir = tempfile::tempdir().unwrap();
    // The template lists the sidecar first: merging by position would put the task's image on it.
    std::fs::write(
        dir.path().join("template.yaml"),
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: ignored
  labels: {team: platform, tier: batch}
spec:
  priorityClassName: batch-low
  restartPolicy: Always
  containers:
  - name: logger
    image: fluent-bit:2
  - name: base
    image: template-image
    env: [{name: FROM_TEMPLATE, value: "1"}, {name: SHARED, value: template}]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - name: cache
    emptyDir: {}
"#,
    )
    .unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(
        &path,
        "name = \"t\"\nimage = \"task-image\"\npod_template = \"template.yaml\"\n[env]\nSHARED = \"task\"\n[labels]\nteam = \"data\"\n",
    )
    .unwrap();
    let t = task::load(&path).unwrap();
    let pod = pod::build(
        &t,
        &RunIdentity {
            batch: None,
            batch_namespace: None,
            run_id: "r".into(),
            pod_name: "t-xxxxx".into(),
            attempt: 1,
        },
        "default",
    );
    let spec = pod.spec.as_ref().unwrap();
    let by_name = |n: &str| spec.containers.iter().find(|c| c.name == n).unwrap();
    assert_eq!(by_name("logger").image.as_deref(), Some("fluent-bit:2"));
    assert_eq!(by_name("base").image.as_deref(), Some("task-image"));
    let env: Vec<(String, String)> = by_name("base")
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        [
            ("FROM_TEMPLATE".into(), "1".into()),
            ("SHARED".into(), "task".into())
        ]
    );
    assert_eq!(
        by_name("base").volume_mounts.as_ref().unwrap()[0].mount_path,
        "/cache"
    );
    assert_eq!(spec.priority_class_name.as_deref(), Some("batch-low"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.metadata.name.as_deref(), Some("t-xxxxx"));
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(
        (labels["team"].as_str(), labels["tier"].as_str()),
        ("data", "batch")
    );
}

/// The README's operator settings, verbatim: what they allow passes, a grant beyond them is a
/// located error naming the settings file.
#[test]
fn the_readmes_operator_settings_hold() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, crate::readme::snippet("### Operator settings", "toml")).unwrap();
    let rules = task::load_rules(&settings).unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
    let path = dir.path().join("task.toml");
    let with = |grant: &str| {
        let text =
            format!("name = \"t\"\nimage = \"x\"\n[[mutate]]\npath = \"p.wasm\"\n[mutate.grant]\n{grant}\n");
        std::fs::write(&path, text).unwrap();
        task::load(&path)
            .unwrap()
            .allow(&rules)
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        with("dirs = [\"/usr/share/zoneinfo:/zoneinfo\"]\nenv = [\"TZ\"]\nclock = true"),
        Ok(())
    );
    let e = with("dirs = [\"/etc:/etc\"]").unwrap_err();
    assert!(
        e.contains("task.toml:6:1: mutate[0].grant.dirs: `/etc` is in none of the folders")
            && e.contains("settings.toml: grants.dirs = [/usr/share/zoneinfo])"),
        "{e}"
    );
    assert!(
        with("env = [\"HOME\"]")
            .unwrap_err()
            .contains("mutate[0].grant.env: `HOME`")
    );
}

/// kpo's own keys cannot come in through a template either.
#[test]
fn a_template_may_not_set_kpos_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kpo.dev/on-finish: keep\n",
    )
    .unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, "name = \"t\"\nimage = \"x\"\npod_template = \"t.yaml\"\n").unwrap();
    let err = task::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("task.toml:3:1: pod_template: pod template")
            && err.contains("sets `kpo.dev/on-finish`: the `kpo.dev/` prefix is kpo's own"),
        "{err}"
    );
}

/// A file named as the pod template by mistake — a service-account token, a kubeconfig — is
/// refused without its content reaching the error (stderr, the JSON error document).
#[test]
fn a_template_that_holds_a_secret_is_not_quoted() {
    let token = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6{}", "Q".repeat(900));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, "name = \"t\"\nimage = \"x\"\npod_template = \"token\"\n").unwrap();
    for content in [
        token.clone(),
        format!("[\"{token}\"]"),
        format!("spec: {token}\n"),
        format!("metadata: {{name: [{token}]}}\n"),
        format!("a: b: c: {token}"),
    ] {
        std::fs::write(dir.path().join("token"), &content).unwrap();
        let err = task::load(&path).unwrap_err().to_string();
        assert!(err.contains("task.toml:3:1: pod_template: pod template"), "{err}");
        assert!(!err.contains(&token[..120]), "the token is quoted: {err}");
    }
}

#[test]
fn a_template_that_is_not_a_pod_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yaml"), "apiVersion: batch/v1\nkind: Job\n").unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, "name = \"t\"\nimage = \"x\"\npod_template = \"t.yaml\"\n").unwrap();
    let err = task::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("task.toml:3:1: pod_template:") && err.contains("is a Job, not a Pod"),
        "{err}"
    );
}

#[test]
fn environment_values_never_appear_in_messages_or_reports() {
    // A mistake next to a secret value: the message points at it without repeating it.
    let got = problems("name = \"t\"\nimage = \"x\"\n[env]\nPASSWORD = 31337424242\n");
    assert!(got.contains("bad.toml:4:1: env.PASSWORD: invalid type"), "{got}");
    assert!(!got.contains("31337424242"), "{got}");

    // A run: neither the report nor the progress output repeats environment values.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "name = \"t\"\nimage = \"busybox\"\n[env]\nAPI_TOKEN = \"s3cr3t-value-123\"\nDB = { secret = \"db\", key = \"password\", optional = true }\n",
    )
    .unwrap();
    let out = crate::harness::kpo_command()
        .args(["run", "--sim", "--output", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!everything.contains("s3cr3t-value-123"), "{everything}");
}
