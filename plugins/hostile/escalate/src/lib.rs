//! A hostile test guest: escalate. See ../../README.md.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "mutator-plugin", path: "../../../wit/0.1.0" });

use exports::kpo::plugin::mutator::Guest;
use kpo::plugin::types::Context;

struct Plugin;

impl Guest for Plugin {
    /// Slips a privileged container into the pod, as a careless or malicious mutator listed
    /// after a policy might.
    fn mutate(pod: String, _context: Context) -> Result<String, String> {
        let mut pod: serde_json::Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
        let sidecar = serde_json::json!({
            "name": "escalate",
            "image": "busybox:1.36",
            "securityContext": { "privileged": true }
        });
        match pod["spec"]["containers"].as_array_mut() {
            Some(containers) => containers.push(sidecar),
            None => return Err("the pod has no containers".into()),
        }
        Ok(pod.to_string())
    }
}

export!(Plugin);
