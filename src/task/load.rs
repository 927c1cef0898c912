//! Reading a task file: TOML parsing, unknown-key detection, validation, and the pod template.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::DeTable;

use super::Task;
use super::locate::{KeyPath, line_col, span_of};
use super::plugin_spec::{Origin, PluginSpec};
use super::raw::RawPolicyFile;
use super::validate::{Found, policy_file, validate};

/// Why a task file could not be loaded. Every problem names the file, and where it can, the
/// line, column and key, so it can be fixed without guessing.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The task file or a file it names could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid task.
    #[error("{}", Problems { file, problems })]
    Invalid { file: PathBuf, problems: Vec<Problem> },
    /// The policies imposed from outside task files contradict one another.
    #[error("{0}")]
    Imposed(String),
}

impl TaskError {
    /// Always [`crate::exit::CONFIG`]: the task file (or a file it names) needs fixing.
    pub fn exit_code(&self) -> i32 {
        crate::exit::CONFIG
    }
}

/// One mistake in a task file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending key (`run.on_finish`), empty for syntax errors.
    pub key: String,
    pub message: String,
}

struct Problems<'a> {
    file: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{file}:{}:{}: ", p.line, p.column)?;
            if !p.key.is_empty() {
                write!(f, "{}: ", p.key)?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

/// Reads and checks the task file at `path`, including the pod template it names.
pub fn load(path: &Path) -> Result<Task, TaskError> {
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Checks task-file `text` as if read from `path` (used for messages and relative paths).
pub fn parse(text: &str, path: &Path) -> Result<Task, TaskError> {
    let mut task = parse_document(text, path, validate)?;
    task.source = path.to_owned();
    Ok(task)
}

/// Reads the policy file at `path` (`[[policy]]` entries, as in a task file), imposed on every
/// task from `origin`.
pub fn load_policies(path: &Path, origin: Origin) -> Result<Vec<PluginSpec>, TaskError> {
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_document(&text, path, |raw: RawPolicyFile, folder| {
        policy_file(raw, folder, &origin)
    })
}

/// Parses TOML `text` into `R`, then turns it into `T` with `check`; every problem (syntax,
/// unknown key, wrong type, what `check` finds) is located by line, column and key.
pub(super) fn parse_document<R: DeserializeOwned, T>(
    text: &str,
    path: &Path,
    check: impl FnOnce(R, &Path) -> Result<T, Found>,
) -> Result<T, TaskError> {
    let invalid = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| (p.line, p.column));
        TaskError::Invalid {
            file: path.to_owned(),
            problems,
        }
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        invalid(vec![Problem {
            line,
            column,
            key: String::new(),
            message: first_line(e.message()),
        }])
    })?;
    let locate = |key: &KeyPath, fallback: usize, message: String| {
        let offset = span_of(&doc, key).map_or(fallback, |s| s.start);
        let (line, column) = line_col(text, offset);
        let key = key.to_string();
        // Environment values are often secrets: a message about one never repeats it.
        let quotes_value = message.starts_with("invalid type:") || message.starts_with("invalid value:");
        let message = if key.starts_with("env.") && quotes_value {
            redact(&message)
        } else {
            message
        };
        Problem {
            line,
            column,
            key,
            message,
        }
    };

    let mut unknown = Vec::new();
    let de = toml::de::Deserializer::from(doc.clone());
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    let raw = serde_ignored::deserialize(tracked, |p| unknown.push(KeyPath::from_ignored(&p)));
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|k| {
            let hint = super::suggest::did_you_mean(k).map(|known| format!("; did you mean `{known}`?"));
            locate(k, 0, format!("unknown key{}", hint.unwrap_or_default()))
        })
        .collect();
    let raw = match raw {
        Ok(raw) => raw,
        Err(e) => {
            let key = KeyPath::from_path_to_error(&track.path());
            let fallback = e.span().map_or(0, |s| s.start);
            problems.push(locate(&key, fallback, first_line(e.message())));
            return Err(invalid(problems));
        }
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    match check(raw, folder) {
        Ok(checked) if problems.is_empty() => Ok(checked),
        Ok(_) => Err(invalid(problems)),
        Err(found) => {
            problems.extend(found.into_iter().map(|(k, m)| locate(&k, 0, m)));
            Err(invalid(problems))
        }
    }
}

/// A problem with the value of the top-level `key` of the task file at `path`, found by a check
/// that looks beyond the file (a task name used twice in a batch), located like any other.
pub fn problem_at(path: &Path, key: &str, message: String) -> TaskError {
    located(path, &KeyPath::default().key(key), message)
}

/// A problem with entry `index` of the task file's `[[table]]` (a `[[policy]]` that collides
/// with an imposed one), located like any other.
pub fn problem_at_entry(path: &Path, table: &str, index: usize, message: String) -> TaskError {
    problem_at_field(path, table, index, &[], message)
}

/// A problem with `field` (`["grant", "dirs"]`) of entry `index` of the task file's
/// `[[table]]`, found by a check that looks beyond the file (the machine's grant rules).
pub fn problem_at_field(
    path: &Path,
    table: &str,
    index: usize,
    field: &[&str],
    message: String,
) -> TaskError {
    let key = field
        .iter()
        .fold(KeyPath::default().key(table).index(index), |k, f| k.key(*f));
    located(path, &key, message)
}

fn located(path: &Path, key: &KeyPath, message: String) -> TaskError {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let offset = DeTable::parse(&text)
        .ok()
        .and_then(|doc| span_of(&doc, key))
        .map_or(0, |s| s.start);
    let (line, column) = line_col(&text, offset);
    TaskError::Invalid {
        file: path.to_owned(),
        problems: vec![Problem {
            line,
            column,
            key: key.to_string(),
            message,
        }],
    }
}

/// Replaces every `quoted` part of a serde message (the offending value) with `***`.
fn redact(message: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        out.push_str(if i % 2 == 1 { "`***`" } else { part });
    }
    out
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}
