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
