//! @SUMMARY@
//!
//! Written on kpo's Rust SDK (`kpo-plugin/`, copied into this project): the pod arrives typed
//! (k8s-openapi) with its JSON kept beside it, the config is read into `Config` — a misspelt key
//! refused when kpo loads the plugin, before any pod — and `kpo_plugin::mutator!` exports the
//! component. The logic is plain Rust, tested natively with `cargo test`.

use std::collections::BTreeMap;

use kpo_plugin::{Context, Mutator, Plugin, Pod};

/// The plugin's config: `{"labels": {"team": "data"}}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// The labels every pod should have.
    pub labels: BTreeMap<String, String>,
}

pub struct Labels;

impl Plugin for Labels {
    type Config = Config;
}

impl Mutator for Labels {
    /// Adds each label the pod lacks; one it has with another value stays, with a warning.
    fn mutate(pod: &mut Pod, context: &Context<Config>) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for (key, value) in &context.config.labels {
            match pod.labels().get(key).cloned() {
                None => pod.set_label(key, value),
                Some(old) if &old != value => {
                    warnings.push(format!("label {key} stays {old:?} (the config asks for {value:?})"));
                }
                Some(_) => {}
            }
        }
        Ok(warnings)
    }
}

kpo_plugin::mutator!(Labels);

#[cfg(test)]
mod tests {
    use super::*;
    use kpo_plugin::parse_config;
    use serde_json::json;

    fn pod(metadata: serde_json::Value) -> Pod {
        Pod::parse(&json!({"metadata": metadata, "spec": {"containers": []}}).to_string()).unwrap()
    }

    fn context(config: &str) -> Context<Config> {
        Context::with_config(parse_config(config).unwrap())
    }

    #[test]
    fn adds_what_is_missing_and_keeps_what_is_set() {
        let mut pod = pod(json!({"labels": {"team": "ml"}}));
        let warnings = Labels::mutate(&mut pod, &context(r#"{"labels": {"team": "data", "tier": "batch"}}"#)).unwrap();
        assert_eq!(pod.to_value()["metadata"]["labels"], json!({"team": "ml", "tier": "batch"}));
        assert_eq!(warnings, ["label team stays \"ml\" (the config asks for \"data\")"]);
    }

    #[test]
    fn a_pod_without_labels_gets_them() {
        let mut pod = pod(json!({}));
        Labels::mutate(&mut pod, &context(r#"{"labels": {"tier": "batch"}}"#)).unwrap();
        assert_eq!(pod.to_value()["metadata"]["labels"], json!({"tier": "batch"}));
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(parse_config::<Config>(r#"{"lables": {}}"#).unwrap_err(), "unknown config key `lables`");
        let e = parse_config::<Config>(r#"{"labels": {"n": 1}}"#).unwrap_err();
        assert!(e.starts_with("config key `labels.n`: invalid type: integer `1`"), "{e}");
    }
}
