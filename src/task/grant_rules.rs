//! What the machine's operator lets a task file grant its plugins: the `[grants]` of the
//! machine's settings file. A grant hands a plugin something of the machine's — a folder, an
//! environment variable, the clock — and a plugin may copy what it reads into the pod, so the
//! one who answers for the machine decides, not whoever writes a task file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Task;
use super::load::{TaskError, parse_document, problem_at_field};
use super::locate::KeyPath;
use super::plugin_spec::{Origin, PluginSpec};

/// The machine's settings file as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawSettings {
    #[serde(default)]
    pub grants: RawGrantRules,
}

/// `[grants]`: each key absent allows anything, as without a settings file.
#[derive(Debug, Default, Deserialize)]
pub struct RawGrantRules {
    pub dirs: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub clock: Option<bool>,
}

/// What plugins may be granted on this machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantRules {
    /// The settings file the rules come from (none: no rules, anything goes).
    pub source: Option<PathBuf>,
    /// Host folders a grant may name (they, or a folder inside one); `None`: any.
    pub dirs: Option<Vec<PathBuf>>,
    /// Environment variables a grant may pass; `None`: any.
    pub env: Option<Vec<String>>,
    /// Whether a grant may give the real clock.
    pub clock: bool,
}

impl GrantRules {
    /// No settings file: every grant is the task file's to make.
    pub fn anything() -> Self {
        Self {
            clock: true,
            ..Self::default()
        }
    }

    /// Why `spec` may not have its grants here, as (the grant's key, the message): none when it
    /// may.
    fn refusal(&self, spec: &PluginSpec) -> Option<(&'static str, String)> {
        let source = self
            .source
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string());
        if let Some(allowed) = &self.dirs {
            let roots: Vec<PathBuf> = allowed.iter().filter_map(|d| d.canonicalize().ok()).collect();
            for (host, _) in &spec.grants.dirs {
                // Resolved first: `..` and links lead where they lead, not where they seem to.
                let inside = host
                    .canonicalize()
                    .is_ok_and(|real| roots.iter().any(|root| real.starts_with(root)));
                if !inside {
                    return Some((
                        "dirs",
                        format!(
                            "`{}` is in none of the folders this machine lets plugins be given ({source}: grants.dirs = {})",
                            host.display(),
                            list(allowed.iter().map(|d| d.display().to_string()))
                        ),
                    ));
                }
            }
        }
        if let Some(allowed) = &self.env
            && let Some(name) = spec.grants.env.iter().find(|n| !allowed.contains(n))
        {
            return Some((
                "env",
                format!(
                    "`{name}` is not among the variables this machine lets plugins be given ({source}: grants.env = {})",
                    list(allowed.iter().cloned())
                ),
            ));
        }
        if spec.grants.clock && !self.clock {
            return Some((
                "clock",
                format!("this machine gives plugins no real clock ({source}: grants.clock = false)"),
            ));
        }
        None
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.is_empty() {
        true => "[] (none)".into(),
        false => format!("[{}]", items.join(", ")),
    }
}

