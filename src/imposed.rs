//! Policies imposed on every task from outside its task file — the machine's configuration, the
//! user's, and `--policy` on the command line — so that whoever writes a task file cannot
//! remove or weaken them (see [`crate::task::Task::impose`]).
//!
//! Each source is a policy file (`[[policy]]` entries, as in a task file; paths relative to
//! the file) or a component (`.wasm`: a policy in `enforce` mode with no config); a folder
//! holds any number of both, taken in name order.

use std::path::{Path, PathBuf};

use crate::task::{self, Origin, PluginSpec, TaskError};

/// Every policy imposed from outside the task file: those of the `machine`'s folder, the
/// `user`'s, then those named on the command line (where the folders are is the caller's to
/// say: the machine's description, `Machine`).
pub fn gather(
    machine: Option<&Path>,
    user: Option<&Path>,
    command_line: &[PathBuf],
) -> Result<Vec<PluginSpec>, TaskError> {
    let mut specs = Vec::new();
    for (dir, origin) in [
        (machine, Origin::Machine as fn(PathBuf) -> Origin),
        (user, Origin::User),
    ] {
        for file in dir.map(folder).transpose()?.into_iter().flatten() {
            specs.extend(source(&file, origin(file.clone()))?);
        }
    }
    for path in command_line {
        let files = if path.is_dir() {
            folder(path)?
        } else {
            vec![path.clone()]
        };
        for file in files {
            specs.extend(source(&file, Origin::CommandLine(file.clone()))?);
        }
    }
    Ok(specs)
}

/// The policy files and components of a folder, in name order; none if it does not exist.
fn folder(dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TaskError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml" || e == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// The policies of one file: a component alone, or a policy file's entries.
fn source(file: &Path, origin: Origin) -> Result<Vec<PluginSpec>, TaskError> {
    if file.extension().is_some_and(|e| e == "wasm") {
        if let Err(source) = std::fs::metadata(file) {
            return Err(TaskError::Read {
                path: file.to_owned(),
                source,
            });
        }
        return Ok(vec![PluginSpec {
            origin,
            ..PluginSpec::at(file)
        }]);
    }
    task::load_policies(file, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::PolicyMode;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn machine_then_user_then_command_line_each_with_its_origin() {
        let root = tempfile::tempdir().unwrap();
        let (machine, user) = (root.path().join("etc"), root.path().join("home"));
        write(&machine.join("policy.wasm"), "");
        write(
            &machine.join("b.toml"),
            "[[policy]]\npath = \"policy.wasm\"\nname = \"strict\"\n",
        );
        write(
            &user.join("a.toml"),
            "[[policy]]\npath = \"../etc/policy.wasm\"\nname = \"audit\"\nmode = \"monitor\"\n",
        );
        let cli = root.path().join("policy.wasm");
        write(&cli, "");
        let specs = gather(Some(&machine), Some(&user), std::slice::from_ref(&cli)).unwrap();
        let seen: Vec<(&str, PolicyMode, String)> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.mode, s.origin.to_string()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "strict",
                    PolicyMode::Enforce,
                    format!("machine configuration {}", machine.join("b.toml").display())
                ),
                (
                    "policy",
                    PolicyMode::Enforce,
                    format!("machine configuration {}", machine.join("policy.wasm").display())
                ),
                (
                    "audit",
                    PolicyMode::Monitor,
                    format!("user configuration {}", user.join("a.toml").display())
                ),
                (
                    "policy",
                    PolicyMode::Enforce,
                    format!("--policy {}", cli.display())
                ),
            ]
        );
    }

    #[test]
    fn a_folder_on_the_command_line_imposes_each_of_its_files() {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("p/policy.wasm"), "");
        write(&root.path().join("p/notes.txt"), "not a policy");
        write(
            &root.path().join("p/a.toml"),
            "[[policy]]\npath = \"policy.wasm\"\nname = \"first\"\n",
        );
        let specs = gather(None, None, &[root.path().join("p")]).unwrap();
        let names: Vec<(&str, String)> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.origin.to_string()))
            .collect();
        let file = |f: &str| format!("--policy {}", root.path().join("p").join(f).display());
        assert_eq!(
            names,
            [("first", file("a.toml")), ("policy", file("policy.wasm"))]
        );
    }

    #[test]
    fn a_missing_folder_imposes_nothing_and_a_bad_file_is_located() {
        let root = tempfile::tempdir().unwrap();
        assert!(
            gather(Some(&root.path().join("none")), None, &[])
                .unwrap()
                .is_empty()
        );
        let bad = root.path().join("bad.toml");
        write(&bad, "[[policy]]\npath = \"x.wasm\"\nmode = \"audit\"\n");
        let e = gather(None, None, &[bad]).unwrap_err().to_string();
        assert!(
            e.contains("bad.toml:3:1: policy[0].mode: `audit` is not a policy mode"),
            "{e}"
        );
        assert!(e.contains("no plugin file at"), "{e}");
    }
}
