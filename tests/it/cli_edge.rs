//! The command line's edge: what `--help`, an error and a report look like (snapshots), the
//! exit codes of usage and internal errors, JSON even when a run never starts, completions, the
//! man page, `--version`, and kpo as a kubectl plugin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn kpo() -> Command {
    let mut cmd = crate::harness::kpo_command();
    cmd.env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1");
    cmd
}

fn run(args: &[&str]) -> Output {
    kpo().args(args).output().expect("kpo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    path.to_str().unwrap().to_owned()
}

#[test]
fn help_snapshots() {
    insta::assert_snapshot!("help", text(&run(&["--help"]).stdout));
    insta::assert_snapshot!("run_help", text(&run(&["run", "--help"]).stdout));
}

/// The numbers in `text` from `from` on, up to the first blank line.
fn codes_in(text: &str, from: &str, pick: impl Fn(&str) -> Vec<i32>) -> std::collections::BTreeSet<i32> {
    let start = text.find(from).unwrap_or_else(|| panic!("{from:?} not found"));
    let part = &text[start..];
    let end = part.find("\n\n").unwrap_or(part.len());
    part[..end].lines().flat_map(&pick).collect()
}

/// One set of exit codes: `src/exit.rs` (the table kpo uses), `kpo run --help` and the README's
/// exit-code table name the same codes.
#[test]
fn exit_codes_agree_in_the_code_the_help_and_the_readme() {
    let source = include_str!("../../src/exit.rs");
    let defined: std::collections::BTreeSet<i32> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter_map(|l| l.split_once("i32 = "))
        .map(|(_, n)| n.trim_end_matches(';').parse().unwrap())
        .collect();
    assert!(defined.len() > 10, "parsed {defined:?}");
    let readme = include_str!("../../README.md");
    let tabled = codes_in(readme, "| code | meaning |", |l| {
        l.strip_prefix("| ")
            .and_then(|l| l.split_once(' '))
            .and_then(|(n, _)| n.parse().ok())
            .into_iter()
            .collect()
    });
    assert_eq!(tabled, defined, "the README's exit-code table and src/exit.rs");
    let help = text(&run(&["run", "--help"]).stdout);
    let helped = codes_in(&help, "Exit code:", |l| {
        l.split(['(', ')', ',', ':', ' '])
            .filter_map(|w| w.parse().ok())
            .collect()
    });
    assert_eq!(helped, defined, "`kpo run --help` and src/exit.rs");
}

#[test]
fn a_mistyped_key_is_located_and_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        "name = \"t\"\nimage = \"busybox\"\ncomand = [\"true\"]\n[run]\ntimout = \"1m\"\n",
    )
    .unwrap();
    let out = run(&["validate", task.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    let stderr = text(&out.stderr).replace(dir.path().to_str().unwrap(), "[dir]");
    insta::assert_snapshot!("located_error", stderr);
}

/// The report with what changes from run to run (times, names, UIDs) replaced.
fn stable(mut report: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let varies = [
                        "started_at",
                        "finished_at",
                        "submitted_at",
                        "running_at",
                        "ended_at",
                        "at",
                        "last_seen",
                        "uid",
                        "pod",
                        "run_id",
                    ];
                    if varies.contains(&k.as_str()) && !v.is_null() {
                        *v = Value::String(format!("[{k}]"));
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut report);
    report
}

#[test]
fn a_run_report_snapshot() {
    let out = run(&["run", "--sim", "--output", "json", &example("failing.toml")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pod = report["pod"].as_str().unwrap().to_owned();
    // How many updates the watch saw depends on timing: the timeline's ends are what is fixed.
    let timeline = report.as_object_mut().unwrap().remove("timeline").unwrap();
    let phases: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        (phases.first(), phases.last()),
        (Some(&"Submitted"), Some(&"Failed")),
        "{phases:?}"
    );
    let text = serde_json::to_string_pretty(&stable(report)).unwrap();
    insta::assert_snapshot!("failing_report", text.replace(&pod, "[pod]"));
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["run", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
    assert!(text(&out.stderr).contains("--no-such-flag"));
    let out = run(&["run", "--sim", "--run-id", "Not A Label!", &example("hello.toml")]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--run-id:"), "{}", text(&out.stderr));
    let out = run(&["logs", "no-such-run", "--sim"]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "no run no-such-run: this machine has no journal of it and namespace default no pod of it"
        ),
        "{said}"
    );
    let out = run(&["attach", "no-such-run"]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
    assert!(text(&out.stderr).contains("kpo run --run-id no-such-run TASK.toml"));
}

/// The environment is the machine's, not kpo's to trust: a variable that is not Unicode is
/// left out of what plugins may be granted, not a crash.
#[cfg(unix)]
#[test]
fn an_environment_variable_that_is_not_unicode_is_no_crash() {
    use std::os::unix::ffi::OsStrExt;
    let out = kpo()
        .args(["validate", &example("etl.toml")])
        .env("KPO_NOT_UNICODE", std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::SUCCESS),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unusable_state_folder_exits_70_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("state");
    std::fs::write(&not_a_folder, "a file where kpo keeps its journal").unwrap();
    let out = kpo()
        .arg("list")
        .env("KPO_STATE_DIR", &not_a_folder)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::INTERNAL),
        "{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot read the run journals"), "{stderr}");
    assert!(stderr.contains("caused by:"), "{stderr}");
}

#[test]
fn json_output_prints_a_document_even_when_no_pod_exists() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("bad.toml");
    std::fs::write(&task, "name = \"t\"\n").unwrap();
    let out = run(&["run", "--sim", "--output", "json", task.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON document on stdout");
    assert_eq!(doc["outcome"], "error");
    assert_eq!(doc["exit_code"], kpo::exit::CONFIG);
    assert!(doc["message"].as_str().unwrap().contains("image"), "{doc}");

    let out = run(&["run", "--output", "json", &example("hello.toml")]);
    assert_eq!(out.status.code(), Some(kpo::exit::CLUSTER_UNAVAILABLE));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON document on stdout");
    assert_eq!(doc["exit_code"], kpo::exit::CLUSTER_UNAVAILABLE);
    assert!(doc["message"].as_str().unwrap().contains("--sim"), "{doc}");
}

#[test]
fn completions_and_man_page_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let script = text(&out.stdout);
        for command in ["run", "render", "attach", "gc"] {
            assert!(script.contains(command), "{shell} completions lack {command}");
        }
    }
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH kpo"), "{page}");
    assert!(page.contains("completions"), "{page}");
}

