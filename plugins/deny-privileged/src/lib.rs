//! A validating policy (contract 0.2.0) on the kpo-plugin SDK: refuses pods that would run with
//! more power than a batch task needs — privileged containers, privilege escalation, `hostPath`
//! volumes, the host's network, PID or IPC namespace, or running as root (unless the config
//! allows it). As a policy it sees the final pod, after every mutator, so no mutator can slip
//! one of these in. Its config is checked when kpo loads it.
//!
//! ```toml
//! [[policy]]
//! path = "plugins/deny_privileged.wasm"
//! config = { allow_root = false }
//! mode = "enforce"   # or "monitor": report what it would refuse, let the pod go
//! ```

use kpo_plugin::{Admission, Context, Plugin, Pod, Policy};

#[derive(Debug, Default, serde::Deserialize)]
pub struct Config {
    /// Whether containers may run as root.
    #[serde(default)]
    pub allow_root: bool,
}

pub struct DenyPrivileged;

impl Plugin for DenyPrivileged {
    type Config = Config;
}

impl Policy for DenyPrivileged {
    fn validate(pod: &Pod, context: &Context<Config>) -> Admission {
        Admission::refuse_any(violations(pod, context.config.allow_root))
    }
}

kpo_plugin::policy!(DenyPrivileged);

/// Every reason to refuse the pod, empty if it is acceptable.
pub fn violations(pod: &Pod, allow_root: bool) -> Vec<String> {
    let mut found = Vec::new();
    let spec = pod.typed().spec.clone().unwrap_or_default();
    for (ns, on) in [("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc)] {
        if on == Some(true) {
            found.push(format!("{ns} is not allowed"));
        }
    }
    for v in spec.volumes.iter().flatten().filter(|v| v.host_path.is_some()) {
        found.push(format!("volume {} uses hostPath", v.name));
    }
    let pod_sc = spec.security_context.unwrap_or_default();
    for (_, c) in pod.containers() {
        let name = &c.name;
        let sc = c.security_context.clone().unwrap_or_default();
        if sc.privileged == Some(true) {
            found.push(format!("container {name} is privileged"));
        }
        if sc.allow_privilege_escalation == Some(true) {
            found.push(format!("container {name} allows privilege escalation"));
        }
        let user = sc.run_as_user.or(pod_sc.run_as_user);
        let non_root = sc.run_as_non_root.or(pod_sc.run_as_non_root).unwrap_or(false);
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
    use kpo_plugin::serde_json::json;

    fn pod(value: kpo_plugin::serde_json::Value) -> Pod {
        Pod::parse(&value.to_string()).unwrap()
    }

    #[test]
    fn a_locked_down_pod_passes() {
        let pod = pod(json!({"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "base"}]}}));
        let context = Context::with_config(Config::default());
        assert_eq!(DenyPrivileged::validate(&pod, &context), Admission::Accept);
    }

    #[test]
    fn each_escalation_is_named() {
        let pod = pod(json!({"spec": {"hostNetwork": true, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "base", "securityContext": {"privileged": true, "runAsUser": 0}}]}}));
        let found = violations(&pod, false);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|f| f == "container base is privileged"));
        assert_eq!(violations(&pod, true).len(), 3);
    }

    #[test]
    fn a_config_is_checked_key_by_key() {
        let config: Config = kpo_plugin::parse_config(r#"{"allow_root": true}"#).unwrap();
        assert!(config.allow_root);
        assert_eq!(
            kpo_plugin::parse_config::<Config>(r#"{"allow_rot": true}"#).unwrap_err(),
            "unknown config key `allow_rot`"
        );
        assert_eq!(
            kpo_plugin::parse_config::<Config>(r#"{"allow_root": "yes"}"#).unwrap_err(),
            "config key `allow_root`: invalid type: string \"yes\", expected a boolean"
        );
    }
}
