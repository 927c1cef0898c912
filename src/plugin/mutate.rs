//! Running the mutators in order, each on the previous one's pod, and checking what each did.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::{Context, Loaded, MAX_OUTPUT, PluginError, PluginHost};
use crate::vocabulary::{Mutation, Warning};

/// The pod after every mutator, what each changed, and what they warned of.
#[derive(Debug, Clone)]
pub struct Mutated {
    pub pod: Pod,
    pub mutations: Vec<Mutation>,
    pub warnings: Vec<Warning>,
}

/// Applies `plugins` in order to `pod`. Stops at the first refusal, failure or forbidden change,
/// so a bad plugin never yields a half-changed pod to submit.
pub async fn mutate(
    host: &PluginHost,
    plugins: &[Loaded],
    mut pod: Pod,
    ctx: &Context,
) -> Result<Mutated, PluginError> {
    let mut mutations = Vec::new();
    let mut warnings = Vec::new();
    for plugin in plugins {
        let name = plugin.spec.name.clone();
        let invalid = |e: serde_json::Error| PluginError::InvalidOutput {
            plugin: name.clone(),
            message: e.to_string(),
        };
        // Sent as k8s-openapi writes it (fields in its order): an SDK on the same version of it
        // can tell that it lost nothing by writing what it read (see kpo-plugin's `Pod`).
        let sent = serde_json::to_string(&pod).map_err(invalid)?;
        let before = serde_json::to_value(&pod).map_err(invalid)?;
        let out = match plugin.call_mutate(host, &sent, ctx).await? {
            Ok(out) => out,
            Err(reason) => return Err(PluginError::Refused { plugin: name, reason }),
        };
        let (next, patch) = check(&name, &before, &out.pod, plugin.spec.writable.as_deref())?;
        warnings.extend(super::warnings(&name, out.warnings)?);
        tracing::debug!(plugin = %name, changes = patch.0.len(), "mutator applied");
        mutations.push(Mutation { plugin: name, patch });
        pod = next;
    }
    Ok(Mutated {
        pod,
        mutations,
        warnings,
    })
}

/// Checks what mutator `plugin` returned for the pod `before`: a valid Pod of at most
/// [`MAX_OUTPUT`] bytes, kpo's own fields untouched (see [`crate::owned`]), changes only under
/// `writable`. Returns the
/// new pod and its patch against `before`.
pub fn check(
    plugin: &str,
    before: &Value,
    out: &str,
    writable: Option<&[String]>,
) -> Result<(Pod, json_patch::Patch), PluginError> {
    let invalid = |message: String| PluginError::InvalidOutput {
        plugin: plugin.to_owned(),
        message,
    };
    if out.len() > MAX_OUTPUT {
        return Err(invalid(format!(
            "{} bytes, more than the limit of {MAX_OUTPUT}",
            out.len()
        )));
    }
    // Read straight into the Pod; only a failure is read again, to say which of the two it was.
    let next: Pod = serde_json::from_str(out).map_err(|e| {
        invalid(match serde_json::from_str::<serde::de::IgnoredAny>(out) {
            Err(e) => format!("not JSON: {e}"),
            Ok(_) => format!("not a valid Pod: {e}"),
        })
    })?;
    let after = serde_json::to_value(&next).map_err(|e| invalid(e.to_string()))?;
    if let Some(touched) = crate::owned::touched(before, &after) {
        return Err(PluginError::Forbidden {
            plugin: plugin.to_owned(),
            path: touched.field,
            why: format!(" ({})", touched.why),
        });
    }
    let patch = json_patch::diff(before, &after);
    if let Some(allowed) = writable {
        for op in &patch.0 {
            let path = op.path().to_string();
            if !allowed.iter().any(|a| under(&path, a)) {
                let why = format!(" (the task file lets it change only {})", allowed.join(", "));
                return Err(PluginError::Forbidden {
                    plugin: plugin.to_owned(),
                    path,
                    why,
                });
            }
        }
    }
    Ok((next, patch))
}

/// Whether JSON pointer `path` is `prefix` or inside it.
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn pointer_prefixes_respect_segments() {
        assert!(under("/metadata/labels/team", "/metadata/labels"));
        assert!(under("/metadata/labels", "/metadata/labels/"));
        assert!(!under("/metadata/labelsx", "/metadata/labels"));
        assert!(!under("/spec", "/metadata"));
    }
}