#[test]
fn the_version_names_the_plugin_contract_it_speaks() {
    let wit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("wit/plugin.wit")).unwrap();
    let package = wit
        .lines()
        .find_map(|l| l.strip_prefix("package ")?.strip_suffix(';'))
        .unwrap();
    let version = text(&run(&["--version"]).stdout);
    assert!(
        version.starts_with(&format!("kpo {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains(package), "{version} does not name {package}");
}

/// kpo copied (as a user installs it) to a folder under the name kubectl looks for.
pub fn as_kubectl_plugin(dir: &Path) -> PathBuf {
    let plugin = dir.join("kubectl-kpo");
    std::fs::copy(env!("CARGO_BIN_EXE_kpo"), &plugin).unwrap();
    plugin
}

#[test]
fn named_kubectl_kpo_it_calls_itself_kubectl_kpo() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(as_kubectl_plugin(dir.path()))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("Usage: kubectl kpo run"),
        "{}",
        text(&out.stdout)
    );
}

/// A released contract is never edited: `wit/0.1.0/plugin.wit` is byte for byte the file kpo
/// released as `kpo:plugin@0.1.0` (components built against it must keep loading).
#[test]
fn the_released_contract_is_never_edited() {
    use sha2::Digest;
    let released = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("wit/0.1.0/plugin.wit")).unwrap();
    assert_eq!(
        format!("{:x}", sha2::Sha256::digest(&released)),
        "1b3ce7ef5a307d308e2e424d9ea83f6ba0a31886edc0d419115bcf10fe4544ad",
        "wit/0.1.0/plugin.wit changed: give the change a new version instead"
    );
}

