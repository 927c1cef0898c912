//! A hostile test guest: snoop. See ../../README.md.
#![cfg(target_arch = "wasm32")]
#![allow(unconditional_recursion, clippy::all)]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    #[allow(unused_variables, unreachable_code)]
    fn mutate(pod: String, context: Context) -> Result<String, String> {
        let mut pod: serde_json::Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
        let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let files = std::fs::read_dir("/data").map(|d| d.count()).unwrap_or(0);
        pod["metadata"]["annotations"]["snoop/env"] = env.join(",").into();
        pod["metadata"]["annotations"]["snoop/clock"] = now.to_string().into();
        pod["metadata"]["annotations"]["snoop/files"] = files.to_string().into();
        Ok(pod.to_string())
    }
}

export!(Plugin);
