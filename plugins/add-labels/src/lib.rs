//! Adds the labels and annotations of its config to the pod; existing keys are overwritten.
//!
//! ```toml
//! [[mutate]]
//! path = "plugins/add_labels.wasm"
//! config = { labels = { cost-center = "ml" }, annotations = { "example.com/owner" = "ops" } }
//! ```

use serde_json::{Map, Value};

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "mutator-plugin", path: "../../wit/0.1.0" });

    use super::*;
    use exports::kpo::plugin::mutator::Guest;
    use kpo::plugin::types::Context;

    struct Plugin;

    impl Guest for Plugin {
        fn mutate(pod: String, context: Context) -> Result<String, String> {
            let pod: Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
            let config: Value = serde_json::from_str(&context.config).map_err(|e| format!("config: {e}"))?;
            add(pod, &config).map(|p| p.to_string())
        }
    }

    export!(Plugin);
}

/// Merges `config.labels` and `config.annotations` into the pod's metadata.
pub fn add(mut pod: Value, config: &Value) -> Result<Value, String> {
    for field in ["labels", "annotations"] {
        let Some(extra) = config.get(field) else { continue };
        let extra = extra.as_object().ok_or(format!("config.{field} must be a table"))?;
        let metadata = pod
            .as_object_mut()
            .ok_or("the pod is not an object")?
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let target = metadata
            .as_object_mut()
            .ok_or("metadata is not an object")?
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        let target = target.as_object_mut().ok_or(format!("metadata.{field} is not an object"))?;
        for (k, v) in extra {
            let v = v.as_str().ok_or(format!("config.{field}.{k} must be a string"))?;
            target.insert(k.clone(), Value::String(v.to_owned()));
        }
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds_and_overwrites() {
        let pod = json!({"metadata": {"labels": {"team": "a"}}});
        let out = add(pod, &json!({"labels": {"team": "b", "tier": "batch"}, "annotations": {"x": "y"}})).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"team": "b", "tier": "batch"}));
        assert_eq!(out["metadata"]["annotations"], json!({"x": "y"}));
    }

    #[test]
    fn rejects_non_string_values() {
        assert!(add(json!({}), &json!({"labels": {"n": 1}})).is_err());
    }
}
