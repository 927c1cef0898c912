//! Reading a task file: TOML parsing, unknown-key detection, validation, and the pod template.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::DeTable;

use super::Task;
use super::locate::{KeyPath, line_col, span_of};
use super::matrix::Row;
use super::params::{self, Given, Param, Source, Substituted};
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
    /// A parameter value given to a batch whose files declare no such parameter.
    #[error("{0}")]
    Given(String),
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
    load_given(path, &Given::default())
}

/// [`load`] with values for the file's parameters.
///
/// # Errors
/// As [`load`], and a parameter without a value, a reference to an unknown one, a value given
/// to none, or a `[matrix]` file (many tasks: [`load_members`]).
pub fn load_given(path: &Path, given: &Given) -> Result<Task, TaskError> {
    let text = read(path)?;
    if rows_of(&text, path)?.is_some() {
        return Err(problem_at(
            path,
            "matrix",
            "a task file with a [matrix] is many tasks: `kpo run` runs it as a batch; here give one file without".into(),
        ));
    }
    parse_given(&text, path, given)
}

/// The tasks of the task file at `path` with these parameter values: one, or one per member of
/// its `[matrix]` — named `<name>-<values>`, its values set as parameters and as environment
/// variables (upper-cased; one the task file sets itself keeps the file's value).
pub fn load_members(path: &Path, given: &Given) -> Result<Vec<Task>, TaskError> {
    let text = read(path)?;
    let Some(rows) = rows_of(&text, path)? else {
        return Ok(vec![parse_given(&text, path, given)?]);
    };
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        let mut task = parse_given(&text, path, &given.with(row.0.clone(), Source::Matrix))?;
        task.name = row.member_name(&task.name);
        crate::names::check_task_name(&task.name)
            .map_err(|m| problem_at(path, "name", format!("a matrix member's name: {m}")))?;
        for (name, value) in row.env() {
            if !task.env.iter().any(|e| e.name == name) {
                task.env.push(k8s_openapi::api::core::v1::EnvVar {
                    name,
                    value: Some(value.to_owned()),
                    ..Default::default()
                });
            }
        }
        task.matrix = true;
        tasks.push(task);
    }
    Ok(tasks)
}

/// The names of the parameters the task file at `path` declares or takes from its matrix.
pub fn declared_params(path: &Path) -> Result<Vec<String>, TaskError> {
    let text = read(path)?;
    Ok(DeTable::parse(&text).map_or_else(|_| Vec::new(), |doc| params::declared_names(doc.get_ref())))
}

fn read(path: &Path) -> Result<String, TaskError> {
    std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The members of the file's `[matrix]`, if it has one; its mistakes located.
fn rows_of(text: &str, path: &Path) -> Result<Option<Vec<Row>>, TaskError> {
    let Ok(doc) = DeTable::parse(text) else {
        // A syntax error: the parse proper reports it, located.
        return Ok(None);
    };
    super::matrix::rows(doc.get_ref()).map_err(|found| {
        let problems = found
            .into_iter()
            .map(|(key, message)| {
                let offset = span_of(&doc, &key).map_or(0, |s| s.start);
                let (line, column) = line_col(text, offset);
                Problem {
                    line,
                    column,
                    key: key.to_string(),
                    message,
                }
            })
            .collect();
        TaskError::Invalid {
            file: path.to_owned(),
            problems,
        }
    })
}

/// Checks task-file `text` as if read from `path` (used for messages and relative paths).
pub fn parse(text: &str, path: &Path) -> Result<Task, TaskError> {
    parse_given(text, path, &Given::default())
}

/// [`parse`] with values for the file's parameters.
pub fn parse_given(text: &str, path: &Path, given: &Given) -> Result<Task, TaskError> {
    let (mut task, params) = parse_document(text, path, Some(given), validate)?;
    task.source = path.to_owned();
    task.params = params;
    Ok(task)
}

/// Reads the policy file at `path` (`[[policy]]` entries, as in a task file), imposed on every
/// task from `origin`.
pub fn load_policies(path: &Path, origin: Origin) -> Result<Vec<PluginSpec>, TaskError> {
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (policies, _) = parse_document(&text, path, None, |raw: RawPolicyFile, folder| {
        policy_file(raw, folder, &origin)
    })?;
    Ok(policies)
}

/// Parses TOML `text` into `R`, then turns it into `T` with `check`; every problem (syntax,
/// unknown key, wrong type, what `check` finds) is located by line, column and key. With
/// `given`, the file's parameters are substituted first (a problem with a value that came from
/// one says which), and their values come back beside `T`.
pub(super) fn parse_document<R: DeserializeOwned, T>(
    text: &str,
    path: &Path,
    given: Option<&Given>,
    check: impl FnOnce(R, &Path) -> Result<T, Found>,
) -> Result<(T, Vec<Param>), TaskError> {
    let invalid = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| (p.line, p.column));
        TaskError::Invalid {
            file: path.to_owned(),
            problems,
        }
    };
    let mut doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        invalid(vec![Problem {
            line,
            column,
            key: String::new(),
            message: first_line(e.message()),
        }])
    })?;
    let substituted = match given {
        Some(given) => params::substitute(doc.get_mut(), given),
        None => Ok(Substituted::default()),
    };
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

    let substituted = match substituted {
        Ok(substituted) => substituted,
        Err(found) => {
            let problems = found.into_iter().map(|(k, m)| locate(&k, 0, m)).collect();
            return Err(invalid(problems));
        }
    };
    // A problem with a value a parameter filled in says which, and from where.
    let locate = |key: &KeyPath, fallback: usize, message: String| {
        let note = substituted.note(key).unwrap_or_default();
        locate(key, fallback, substituted.redact(format!("{message}{note}")))
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
        Ok(checked) if problems.is_empty() => Ok((checked, substituted.params)),
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
