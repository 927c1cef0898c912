//! Parameters and fan-out: `[params]` filled from `--set`/`--set-file` into every kind of field,
//! their mistakes located, and a `[matrix]` file run as a batch — on both clusters, and killed
//! and resumed without a member run twice.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::batches::{json_lines, logs_by_task};
use crate::harness::kpo_command;
use crate::scenarios::{Cluster, unique};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn kpo(args: &[&str]) -> Output {
    kpo_command().args(args).output().unwrap()
}

/// A task that uses parameters in every kind of field.
const EVERY_FIELD: &str = r#"name = "load-((day))"
image = "((registry))busybox:1.36"
command = ["sh", "-c"]
args = ["echo loading ((day)) with \\((literal)) $((1 + 2))"]

[params]
day = {}
registry = { default = "" }
token = { secret = true, description = "the warehouse's token" }
memory = "32Mi"
volume = "scratch"
notes = ""

[env]
DAY = "((day))"
TOKEN = "((token))"
NOTES = "((notes))"

[labels]
day = "((day))"

[annotations]
"example.com/day" = "loaded ((day))"

[resources]
limits = { memory = "((memory))" }

[[volumes]]
name = "((volume))"
empty_dir = { size_limit = "((memory))" }
mount_path = "/((volume))"
"#;

