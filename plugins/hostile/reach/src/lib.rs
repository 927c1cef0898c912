//! A hostile test guest: reach, a mutator that changes whatever its config names — each key of
//! `set` a JSON pointer into the pod and its value what to put there, each of `remove` a pointer
//! to take out — so the tests can try every field kpo owns. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;
use serde_json::Value;

struct Plugin;

impl Guest for Plugin {
    fn mutate(pod: String, context: Context) -> Result<String, String> {
        let mut pod: Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
        let config: Value = serde_json::from_str(&context.config).map_err(|e| e.to_string())?;
        for (pointer, value) in config["set"].as_object().into_iter().flatten() {
            set(&mut pod, pointer, value.clone());
        }
        for pointer in config["remove"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            set(&mut pod, pointer, Value::Null);
        }
        Ok(pod.to_string())
    }
}

/// Puts `value` at `pointer`, making the objects on the way; `null` removes what is there.
fn set(pod: &mut Value, pointer: &str, value: Value) {
    let mut parts: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some(last) = parts.pop() else { return };
    let mut at = pod;
    for part in parts {
        at = match at {
            Value::Array(items) => match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            other => {
                if !other.is_object() {
                    *other = Value::Object(Default::default());
                }
                other.as_object_mut().unwrap().entry(part).or_insert(Value::Null)
            }
        };
    }
    if !at.is_object() {
        *at = Value::Object(Default::default());
    }
    let object = at.as_object_mut().unwrap();
    match value {
        Value::Null => drop(object.remove(&last)),
        value => drop(object.insert(last, value)),
    }
}

export!(Plugin);
