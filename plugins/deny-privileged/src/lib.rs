//! A policy: refuses pods that would run with more power than a batch task needs —
//! privileged containers, `hostPath` volumes, the host's network, PID or IPC namespace, or
//! running as root (unless the config allows it). It never changes the pod.
//!
//! ```toml
//! [[mutate]]
//! path = "plugins/deny_privileged.wasm"
//! config = { allow_root = false }
//! ```

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "mutator-plugin", path: "../../wit" });

    use super::*;
    use exports::kpo::plugin::mutator::Guest;
    use kpo::plugin::types::Context;

    struct Plugin;

    impl Guest for Plugin {
        fn mutate(pod: String, context: Context) -> Result<String, String> {
            let parsed: Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
            let config: Value = serde_json::from_str(&context.config).map_err(|e| format!("config: {e}"))?;
            let allow_root = config.get("allow_root").and_then(Value::as_bool).unwrap_or(false);
            let problems = violations(&parsed, allow_root);
            if problems.is_empty() { Ok(pod) } else { Err(problems.join("; ")) }
        }
    }

    export!(Plugin);
}

/// Every reason to refuse the pod, empty if it is acceptable.
pub fn violations(pod: &Value, allow_root: bool) -> Vec<String> {
    let mut found = Vec::new();
    let spec = &pod["spec"];
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[ns] == Value::Bool(true) {
            found.push(format!("{ns} is not allowed"));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if v.get("hostPath").is_some() {
            found.push(format!("volume {} uses hostPath", v["name"].as_str().unwrap_or("?")));
        }
    }
    let pod_user = spec["securityContext"]["runAsUser"].as_i64();
    let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool();
    let containers = ["initContainers", "containers"].into_iter().flat_map(|l| spec[l].as_array().into_iter().flatten());
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"] == Value::Bool(true) {
            found.push(format!("container {name} is privileged"));
        }
        if sc["allowPrivilegeEscalation"] == Value::Bool(true) {
            found.push(format!("container {name} allows privilege escalation"));
        }
        let user = sc["runAsUser"].as_i64().or(pod_user);
        let non_root = sc["runAsNonRoot"].as_bool().or(pod_non_root).unwrap_or(false);
        let root = user == Some(0) || (user.is_none() && !non_root);
        if root && !allow_root {
            found.push(format!("container {name} may run as root (set runAsNonRoot or a non-zero runAsUser)"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_locked_down_pod_passes() {
        let pod = json!({"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "base"}]}});
        assert!(violations(&pod, false).is_empty());
    }

    #[test]
    fn each_escalation_is_named() {
        let pod = json!({"spec": {"hostNetwork": true, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "base", "securityContext": {"privileged": true, "runAsUser": 0}}]}});
        let found = violations(&pod, false);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|f| f == "container base is privileged"));
        assert_eq!(violations(&pod, true).len(), 3);
    }
}