/// A reader that went away (`kpo man | head -1`) ends kpo's output quietly: exit 0, no panic,
/// no error — for the man page, a table and a rendered pod alike.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let task = example("hello.toml");
    for args in [vec!["man"], vec!["list"], vec!["render", task.as_str()]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // Closed before kpo writes a byte: every write meets a broken pipe.
        drop(reader);
        let out = kpo()
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

/// A batch of the `hello` and `failing` examples, as the two tasks of a folder.
fn a_batch_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["hello.toml", "failing.toml"] {
        std::fs::copy(example(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Text whose durations (`1.9s`) and generated names (a pod's suffix, the batch id) change from
/// run to run, with those made fixed and runs of spaces made one (a longer duration realigns a
/// table).
fn steady(text: &str) -> String {
    let word = |w: &str| -> String {
        let number = w.strip_suffix('s').unwrap_or("x");
        if number.contains('.') && number.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return "[duration]".into();
        }
        match w.rsplit_once('-') {
            Some((task, suffix)) if ["hello", "failing"].contains(&task) && suffix.len() == 5 => {
                format!("{task}-[suffix]")
            }
            _ => w.to_owned(),
        }
    };
    let indented = |line: &str| line.len() - line.trim_start().len();
    text.lines()
        .map(|line| {
            let words: Vec<String> = line.split_whitespace().map(word).collect();
            format!("{}{}", " ".repeat(indented(line)), words.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The batch summary people read: its table and closing line.
#[test]
fn a_batch_summary_snapshot() {
    let dir = a_batch_folder();
    let out = run(&["run", "--sim", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    let table = &stderr[stderr.find("TASK ").expect("a summary table")..];
    let batch = table
        .rsplit_once("kpo: batch ")
        .unwrap()
        .1
        .split(':')
        .next()
        .unwrap();
    insta::assert_snapshot!("batch_summary", steady(&table.replace(batch, "[batch]")));
}

/// The batch's JSON document, after one per run.
#[test]
fn a_batch_report_snapshot() {
    let dir = a_batch_folder();
    let out = run(&["run", "--sim", "--output", "json", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let documents: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = documents.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["run", "run", "batch"]);
    let mut batch = documents[2].clone();
    for task in batch["tasks"].as_array_mut().unwrap() {
        task["seconds"] = Value::String("[seconds]".into());
    }
    batch["batch_id"] = Value::String("[batch_id]".into());
    let text = serde_json::to_string_pretty(&stable(batch)).unwrap();
    insta::assert_snapshot!("batch_report", text);
}

/// `kpo list` of a finished run, a failed one and a batch's: its header over its rows.
#[test]
fn a_list_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let kpo_here = || {
        let mut cmd = kpo();
        cmd.env("KPO_STATE_DIR", state.path());
        cmd
    };
    let mut names = Vec::new();
    for name in ["hello.toml", "failing.toml"] {
        let out = kpo_here()
            .args(["run", "--sim", "--output", "json", &example(name)])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).expect("a report");
        names.push((report["run_id"].as_str().unwrap().to_owned(), "[run]"));
        names.push((report["pod"].as_str().unwrap().to_owned(), "[pod]"));
    }
    let dir = a_batch_folder();
    let out = kpo_here()
        .args(["run", "--sim", "--output", "json", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let documents: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for run in &documents[..2] {
        names.push((run["pod"].as_str().unwrap().to_owned(), "[pod]"));
    }
    names.push((documents[2]["batch_id"].as_str().unwrap().to_owned(), "[batch]"));
    let out = kpo_here().arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut listed = text(&out.stdout);
    for (name, shown) in names {
        listed = listed.replace(&name, shown);
    }
    insta::assert_snapshot!("list", steady(&listed));
}

/// What `kpo plugin test` prints when a mutator's pod is not the golden one: the differences.
#[test]
fn a_plugin_test_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "metadata:\n  name: p\n  namespace: default\nspec:\n  containers:\n  - name: base\n    image: busybox\n",
    )
    .unwrap();
    let golden = dir.path().join("expected.json");
    let wasm = crate::harness::plugin("add-labels");
    let test = || {
        run(&[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--pod",
            pod.to_str().unwrap(),
            "--config",
            "{\"labels\": {\"team\": \"data\"}}",
            "--expect",
            golden.to_str().unwrap(),
        ])
    };
    // No golden file yet: how to make one.
    let out = test();
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(text(&out.stderr).contains("`--update` writes what the plugin answers there"));
    std::fs::write(
        &golden,
        r#"{"metadata": {"name": "p", "labels": {"team": "ml"}}}"#,
    )
    .unwrap();
    let out = test();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::FAILED),
        "{}",
        text(&out.stderr)
    );
    let shown = format!("{}{}", text(&out.stderr), text(&out.stdout));
    let shown = shown
        .replace(dir.path().to_str().unwrap(), "[dir]")
        .replace(wasm.to_str().unwrap(), "[plugin]");
    insta::assert_snapshot!("plugin_test", shown);
}

/// `kpo plugin wit DIR` writes the contract this kpo speaks, byte for byte as in `wit/`, so that
/// an author outside this repository builds against exactly it.
#[test]
fn plugin_wit_writes_the_contract_kpo_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["plugin", "wit", dir.path().join("wit").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let names = ["plugin.wit", "0.1.0/plugin.wit", "outcome.schema.json"];
    let mut in_repo = Vec::new();
    for entry in std::fs::read_dir(&repo)
        .unwrap()
        .chain(std::fs::read_dir(repo.join("0.1.0")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            in_repo.push(path.strip_prefix(&repo).unwrap().to_str().unwrap().to_owned());
        }
    }
    in_repo.sort();
    assert_eq!(
        in_repo,
        ["0.1.0/plugin.wit", "outcome.schema.json", "plugin.wit"],
        "every file of wit/ is written"
    );
    for name in names {
        let written = std::fs::read(dir.path().join("wit").join(name)).unwrap();
        assert_eq!(written, std::fs::read(repo.join(name)).unwrap(), "{name}");
    }
    assert!(text(&out.stderr).contains("wit/0.1.0/plugin.wit"));
}

/// `plugin inspect` says what a component is without asking anything of it — not even about a
/// config it may reject, or answer never — and with `--config` asks that too.
#[test]
fn plugin_inspect_asks_nothing_unless_given_a_config() {
    let blocking = crate::harness::plugin("hostile/blocking-config");
    let out = run(&["plugin", "inspect", blocking.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("roles:    mutator"),
        "{}",
        text(&out.stdout)
    );
    let oom = crate::harness::plugin("oom-memory");
    let out = run(&[
        "plugin",
        "inspect",
        oom.to_str().unwrap(),
        "--config",
        "{\"factor\": 0.5}",
    ]);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(
        text(&out.stderr)
            .contains("plugin oom_memory rejected its config: `factor` must be a number above 1"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "plugin",
        "inspect",
        oom.to_str().unwrap(),
        "--config",
        "{\"factor\": 2}",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("config:   accepted"));
    assert!(
        !text(&out.stdout).contains("wasi:sockets"),
        "{}",
        text(&out.stdout)
    );
    // What the sandbox will deny of its imports is said before it is relied on.
    let socket = crate::harness::plugin("hostile/socket");
    let out = run(&["plugin", "inspect", socket.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("denied:   wasi:sockets: always denied (no network"),
        "{}",
        text(&out.stdout)
    );
}

/// A config given to a 0.2.0 plugin that exports no `settings` is checked by nothing: said at
/// load, once; not for a plugin that checks it, nor for a 0.1.0 one (that contract has no way to).
#[test]
fn a_config_nothing_checks_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let task = |plugin: &str, config: &str| {
        let path = dir.path().join(format!("{}.toml", config.len()));
        let wasm = crate::harness::plugin(plugin);
        std::fs::write(
            &path,
            format!(
                "name = \"t\"\nimage = \"busybox\"\n[[mutate]]\npath = {:?}\n{config}\n",
                wasm.to_str().unwrap()
            ),
        )
        .unwrap();
        let out = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let warned = "plugin readme_mutator is given a config but exports no kpo:plugin/settings@0.2.0";
    let stderr = task("readme-mutator", "config = { patern = \"x\" }");
    assert_eq!(stderr.matches(warned).count(), 1, "{stderr}");
    assert!(!task("readme-mutator", "").contains("is given a config"));
    assert!(!task("add-labels", "config = { labels = { a = \"b\" } }").contains("is given a config"));
}

/// `plugin test` tells the plugin the run it names (`--task`, `--namespace`, `--run-id`,
/// `--attempt`, `--earlier`): an interpreter that reads the earlier attempts sees them.
#[test]
fn plugin_test_takes_the_runs_context_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let outcome = write(
        "outcome.json",
        r#"{"attempt": 2, "status": "succeeded", "containers": [{"name": "base", "role": "main", "exit_code": 0}]}"#,
    );
    let earlier = write(
        "earlier.json",
        r#"[{"attempt": 1, "status": "failed", "exit_code": 137,
             "containers": [{"name": "base", "role": "main", "exit_code": 137, "reason": "OOMKilled"}]}]"#,
    );
    let golden = dir.path().join("golden.json");
    let flaky = crate::harness::plugin("flaky");
    let mut args = vec![
        "plugin",
        "test",
        flaky.to_str().unwrap(),
        "--outcome",
        &outcome,
        "--expect",
        golden.to_str().unwrap(),
        "--update",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let alone: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert_eq!(alone["outputs"]["flaky"], false, "{alone}");
    args.extend(["--attempt", "2", "--earlier", &earlier, "--task", "nightly"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let told: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert_eq!(told["outputs"]["flaky"], true, "{told}");
    assert_eq!(
        told["outputs"]["earlier"][0],
        serde_json::json!({"attempt": 1, "status": "failed", "exit_code": 137, "reason": "OOMKilled"})
    );
}

/// `run --record-outcome` writes what interpreters are handed about the run — environment values
/// redacted — in the form `plugin test --outcome` reads: an interpreter tested on a real run.
#[test]
fn a_recorded_outcome_is_what_plugin_test_reads() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.toml");
    let failing = std::fs::read_to_string(example("failing.toml")).unwrap();
    std::fs::write(&task, format!("{failing}\n[env]\nTOKEN = \"hunter2\"\n")).unwrap();
    let recorded = dir.path().join("outcome.json");
    let out = run(&[
        "run",
        "--sim",
        task.to_str().unwrap(),
        "--record-outcome",
        recorded.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        !written.contains("hunter2") && written.contains("\"[redacted]\""),
        "{written}"
    );
    let outcome: Value = serde_json::from_str(&written).unwrap();
    let schema = outcome_schema();
    assert!(
        schema.is_valid(&outcome),
        "{:?}",
        schema
            .iter_errors(&outcome)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["exit_code"], 3);
    assert!(
        outcome["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "ERROR: input file missing"),
        "{outcome}"
    );
    let golden = dir.path().join("judgement.json");
    let scan = crate::harness::plugin("log-scan");
    let out = run(&[
        "plugin",
        "test",
        scan.to_str().unwrap(),
        "--outcome",
        recorded.to_str().unwrap(),
        "--config",
        "{\"patterns\": [\"ERROR\"]}",
        "--expect",
        golden.to_str().unwrap(),
        "--update",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let judged: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert_eq!(judged["verdict"], "failure", "{judged}");
    // One task's outcome: a batch has none to record.
    let out = run(&[
        "run",
        "--sim",
        &example("hello.toml"),
        &example("failing.toml"),
        "--record-outcome",
        "x.json",
    ]);
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
}

/// The outcome files' JSON Schema, as `kpo plugin wit` writes it.
fn outcome_schema() -> jsonschema::Validator {
    let text = include_str!("../../wit/outcome.schema.json");
    jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap()
}

/// The outcome files' schema says what `plugin test --outcome` reads: every status and container
/// role kpo knows, and nothing else; the sample `plugin new` writes passes it, and a misspelt key
/// fails both the schema and `plugin test`. `kpo plugin wit` writes it beside the WIT.
#[test]
fn the_outcome_schema_says_what_plugin_test_reads() {
    let shape: Value = serde_json::from_str(include_str!("../../wit/outcome.schema.json")).unwrap();
    let statuses: Vec<&str> = kpo::plugin::terms::status_names();
    assert_eq!(shape["properties"]["status"]["enum"], serde_json::json!(statuses));
    let roles: Vec<&str> = kpo::plugin::terms::role_names();
    assert_eq!(
        shape["properties"]["containers"]["items"]["properties"]["role"]["enum"],
        serde_json::json!(roles)
    );
    let schema = outcome_schema();
    let sample: Value = serde_json::from_str(include_str!(
        "../../src/scaffold/templates/testdata/interpreter/outcome.json"
    ))
    .unwrap();
    assert!(schema.is_valid(&sample));
    let dir = tempfile::tempdir().unwrap();
    let mut misspelt = sample.clone();
    misspelt["logtail"] = serde_json::json!(["x"]);
    let mut unknown_status = sample;
    unknown_status["status"] = "skipped".into();
    for bad in [misspelt, unknown_status] {
        assert!(!schema.is_valid(&bad), "{bad}");
        let file = dir.path().join("outcome.json");
        std::fs::write(&file, bad.to_string()).unwrap();
        let out = run(&[
            "plugin",
            "test",
            crate::harness::plugin("log-scan").to_str().unwrap(),
            "--outcome",
            file.to_str().unwrap(),
            "--expect",
            "unused.json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(kpo::exit::CONFIG),
            "{}",
            text(&out.stderr)
        );
    }
    let out = run(&["plugin", "wit", dir.path().join("wit").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(dir.path().join("wit/outcome.schema.json")).unwrap();
    assert_eq!(written, include_str!("../../wit/outcome.schema.json"));
}

/// `plugin test --task-file` calls the plugin as a run of that task would: its entry's config
/// (found by the component's path) and the task's name; a task file that names no such plugin is
/// an error naming what it does name.
#[test]
fn plugin_test_takes_the_plugins_entry_from_a_task_file() {
    let dir = tempfile::tempdir().unwrap();
    let scan = crate::harness::plugin("log-scan");
    let outcome = dir.path().join("outcome.json");
    std::fs::write(
        &outcome,
        r#"{"status": "succeeded", "log_tail": ["all good", "BOOM: disk full"]}"#,
    )
    .unwrap();
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        format!(
            "name = \"nightly\"\nimage = \"busybox:1.36\"\n[[interpret]]\npath = {:?}\nconfig = {{ patterns = [\"BOOM\"] }}\n",
            scan.display().to_string()
        ),
    )
    .unwrap();
    let golden = dir.path().join("judgement.json");
    let test = |task_file: &Path| {
        run(&[
            "plugin",
            "test",
            scan.to_str().unwrap(),
            "--outcome",
            outcome.to_str().unwrap(),
            "--task-file",
            task_file.to_str().unwrap(),
            "--expect",
            golden.to_str().unwrap(),
            "--update",
        ])
    };
    let out = test(&task);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let judged: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    // The pattern came from the task file: without it the line is no failure.
    assert_eq!(judged["verdict"], "failure", "{judged}");
    assert!(judged["reason"].as_str().unwrap().contains("BOOM"), "{judged}");
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "name = \"plain\"\nimage = \"busybox:1.36\"\n").unwrap();
    let out = test(&other);
    assert_eq!(out.status.code(), Some(kpo::exit::CONFIG));
    assert!(
        text(&out.stderr).contains(&format!("names no plugin at {} (it names: none)", scan.display())),
        "{}",
        text(&out.stderr)
    );
}