impl Task {
    /// Checks every plugin's grants against what the machine's operator allows. A task file's
    /// own entry that asks for more is a located error; a policy imposed by the user or the
    /// command line is refused naming where it comes from; the machine's own policies are the
    /// operator's and are not checked.
    pub fn allow(&self, rules: &GrantRules) -> Result<(), TaskError> {
        for (table, specs) in [
            ("mutate", &self.mutators),
            ("policy", &self.policies),
            ("interpret", &self.interpreters),
        ] {
            let mut own = 0;
            for spec in specs {
                let index = own;
                if spec.origin == Origin::TaskFile {
                    own += 1;
                }
                let Some((key, message)) = rules.refusal(spec) else {
                    continue;
                };
                match &spec.origin {
                    Origin::TaskFile => {
                        return Err(problem_at_field(
                            &self.source,
                            table,
                            index,
                            &["grant", key],
                            message,
                        ));
                    }
                    Origin::Machine(_) => {}
                    other => {
                        return Err(TaskError::Imposed(format!(
                            "policy `{}` from {other}: grant.{key}: {message}",
                            spec.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The rules of the settings file at `path`; none there: anything goes.
///
/// # Errors
/// The file cannot be read, or is not valid (located errors, as for a task file).
pub fn load_rules(path: &Path) -> Result<GrantRules, TaskError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GrantRules::anything()),
        Err(source) => {
            return Err(TaskError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    // Located like a task file's problems: unknown keys, wrong types, what is checked here.
    let (rules, _) = parse_document(&text, path, None, |raw: RawSettings, _folder| {
        let relative: Vec<&String> = raw
            .grants
            .dirs
            .iter()
            .flatten()
            .filter(|d| !Path::new(d).is_absolute())
            .collect();
        if let Some(d) = relative.first() {
            let key = KeyPath::default().key("grants").key("dirs");
            return Err(vec![(key, format!("`{d}` is not an absolute path"))]);
        }
        Ok(GrantRules {
            source: Some(path.to_owned()),
            dirs: raw
                .grants
                .dirs
                .map(|d| d.into_iter().map(PathBuf::from).collect()),
            env: raw.grants.env,
            clock: raw.grants.clock.unwrap_or(true),
        })
    })?;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with a settings file, a plugin file and the folders grants name.
    fn machine(settings: &str) -> (tempfile::TempDir, GrantRules) {
        let dir = tempfile::tempdir().unwrap();
        for d in ["allowed/models", "secret"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let settings = settings.replace("ROOT", dir.path().to_str().unwrap());
        std::fs::write(dir.path().join("settings.toml"), settings).unwrap();
        let rules = load_rules(&dir.path().join("settings.toml")).unwrap();
        (dir, rules)
    }

    /// What `allow` says of a task whose one mutator has `grant`.
    fn verdict(dir: &Path, rules: &GrantRules, grant: &str) -> Result<(), String> {
        let path = dir.join("task.toml");
        let text =
            format!("name = \"t\"\nimage = \"x\"\n[[mutate]]\npath = \"p.wasm\"\ngrant = {{ {grant} }}\n");
        std::fs::write(&path, text).unwrap();
        crate::task::load(&path)
            .unwrap()
            .allow(rules)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn grants_beyond_the_operators_rules_are_located_errors() {
        let (dir, rules) = machine("[grants]\ndirs = [\"ROOT/allowed\"]\nenv = [\"LANG\"]\nclock = false\n");
        let d = dir.path();
        assert_eq!(verdict(d, &rules, r#"dirs = ["allowed/models:/models"]"#), Ok(()));
        assert_eq!(verdict(d, &rules, r#"env = ["LANG"]"#), Ok(()));
        let e = verdict(d, &rules, r#"dirs = ["secret:/s"]"#).unwrap_err();
        assert!(
            e.contains("task.toml:5:") && e.contains("mutate[0].grant.dirs: `"),
            "{e}"
        );
        assert!(
            e.contains("is in none of the folders this machine lets plugins be given"),
            "{e}"
        );
        // `..` and links lead where they lead.
        let e = verdict(d, &rules, r#"dirs = ["allowed/../secret:/s"]"#).unwrap_err();
        assert!(e.contains("grant.dirs"), "{e}");
        std::os::unix::fs::symlink(d.join("secret"), d.join("allowed/link")).unwrap();
        assert!(verdict(d, &rules, r#"dirs = ["allowed/link:/s"]"#).is_err());
        let e = verdict(d, &rules, r#"env = ["AWS_SECRET_ACCESS_KEY"]"#).unwrap_err();
        assert!(
            e.contains("mutate[0].grant.env: `AWS_SECRET_ACCESS_KEY` is not among"),
            "{e}"
        );
        let e = verdict(d, &rules, "clock = true").unwrap_err();
        assert!(
            e.contains("mutate[0].grant.clock: this machine gives plugins no real clock"),
            "{e}"
        );
    }

    #[test]
    fn no_settings_file_allows_anything_and_a_bad_one_is_located() {
        let rules = load_rules(Path::new("/nonexistent/kpo/settings.toml")).unwrap();
        assert_eq!(rules, GrantRules::anything());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "[grants]\ndirs = [\"relative\"]\n").unwrap();
        let e = load_rules(&path).unwrap_err().to_string();
        assert!(
            e.contains("settings.toml:2:1: grants.dirs: `relative` is not an absolute path"),
            "{e}"
        );
        std::fs::write(&path, "[grants]\nclock = \"no\"\n").unwrap();
        assert!(
            load_rules(&path)
                .unwrap_err()
                .to_string()
                .contains("grants.clock")
        );
    }
}