#[test]
fn parameters_fill_every_kind_of_field() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("load.toml");
    std::fs::write(&task, EVERY_FIELD).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "two\nlines\n").unwrap();
    let out = kpo(&[
        "render",
        task.to_str().unwrap(),
        "--set",
        "day=2026-12-03",
        "--set",
        "token=hunter2",
        "--set",
        "memory=64Mi",
        "--set-file",
        &format!("notes={}", notes.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pod: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let base = &pod["spec"]["containers"][0];
    assert_eq!(pod["metadata"]["labels"]["kpo.dev/task"], "load-2026-12-03");
    assert_eq!(pod["metadata"]["labels"]["day"], "2026-12-03");
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/day"],
        "loaded 2026-12-03"
    );
    assert_eq!(base["image"], "busybox:1.36");
    // `\((` is a literal `((`, and `$((` that opens no reference is left alone.
    assert_eq!(
        base["args"][0],
        "echo loading 2026-12-03 with ((literal)) $((1 + 2))"
    );
    let env: Vec<(&str, &str)> = base["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap_or("")))
        .collect();
    assert!(env.contains(&("DAY", "2026-12-03")), "{env:?}");
    assert!(env.contains(&("TOKEN", "hunter2")), "{env:?}");
    assert!(
        env.contains(&("NOTES", "two\nlines\n")),
        "--set-file keeps the file as it is: {env:?}"
    );
    assert_eq!(base["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(pod["spec"]["volumes"][0]["name"], "scratch");
    assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "64Mi");
    assert_eq!(base["volumeMounts"][0]["mountPath"], "/scratch");

    // Run: the report lists the parameters, the secret one redacted; the journal keeps its
    // value, so that `kpo attach` builds the same pod.
    let state = dir.path().join("state");
    std::fs::write(
        &task,
        format!("{EVERY_FIELD}\n[run]\non_finish = \"delete\"\n").replace(
            "[annotations]\n",
            "[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"loaded\"]}'\n",
        ),
    )
    .unwrap();
    let out = kpo_command()
        .args(["run", "--sim", "--output", "json", "--run-id", "load-1"])
        .arg(&task)
        .args(["--set", "day=2026-12-03", "--set", "token=hunter2"])
        .env("KPO_STATE_DIR", &state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["params"]["day"], "2026-12-03", "{report:#}");
    assert_eq!(report["params"]["token"], "[redacted]", "{report:#}");
    assert!(!text(&out.stdout).contains("hunter2"));
    let journal = crate::harness::journal_file(&state, "load-1", "json").expect("a journal");
    let kept: Value = serde_json::from_slice(&std::fs::read(journal).unwrap()).unwrap();
    let token = kept["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "token")
        .unwrap();
    assert_eq!(token["value"], "hunter2", "{kept:#}");
}

/// Every mistake with parameters is a task-file error (78) that names the file, line and key —
/// and, for a value that makes a field invalid, which `--set` it came from.
#[test]
fn parameter_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("load.toml");
    std::fs::write(&task, EVERY_FIELD).unwrap();
    let file = task.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--set", "token=x"],
            "load.toml:7:1: params.day: parameter `day` has no value: give it one with --set day=VALUE",
        ),
        (
            &["--set", "day=1", "--set", "token=x", "--set", "dya=2"],
            "params: --set dya: no parameter `dya` is declared (declared: day, registry, token, memory, volume, notes)",
        ),
        (
            &["--set", "day=bad day!", "--set", "token=x"],
            "load.toml:20:1: labels.day: `bad day!` is not a valid label value",
        ),
        (
            &["--set", "day=1", "--set", "token=x", "--set", "memory=lots"],
            "(after ((memory)) = \"lots\" from --set memory)",
        ),
        (
            &["--set", "day=1", "--set", "token=x", "--set", "volume=Bad_Name"],
            "volumes[0].name",
        ),
    ];
    for (args, expected) in cases {
        let out = kpo_command()
            .args(["validate", file])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(kpo::exit::CONFIG),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A secret value is never repeated in a message about it.
    std::fs::write(
        &task,
        EVERY_FIELD.replace(
            "day = \"((day))\"\n\n[annotations]",
            "day = \"((token))\"\n\n[annotations]",
        ),
    )
    .unwrap();
    let out = kpo(&["validate", file, "--set", "day=1", "--set", "token=not a label!"]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(
        !text(&out.stderr).contains("not a label!") && text(&out.stderr).contains("[redacted]"),
        "{}",
        text(&out.stderr)
    );
    // An unknown reference says how to write a literal `((`.
    std::fs::write(
        &task,
        EVERY_FIELD.replace("echo loading ((day))", "echo loading ((dya))"),
    )
    .unwrap();
    let out = kpo(&["validate", file, "--set", "day=1", "--set", "token=x"]);
    assert!(
        text(&out.stderr).contains("load.toml:4:9: args[0]: unknown parameter `((dya))` (declared: day, registry, token, memory, volume, notes); `\\((` writes a literal `((`"),
        "{}",
        text(&out.stderr)
    );
    // A malformed --set is a usage error; a file without [params] takes no --set.
    let out = kpo(&["validate", file, "--set", "day"]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
    let plain = dir.path().join("plain.toml");
    std::fs::write(
        &plain,
        "name = \"plain\"\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo ((day))\"]\n",
    )
    .unwrap();
    let out = kpo(&["validate", plain.to_str().unwrap(), "--set", "day=1"]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(
        text(&out.stderr).contains("--set day: the task file has no [params] table"),
        "{}",
        text(&out.stderr)
    );
    // ... and is read exactly as before: `((day))` there is no reference.
    let out = kpo(&["render", plain.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("echo ((day))"),
        "{}",
        text(&out.stdout)
    );
}

/// A 3×4 matrix less one member: eleven tasks of one batch, each named for its values, with its
/// values as parameters and environment variables. On a real cluster part 3 exits 1 (`$((3 / 3))`);
/// the simulated one, which does not run commands, exits with the part itself. Part 0 succeeds
/// everywhere, part 3 fails everywhere: exit 80.
fn matrix_task(name: &str, image: &str) -> String {
    format!(
        r#"name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo ((region)) $REGION ((day)); exit $(( ((part)) / 3 ))"]

[params]
day = {{}}

[matrix]
region = ["eu", "us", "ap"]
part = [0, 1, 2, 3]
exclude = [{{ region = "ap", part = 3 }}]

[annotations]
"container.sim.kpo.dev/base" = '{{"logs": ["((region)) ((region)) ((day))"], "exit_code": ((part))}}'
"#
    )
}

pub async fn a_matrix_runs_as_a_batch(c: &Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mx");
    let task = dir.path().join("matrix.toml");
    std::fs::write(&task, matrix_task(&name, &c.image)).unwrap();
    let out = kpo_command()
        .args([
            "run",
            "--kubeconfig",
            &c.kubeconfig,
            "-n",
            &c.ns,
            "--output",
            "json",
        ])
        .arg(&task)
        .args(["--set", "day=2026-12-03"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&out.stderr)
    );
    let (runs, summary) = json_lines(&out.stdout);
    let expected: Vec<String> = ["eu", "us", "ap"]
        .iter()
        .flat_map(|r| {
            let name = &name;
            (0..4).map(move |p| format!("{name}-{r}-{p}"))
        })
        .filter(|n| !n.ends_with("-ap-3"))
        .collect();
    let mut names: Vec<&String> = runs.keys().collect();
    names.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(names, sorted.iter().collect::<Vec<_>>(), "{summary:#}");
    let logs = logs_by_task(&out.stderr);
    for member in &expected {
        let region = member.split('-').rev().nth(1).unwrap();
        let part = member.rsplit('-').next().unwrap();
        assert_eq!(runs[member]["params"]["region"], region, "{:#}", runs[member]);
        assert_eq!(runs[member]["params"]["day"], "2026-12-03");
        // The value as a parameter and as the environment variable REGION.
        assert_eq!(
            logs.get(member),
            Some(&vec![format!("{region} {region} 2026-12-03")]),
            "{member}"
        );
        let outcome = &runs[member]["outcome"];
        match part {
            "0" => assert_eq!(outcome, "succeeded", "{member}"),
            "3" => assert_eq!(outcome, "failed", "{member}"),
            _ => {}
        }
    }
}

/// A matrix batch killed while its first members run, then started again with the same id and
/// values: it follows the running members again and starts the rest — every member reported,
/// none run twice.
#[cfg(unix)]
#[test]
fn a_matrix_batch_killed_and_resumed_runs_no_member_twice() {
    let (_rt, sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = dir.path().join("slow.toml");
    std::fs::write(
        &task,
        "name = \"slow\"\nimage = \"busybox\"\n[matrix]\nshard = [1, 2, 3, 4, 5, 6]\n[annotations]\n\"container.sim.kpo.dev/base\" = '{\"logs\": [\"shard ((shard))\"], \"duration_ms\": 3000}'\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let batch = || {
        let mut cmd = kpo_command();
        cmd.args([
            "run",
            "--kubeconfig",
            &config,
            "--run-id",
            "shards",
            "--parallel",
            "2",
            "--output",
            "json",
        ])
        .arg(&task)
        .env("KPO_STATE_DIR", &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        cmd
    };
    let mut child = batch().spawn().unwrap();
    // Killed once the first two members' pods are journalled, while they run.
    let pod_journalled = |member: &str| {
        crate::harness::journal_file(&state, &format!("shards-{member}"), "json")
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .is_some_and(|j| j["uid"].is_string())
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(crate::harness::wait_until("two members' pods journalled", || {
        let both = pod_journalled("slow-1") && pod_journalled("slow-2");
        async move { both }
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    let out = batch().output().unwrap();
    let (runs, _) = json_lines(&out.stdout);
    let not_ok: Vec<&Value> = runs.values().filter(|r| r["outcome"] != "succeeded").collect();
    assert_eq!(out.status.code(), Some(0), "{not_ok:#?}");
    let names: Vec<&String> = runs.keys().collect();
    assert_eq!(
        names,
        ["slow-1", "slow-2", "slow-3", "slow-4", "slow-5", "slow-6"]
    );
    let record = sim.record();
    assert_eq!(record.created_per_run.len(), 6, "{:?}", record.created_per_run);
    assert!(
        record.created_per_run.values().all(|n| *n == 1),
        "a member ran twice: {:?}",
        record.created_per_run
    );
}

/// `render` prints every member's pod (or `--only` one); `validate` checks every member.
#[test]
fn render_and_validate_see_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let task: PathBuf = dir.path().join("matrix.toml");
    std::fs::write(&task, matrix_task("mx", "busybox:1.36")).unwrap();
    let file = task.to_str().unwrap();
    let out = kpo(&["render", file, "--set", "day=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pods = text(&out.stdout);
    assert_eq!(pods.matches("kind: Pod").count(), 11, "{pods}");
    let out = kpo(&["render", file, "--set", "day=1", "--only", "mx-us-2"]);
    let pod: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let env = &pod["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &serde_json::json!([{"name": "REGION", "value": "us"}, {"name": "PART", "value": "2"}])
    );
    let out = kpo(&["render", file, "--set", "day=1", "--only", "mx-ap-3"]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
    assert!(
        text(&out.stderr).contains("has no such task (it has: mx-eu-0,"),
        "{}",
        text(&out.stderr)
    );
    let out = kpo(&["validate", file, "--set", "day=1"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).matches("is valid").count(), 11);
    // A matrix mistake is located like any other.
    std::fs::write(
        &task,
        matrix_task("mx", "busybox").replace("exclude = [{ region", "exclude = [{ regoin"),
    )
    .unwrap();
    let out = kpo(&["validate", file, "--set", "day=1"]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(
        text(&out.stderr).contains(
            "matrix.toml:11:12: matrix.exclude[0]: `regoin` is none of the matrix's lists (region, part)"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// `kpo ARGS --output json` on the cluster of `config`, with its state in `state`.
fn kpo_json(args: &[&str], config: &str, state: &std::path::Path) -> std::process::Output {
    kpo_command()
        .args(args)
        .args(["--kubeconfig", config, "--output", "json"])
        .env("KPO_STATE_DIR", state)
        .output()
        .unwrap()
}

/// `kpo attach` of a matrix batch reads its task file once, with the values its journal kept
/// (a required one among them): every member is reported as it ended.
#[test]
fn attach_rebuilds_a_matrix_batch_from_its_journal() {
    let (_rt, _sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = dir.path().join("matrix.toml");
    std::fs::write(&task, matrix_task("mx", "busybox")).unwrap();
    let state = dir.path().join("state");
    let kpo_here = |args: &[&str]| kpo_json(args, &config, &state);
    let ran = kpo_here(&[
        "run",
        task.to_str().unwrap(),
        "--run-id",
        "mx1",
        "--set",
        "day=2026-12-03",
    ]);
    assert_eq!(
        ran.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&ran.stderr)
    );
    let attached = kpo_here(&["attach", "mx1"]);
    assert_eq!(
        attached.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&attached.stderr)
    );
    let (runs, _) = json_lines(&attached.stdout);
    assert_eq!(runs.len(), 11, "{}", text(&attached.stderr));
    assert_eq!(runs["mx-eu-0"]["exit_code"], 0);
    assert_eq!(runs["mx-eu-3"]["exit_code"], 3);
}

/// `kpo attach` of one member of a matrix batch follows that member only, as a run of its batch.
#[test]
fn attach_to_one_member_follows_that_member_only() {
    let (_rt, _sim, dir, config) = crate::cli::sim_with_kubeconfig();
    let task = dir.path().join("matrix.toml");
    std::fs::write(&task, matrix_task("mx", "busybox")).unwrap();
    let state = dir.path().join("state");
    let kpo_here = |args: &[&str]| kpo_json(args, &config, &state);
    let ran = kpo_here(&["run", task.to_str().unwrap(), "--run-id", "mx2", "--set", "day=1"]);
    assert_eq!(
        ran.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&ran.stderr)
    );
    let attached = kpo_here(&["attach", "mx2-mx-us-3"]);
    let report: Value = serde_json::from_slice(&attached.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&attached.stderr)));
    assert_eq!(report["task"], "mx-us-3", "{report:#}");
    assert_eq!(report["exit_code"], 3, "{report:#}");
    assert_eq!(attached.status.code(), Some(3));
}
