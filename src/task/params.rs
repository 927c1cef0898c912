//! Parameters: values a task file leaves open (`[params]`), given on the command line (`--set
//! NAME=VALUE`, `--set-file NAME=PATH`) or by a `[matrix]`, and written `((name))` in any string
//! of the file. The syntax collides with neither the shell (`$X`, `${X}`), Kubernetes' `$(VAR)`
//! nor Jinja's `{{ }}` (a DAG may template the command line that calls kpo); `\((` is a literal
//! `((`. A file with neither `[params]` nor `[matrix]` is read exactly as before: nothing in it is
//! substituted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use super::locate::KeyPath;

/// What a secret parameter's value is shown as.
pub const REDACTED: &str = "[redacted]";

/// Where a parameter's value came from, for a message about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `--set NAME=VALUE`.
    Set,
    /// `--set-file NAME=PATH`.
    SetFile(PathBuf),
    /// A row of the task file's `[matrix]`.
    Matrix,
    /// The run's journal, as an earlier kpo recorded it (`kpo attach`).
    Journal,
}

impl Source {
    fn describe(&self, name: &str) -> String {
        match self {
            Source::Set => format!("--set {name}"),
            Source::SetFile(path) => format!("--set-file {name}={}", path.display()),
            Source::Matrix => format!("the matrix's {name}"),
            Source::Journal => format!("the journal's {name}"),
        }
    }
}

/// Values given to a task file's parameters, by name (a later one of a name wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given(pub BTreeMap<String, (String, Source)>);

impl Given {
    /// `NAME=VALUE` as `--set` takes it.
    pub fn set(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = split(arg, "--set")?;
        self.0.insert(name, (value.to_owned(), Source::Set));
        Ok(())
    }

    /// `NAME=PATH` as `--set-file` takes it: the file's text (UTF-8, as it is) is the value.
    pub fn set_file(&mut self, arg: &str) -> Result<(), String> {
        let (name, path) = split(arg, "--set-file")?;
        let value = std::fs::read_to_string(path)
            .map_err(|e| format!("--set-file {name}: cannot read {path}: {e}"))?;
        self.0.insert(name, (value, Source::SetFile(path.into())));
        Ok(())
    }

