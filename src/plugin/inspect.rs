//! What a component file is: which kpo worlds it implements and what it imports.

use std::path::Path;

use super::{PluginError, PluginHost, PluginRole};
use crate::task::PluginSpec;

/// A component's interface, for `kpo plugin inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `mutator`, `policy`, `interpreter`: what it can be used as.
    pub roles: Vec<&'static str>,
    /// The kpo interfaces it exports, with their contract versions (`mutator@0.1.0`).
    pub contract: String,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// What of its imports kpo's sandbox denies, always or unless the task grants it.
    pub denied: Vec<&'static str>,
}

/// What the sandbox does to a WASI interface (by import-name prefix), as an author should know
/// before relying on it.
const DENIED: [(&str, &str); 5] = [
    (
        "wasi:sockets/",
        "wasi:sockets: always denied (no network: every socket call fails)",
    ),
    (
        "wasi:clocks/wall-clock",
        "wasi:clocks/wall-clock: the epoch, unless the task grants `clock`",
    ),
    (
        "wasi:clocks/monotonic-clock",
        "wasi:clocks/monotonic-clock: stands still, unless the task grants `clock`",
    ),
    (
        "wasi:filesystem/",
        "wasi:filesystem: no folder, unless the task grants `dirs` (read-only)",
    ),
    (
        "wasi:cli/environment",
        "wasi:cli/environment: no variable, unless the task grants `env`",
    ),
];

/// What of `imports` the sandbox denies, once per interface.
fn denied(imports: &[String]) -> Vec<&'static str> {
    DENIED
        .iter()
        .filter(|(prefix, _)| imports.iter().any(|i| i.starts_with(prefix)))
        .map(|(_, what)| *what)
        .collect()
}

/// What the component at `path` is; with a `config`, whether it accepts that config too (a
/// rejection is the error), else nothing is asked of it.
///
/// # Errors
/// The file cannot be read or is no component; it rejects `config`.
pub async fn inspect(
    host: &PluginHost,
    path: &Path,
    config: Option<serde_json::Value>,
) -> Result<Inspection, PluginError> {
    let loaded = match config {
        Some(config) => {
            host.load(&PluginSpec {
                config,
                ..PluginSpec::at(path)
            })
            .await?
        }
        None => host.open(&PluginSpec::at(path)).await?,
    };
    let engine = &host.engine.engine;
    let ty = loaded.pre.component().component_type();
    let roles = [PluginRole::Mutator, PluginRole::Policy, PluginRole::Interpreter]
        .into_iter()
        .filter(|r| loaded.serves(*r))
        .map(PluginRole::name)
        .collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    Ok(Inspection {
        roles,
        contract: loaded.describe(),
        exports: ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
        denied: denied(&imports),
        imports,
    })
}
