//! @SUMMARY@
//!
//! The logic is plain Rust on `serde_json` values, tested natively with `cargo test`; the
//! `component` module binds it to kpo's contract when built for wasm32.

use serde_json::{Map, Value};

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "@WORLD@", path: "wit" });

    use exports::kpo::plugin::mutator::Guest;
    use exports::kpo::plugin::settings::Guest as Settings;
    use kpo::plugin::types::{Context, Mutated};

    struct Plugin;

    impl Guest for Plugin {
        fn mutate(pod: String, context: Context) -> Result<Mutated, String> {
            let pod: serde_json::Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
            let labels = super::labels(&serde_json::from_str(&context.config).map_err(|e| e.to_string())?)?;
            let (pod, warnings) = super::mutate(pod, &labels)?;
            Ok(Mutated { pod: pod.to_string(), warnings })
        }
    }

    impl Settings for Plugin {
        // Called when kpo loads the plugin: `err` stops `kpo validate` and `kpo run` before any pod.
        fn validate_config(config: String) -> Result<(), String> {
            super::labels(&serde_json::from_str(&config).map_err(|e| e.to_string())?).map(|_| ())
        }
    }

    export!(Plugin);
}

/// The labels the config asks for: `{"labels": {"team": "data"}}`.
pub fn labels(config: &Value) -> Result<Map<String, Value>, String> {
    let config = config.as_object().ok_or("the config must be a table")?;
    if let Some(key) = config.keys().find(|k| *k != "labels") {
        return Err(format!("unknown key `{key}` (known: labels)"));
    }
    let labels = match config.get("labels") {
        None => return Ok(Map::new()),
        Some(labels) => labels.as_object().ok_or("`labels` must be a table")?,
    };
    match labels.iter().find(|(_, v)| !v.is_string()) {
        Some((k, _)) => Err(format!("label `{k}` must be a string")),
        None => Ok(labels.clone()),
    }
}

/// Adds each label the pod lacks; one it has with another value stays, with a warning.
pub fn mutate(mut pod: Value, labels: &Map<String, Value>) -> Result<(Value, Vec<String>), String> {
    let metadata = pod
        .as_object_mut()
        .ok_or("the pod is not an object")?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let have = metadata
        .as_object_mut()
        .ok_or("metadata is not an object")?
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("metadata.labels is not an object")?;
    let mut warnings = Vec::new();
    for (key, value) in labels {
        match have.get(key) {
            None => {
                have.insert(key.clone(), value.clone());
            }
            Some(old) if old != value => {
                warnings.push(format!("label {key} stays {old} (the config asks for {value})"));
            }
            Some(_) => {}
        }
    }
    Ok((pod, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds_what_is_missing_and_keeps_what_is_set() {
        let pod = json!({"metadata": {"labels": {"team": "ml"}}});
        let wanted = labels(&json!({"labels": {"team": "data", "tier": "batch"}})).unwrap();
        let (pod, warnings) = mutate(pod, &wanted).unwrap();
        assert_eq!(pod["metadata"]["labels"], json!({"team": "ml", "tier": "batch"}));
        assert_eq!(warnings, ["label team stays \"ml\" (the config asks for \"data\")"]);
    }

    #[test]
    fn a_pod_without_labels_gets_them() {
        let (pod, _) = mutate(json!({}), &labels(&json!({"labels": {"tier": "batch"}})).unwrap()).unwrap();
        assert_eq!(pod["metadata"]["labels"], json!({"tier": "batch"}));
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(labels(&json!({"lables": {}})).unwrap_err(), "unknown key `lables` (known: labels)");
        assert_eq!(labels(&json!({"labels": {"n": 1}})).unwrap_err(), "label `n` must be a string");
    }
}