    /// These values with `more` added (theirs win).
    pub fn with(&self, more: impl IntoIterator<Item = (String, String)>, source: Source) -> Given {
        let mut given = self.clone();
        for (name, value) in more {
            given.0.insert(name, (value, source.clone()));
        }
        given
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values of these parameters only.
    pub fn only(&self, names: &[String]) -> Given {
        Given(
            self.0
                .iter()
                .filter(|(n, _)| names.contains(n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
    }

    /// The values a run's journal recorded.
    pub fn recorded(params: &[Param]) -> Given {
        Given(
            params
                .iter()
                .map(|p| (p.name.clone(), (p.value.clone(), Source::Journal)))
                .collect(),
        )
    }
}

fn split<'a>(arg: &'a str, flag: &str) -> Result<(String, &'a str), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{flag} {arg}: expected NAME=VALUE"))?;
    if !is_name(name) {
        return Err(format!(
            "{flag} {arg}: `{name}` is no parameter name (letters, digits and _, not first a digit)"
        ));
    }
    Ok((name.to_owned(), value))
}

/// A parameter name: what `((name))` may hold, and an environment variable's name alike.
pub fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A parameter of a task and the value it had: listed in the run report (a secret one
/// redacted), and kept in the journal so that a later kpo builds the same pod again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

impl Param {
    /// The value as kpo may show it.
    pub fn shown(&self) -> &str {
        if self.secret { REDACTED } else { &self.value }
    }
}

/// Problems, by where they are in the file.
pub(super) type Found = Vec<(KeyPath, String)>;

/// What substitution did: every parameter's value, and which strings used which parameters
/// (for a message about a field a value made invalid).
#[derive(Debug, Default)]
pub(super) struct Substituted {
    pub params: Vec<Param>,
    pub used: Vec<(KeyPath, Vec<String>)>,
    given: Given,
}

impl Substituted {
    /// `message` with the value of every secret parameter in it replaced by [`REDACTED`].
    pub fn redact(&self, message: String) -> String {
        self.params
            .iter()
            .filter(|p| p.secret && !p.value.is_empty())
            .fold(message, |m, p| m.replace(&p.value, REDACTED))
    }

    /// What to add to a message about `key`: the parameters its value came from.
    pub fn note(&self, key: &KeyPath) -> Option<String> {
        let (_, names) = self
            .used
            .iter()
            .filter(|(at, _)| key.0.starts_with(&at.0) || at.0.starts_with(&key.0))
            .max_by_key(|(at, _)| at.0.len())?;
        let said: Vec<String> = names
            .iter()
            .map(|name| {
                let param = self.params.iter().find(|p| &p.name == name);
                let value = param.map_or("", Param::shown);
                match self.given.0.get(name) {
                    Some((_, source)) => format!("(({name})) = {value:?} from {}", source.describe(name)),
                    None => format!("(({name})) = {value:?}, its default"),
                }
            })
            .collect();
        Some(format!(" (after {})", said.join(", ")))
    }
}

/// The names of the parameters `doc` declares (`[params]`) or takes from its `[matrix]`.
pub(super) fn declared_names(doc: &DeTable) -> Vec<String> {
    ["params", "matrix"]
        .iter()
        .filter_map(|t| match doc.get(*t).map(|v| v.get_ref()) {
            Some(DeValue::Table(table)) => Some(table.keys().map(|k| k.get_ref().to_string())),
            _ => None,
        })
        .flatten()
        .filter(|k| k != "include" && k != "exclude")
        .collect()
}

/// Whether the file uses parameters at all: a `[params]` or `[matrix]` table.
pub(super) fn declared(doc: &DeTable) -> bool {
    doc.contains_key("params") || doc.contains_key("matrix")
}

/// Substitutes the `given` values into every string of `doc` but those of `[params]` and
/// `[matrix]` themselves; every value is resolved first (given, else its default), so a missing
/// one, an unknown one or an undeclared `--set` is reported, located, before anything else.
pub(super) fn substitute(doc: &mut DeTable, given: &Given) -> Result<Substituted, Found> {
    let params_key = KeyPath::default().key("params");
    if !declared(doc) {
        return match given.0.keys().next() {
            None => Ok(Substituted::default()),
            Some(name) => Err(vec![(
                KeyPath::default(),
                format!(
                    "{}: the task file has no [params] table: declare the parameter there to set it",
                    given.0[name].1.describe(name)
                ),
            )]),
        };
    }
    let mut found = Found::new();
    let declarations = declarations(doc, &mut found);
    let matrix_names: Vec<String> = match doc.get("matrix").map(|m| m.get_ref()) {
        Some(DeValue::Table(t)) => t
            .keys()
            .map(|k| k.get_ref().to_string())
            .filter(|k| k != "include" && k != "exclude")
            .collect(),
        _ => Vec::new(),
    };
    let known: Vec<&str> = declarations
        .iter()
        .map(|d| d.name.as_str())
        .chain(matrix_names.iter().map(String::as_str))
        .collect();
    for (name, (_, source)) in &given.0 {
        if !known.contains(&name.as_str()) {
            found.push((
                params_key.clone(),
                format!(
                    "{}: no parameter `{name}` is declared (declared: {})",
                    source.describe(name),
                    names(&known)
                ),
            ));
        }
    }
    let mut params = Vec::new();
    for d in &declarations {
        match given.0.get(&d.name).map(|(v, _)| v).or(d.default.as_ref()) {
            Some(value) => params.push(Param {
                name: d.name.clone(),
                value: value.clone(),
                secret: d.secret,
            }),
            None => found.push((
                params_key.clone().key(&d.name),
                format!(
                    "parameter `{}` has no value: give it one with --set {}=VALUE (or a `default`)",
                    d.name, d.name
                ),
            )),
        }
    }
    // A matrix's values come with each of its members; `render` of the whole file has none yet.
    for name in &matrix_names {
        if let Some((value, _)) = given.0.get(name) {
            params.push(Param {
                name: name.clone(),
                value: value.clone(),
                secret: false,
            });
        }
    }
    if !found.is_empty() {
        return Err(found);
    }
    let values: BTreeMap<&str, &str> = params
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let mut used = Vec::new();
    for (key, value) in doc.iter_mut() {
        let key = key.get_ref().to_string();
        if key == "params" || key == "matrix" {
            continue;
        }
        walk(
            value.get_mut(),
            KeyPath::default().key(key),
            &values,
            &known,
            &mut used,
            &mut found,
        );
    }
    if !found.is_empty() {
        return Err(found);
    }
    Ok(Substituted {
        params,
        used,
        given: given.clone(),
    })
}

/// One `[params]` entry.
struct Declaration {
    name: String,
    default: Option<String>,
    secret: bool,
}

/// The `[params]` entries: `name = "default"`, or `name = { default = "...", secret = true }`
/// (`{}`: required, no default).
fn declarations(doc: &DeTable, found: &mut Found) -> Vec<Declaration> {
    let at = KeyPath::default().key("params");
    let table = match doc.get("params").map(|p| p.get_ref()) {
        None => return Vec::new(),
        Some(DeValue::Table(t)) => t,
        Some(_) => {
            found.push((
                at,
                "must be a table of parameters: `name = \"default\"` or `name = {}`".into(),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (name, value) in table {
        let name = name.get_ref().to_string();
        let here = at.clone().key(&name);
        if !is_name(&name) {
            found.push((
                here,
                "a parameter's name is letters, digits and _, not first a digit".into(),
            ));
            continue;
        }
        let mut declaration = Declaration {
            name,
            default: None,
            secret: false,
        };
        match value.get_ref() {
            DeValue::String(s) => declaration.default = Some(s.to_string()),
            DeValue::Table(fields) => {
                for (field, v) in fields {
                    match (field.get_ref().as_ref(), v.get_ref()) {
                        ("default", DeValue::String(s)) => declaration.default = Some(s.to_string()),
                        ("secret", DeValue::Boolean(b)) => declaration.secret = *b,
                        ("description", DeValue::String(_)) => {}
                        (other, _) => found.push((
                            here.clone().key(other),
                            "unknown or mistyped: a parameter takes `default` (a string), `secret` (true or false) and `description`".into(),
                        )),
                    }
                }
            }
            _ => found.push((
                here,
                "must be a string (its default) or a table (`{ default = \"...\", secret = true }`)".into(),
            )),
        }
        out.push(declaration);
    }
    out
}

fn names(known: &[&str]) -> String {
    if known.is_empty() {
        "none".into()
    } else {
        known.join(", ")
    }
}

fn walk(
    value: &mut DeValue<'_>,
    at: KeyPath,
    values: &BTreeMap<&str, &str>,
    known: &[&str],
    used: &mut Vec<(KeyPath, Vec<String>)>,
    found: &mut Found,
) {
    match value {
        DeValue::String(s) => match fill(s, values) {
            Ok(None) => {}
            Ok(Some((text, names))) => {
                *s = text.into();
                used.push((at, names));
            }
            Err(name) => found.push((
                at,
                format!(
                    "unknown parameter `(({name}))` (declared: {}); `\\((` writes a literal `((`",
                    self::names(known)
                ),
            )),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item.get_mut(), at.clone().index(i), values, known, used, found);
            }
        }
        DeValue::Table(table) => {
            for (key, item) in table.iter_mut() {
                let key = key.get_ref().to_string();
                walk(item.get_mut(), at.clone().key(key), values, known, used, found);
            }
        }
        _ => {}
    }
}

/// `text` with its `((name))` references filled in and `\((` made `((`: `None` if it has
/// neither, else the text and the names it used; `Err(name)` for a name without a value.
fn fill(text: &str, values: &BTreeMap<&str, &str>) -> Result<Option<(String, Vec<String>)>, String> {
    if !text.contains("((") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("((") {
        if rest[..at].ends_with('\\') {
            out.push_str(&rest[..at - 1]);
            out.push_str("((");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let reference = after
            .find("))")
            .map(|end| &after[..end])
            .filter(|name| is_name(name));
        match reference {
            Some(name) => {
                let value = values.get(name).ok_or_else(|| name.to_owned())?;
                out.push_str(value);
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
                rest = &after[name.len() + 2..];
            }
            // `((` that opens no reference (`$((1 + 2))` in a shell line) stays as it is.
            None => {
                out.push_str("((");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(Some((out, names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(text: &str) -> Result<Option<(String, Vec<String>)>, String> {
        let values = BTreeMap::from([("date", "2026-12-03"), ("region", "eu")]);
        fill(text, &values)
    }

    #[test]
    fn references_are_filled_and_escapes_kept_literal() {
        assert_eq!(filled("plain $(VAR) ${X} {{ ds }}"), Ok(None));
        let (text, names) = filled("run ((date)) in ((region)) on ((date))").unwrap().unwrap();
        assert_eq!(text, "run 2026-12-03 in eu on 2026-12-03");
        assert_eq!(names, ["date", "region"]);
        let (text, names) = filled(r"echo \((date)) $((1 + 2))").unwrap().unwrap();
        assert_eq!(text, "echo ((date)) $((1 + 2))");
        assert!(names.is_empty());
        assert_eq!(filled("((dte))"), Err("dte".into()));
    }

    #[test]
    fn a_set_is_a_name_and_a_value() {
        let mut given = Given::default();
        given.set("date=2026-12-03=x").unwrap();
        assert_eq!(given.0["date"].0, "2026-12-03=x");
        assert!(given.set("2date=x").unwrap_err().contains("no parameter name"));
        assert!(given.set("date").unwrap_err().contains("expected NAME=VALUE"));
    }
}
