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
    Ok(Inspection {
        roles,
        contract: loaded.describe(),
        exports: ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
        imports: ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
    })
}
