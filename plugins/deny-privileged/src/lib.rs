//! A validating policy (contract 0.2.0): refuses pods that would run with more power than a
//! batch task needs — privileged containers, privilege escalation, `hostPath` volumes, the
//! host's network, PID or IPC namespace, or running as root (unless the config allows it). As a
//! policy it sees the final pod, after every mutator, so no mutator can slip one of these in.
//! Its config is checked when kpo loads it.
//!
//! ```toml
//! [[policy]]
//! path = "plugins/deny_privileged.wasm"
//! config = { allow_root = false }
//! mode = "enforce"   # or "monitor": report what it would refuse, let the pod go
//! ```

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "configured-validator-plugin", path: "../../wit" });

    use super::*;
    use exports::kpo::plugin::settings::Guest as Settings;
    use exports::kpo::plugin::validator::Guest as Validator;
    use kpo::plugin::types::{Admission, Context};

    struct Plugin;

    impl Validator for Plugin {
        fn validate(pod: String, context: Context) -> Admission {
            let (Ok(pod), Ok(config)) = (serde_json::from_str(&pod), serde_json::from_str(&context.config)) else {
                return Admission::Refuse("the pod or the config is not JSON".into());
            };
            let problems = violations(&pod, allow_root(&config));
            if problems.is_empty() { Admission::Accept } else { Admission::Refuse(problems.join("; ")) }
        }
    }

    impl Settings for Plugin {
        fn validate_config(config: String) -> Result<(), String> {
            let config: Value = serde_json::from_str(&config).map_err(|e| format!("not JSON: {e}"))?;
            config_problems(&config).map_or(Ok(()), Err)
        }
    }

    export!(Plugin);
}

/// Whether the config lets containers run as root.
pub fn allow_root(config: &Value) -> bool {
    config.get("allow_root").and_then(Value::as_bool).unwrap_or(false)
}

/// What is wrong with a config, if anything: only `allow_root`, a boolean, is known.
pub fn config_problems(config: &Value) -> Option<String> {
    let Some(table) = config.as_object() else {
        return Some("the config must be a table".into());
    };
    let mut problems: Vec<String> = table
        .keys()
        .filter(|k| *k != "allow_root")
        .map(|k| format!("unknown key `{k}` (the only key is allow_root)"))
        .collect();
    if table.get("allow_root").is_some_and(|v| !v.is_boolean()) {
        problems.push("`allow_root` must be true or false".into());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
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

    #[test]
    fn a_config_is_checked_key_by_key() {
        assert_eq!(config_problems(&json!({"allow_root": true})), None);
        assert_eq!(
            config_problems(&json!({"allow_rot": true, "allow_root": "yes"})).unwrap(),
            "unknown key `allow_rot` (the only key is allow_root); `allow_root` must be true or false"
        );
    }
}
