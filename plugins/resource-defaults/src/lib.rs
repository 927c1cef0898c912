//! Fills in resource requests and limits a container does not set, from its config; values the
//! task or template already set are left alone.
//!
//! ```toml
//! [[mutate]]
//! path = "plugins/resource_defaults.wasm"
//! config = { requests = { cpu = "100m", memory = "128Mi" }, limits = { memory = "512Mi" } }
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
            fill(pod, &config).map(|p| p.to_string())
        }
    }

    export!(Plugin);
}

/// Adds each missing `config.requests.*` / `config.limits.*` to every container.
pub fn fill(mut pod: Value, config: &Value) -> Result<Value, String> {
    let spec = pod.get_mut("spec").and_then(Value::as_object_mut).ok_or("the pod has no spec")?;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for container in containers {
            let container = container.as_object_mut().ok_or("a container is not an object")?;
            let resources = container.entry("resources").or_insert_with(|| Value::Object(Map::new()));
            for kind in ["requests", "limits"] {
                let Some(defaults) = config.get(kind).and_then(Value::as_object) else { continue };
                let target = resources
                    .as_object_mut()
                    .ok_or("resources is not an object")?
                    .entry(kind)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .ok_or(format!("resources.{kind} is not an object"))?;
                for (name, quantity) in defaults {
                    target.entry(name.clone()).or_insert_with(|| quantity.clone());
                }
            }
        }
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_only_what_is_missing() {
        let pod = json!({"spec": {"containers": [
            {"name": "base", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "side"}
        ]}});
        let config = json!({"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}});
        let out = fill(pod, &config).unwrap();
        assert_eq!(out["spec"]["containers"][0]["resources"], json!({"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}}));
        assert_eq!(out["spec"]["containers"][1]["resources"]["limits"]["memory"], "256Mi");
    }
}
