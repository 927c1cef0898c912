//! `kpo plugin new` as a new plugin author meets it: for each language, a project per role
//! written outside this repository, then built, tested and tried with the shell commands of its
//! own README, verbatim and in order — nothing of the repository's on the way.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::kpo_command;

/// The README's shell blocks, each with the heading of its section.
fn shell_blocks(readme: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in readme.lines() {
        match (&mut block, line) {
            (None, "```sh") => block = Some(String::new()),
            (Some(text), "```") => {
                blocks.push((heading.clone(), std::mem::take(text)));
                block = None;
            }
            (Some(text), line) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, line) => {
                if let Some(h) = line.strip_prefix("## ") {
                    heading = h.to_owned();
                }
            }
        }
    }
    blocks
}

/// What one README block printed.
struct Ran {
    section: String,
    output: String,
}

/// Writes the project for `role` in `lang` under `root`, then runs its README's blocks; what
/// each printed. Rust projects share one build folder (their `target` is a link to it), so the
/// dependencies compile once per test run.
fn author(root: &Path, lang: &str, role: &str) -> Vec<Ran> {
    let dir = root.join(role);
    let name = format!("demo-{role}");
    let out = kpo_command()
        .args(["plugin", "new", &name, "--lang", lang, "--role", role, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("a {role} plugin")), "{said}");
    if lang == "rust" {
        let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new-target");
        std::fs::create_dir_all(&shared).unwrap();
        std::os::unix::fs::symlink(&shared, dir.join("target")).unwrap();
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let sections: Vec<&str> = blocks.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sections, ["Build", "Test", "Test", "Try"], "{readme}");
    let kpo_dir = Path::new(env!("CARGO_BIN_EXE_kpo")).parent().unwrap();
    let path = format!(
        "{}:{}",
        kpo_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    blocks
        .into_iter()
        .map(|(section, block)| {
            // The environment of kpo's tests (its journal and caches in a scratch folder), with
            // `sh -e` running the block as a user would paste it.
            let probe = kpo_command();
            let mut sh = Command::new("sh");
            sh.args(["-e", "-c", &block])
                .current_dir(&dir)
                .env("PATH", &path)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS");
            for (key, value) in probe.get_envs() {
                match value {
                    Some(v) => sh.env(key, v),
                    None => sh.env_remove(key),
                };
            }
            let out = sh.output().unwrap();
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "{lang} {role}, README section {section}:\n{block}\n{output}"
            );
            Ran { section, output }
        })
        .collect()
}

/// What a task using each role's plugin shows of it.
const SEEN: [(&str, &str); 3] = [
    (
        "mutator",
        "label team stays \"ml\" (the config asks for \"data\")",
    ),
    ("policy", "has no memory limit"),
    ("interpreter", "(judged success by demo_interpreter)"),
];

/// Every role of `lang`: built, its own tests and `kpo plugin test` passing, and a task using it
/// on the simulated cluster showing what the role did.
fn every_role(lang: &str) {
    let root = tempfile::tempdir().unwrap();
    for (role, seen) in SEEN {
        let ran = author(root.path(), lang, role);
        let test = &ran[2];
        assert!(test.output.contains("kpo: ok:"), "{lang} {role}: {}", test.output);
        let tried = &ran[3];
        assert_eq!(tried.section, "Try");
        assert!(
            tried.output.contains("processed 3 rows"),
            "{lang} {role}: {}",
            tried.output
        );
        assert!(tried.output.contains(seen), "{lang} {role}: {}", tried.output);
    }
}

/// The projects' `task.toml`, unchanged, on a real cluster (`kpo run task.toml`, as its first
/// line says): each role does there what it did on the simulated cluster. C builds fastest.
pub fn new_plugins_run_their_task_on(kubeconfig: &str) {
    crate::harness::c_toolchain().unwrap();
    let root = tempfile::tempdir().unwrap();
    for (role, seen) in SEEN {
        author(root.path(), "c", role);
        let out = kpo_command()
            .args(["run", "task.toml", "--kubeconfig", kubeconfig])
            .current_dir(root.path().join(role))
            .output()
            .unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{role}: {shown}");
        assert!(
            shown.contains("processed 3 rows") && shown.contains(seen),
            "{role}: {shown}"
        );
    }
}

#[test]
fn a_rust_plugin_builds_tests_and_runs_from_its_readme() {
    crate::harness::wasm_target().unwrap();
    every_role("rust");
}

#[test]
fn a_python_plugin_builds_tests_and_runs_from_its_readme() {
    every_role("python");
}

#[test]
fn a_javascript_plugin_builds_tests_and_runs_from_its_readme() {
    every_role("js");
}

#[test]
fn a_c_plugin_builds_tests_and_runs_from_its_readme() {
    crate::harness::c_toolchain().unwrap();
    every_role("c");
}

/// A project is written only into a new or empty folder, under a name every language's build
/// takes; neither mistake leaves a file behind.
#[test]
fn plugin_new_refuses_a_bad_name_and_a_folder_in_use() {
    let root = tempfile::tempdir().unwrap();
    let used = root.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep.txt"), "mine").unwrap();
    let new = |name: &str, dir: &Path| {
        kpo_command()
            .args([
                "plugin", "new", name, "--lang", "rust", "--role", "policy", "--dir",
            ])
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = new("Team_Labels", &root.path().join("fresh"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`Team_Labels` cannot name a plugin"));
    assert!(!root.path().join("fresh").exists());
    let out = new("labels", &used);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    let left: Vec<PathBuf> = std::fs::read_dir(&used)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [used.join("keep.txt")]);
}
