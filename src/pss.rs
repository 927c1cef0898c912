//! The `restricted` Pod Security Standard, checked the way the API server's PodSecurity
//! admission checks it (Kubernetes 1.23+), so that kpo can warn before a namespace that enforces
//! it refuses a task's pod — and so that the simulated cluster can refuse such pods as a real
//! one does.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SecurityContext};

/// The namespace label that makes the API server enforce a standard.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Volume types the restricted standard allows.
const ALLOWED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// What in `pod` the restricted standard forbids, one sentence each, in the API server's words
/// where it has them. Empty when the pod meets it.
pub fn restricted_violations(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let containers: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let failing = |test: &dyn Fn(&Container) -> bool| -> Vec<String> {
        containers
            .iter()
            .filter(|c| !test(c))
            .map(|c| format!("\"{}\"", c.name))
            .collect()
    };
    let ctx = |c: &Container| c.security_context.clone().unwrap_or_default();
    let mut rule = |names: Vec<String>, what: &str| {
        if !names.is_empty() {
            found.push(format!("{what} (containers {})", names.join(", ")));
        }
    };
    rule(
        failing(&|c| ctx(c).privileged != Some(true)),
        "privileged containers are not allowed",
    );
    rule(
        failing(&|c| ctx(c).allow_privilege_escalation == Some(false)),
        "allowPrivilegeEscalation != false: securityContext.allowPrivilegeEscalation must be false",
    );
    rule(
        failing(&|c| drops_all(&ctx(c))),
        "unrestricted capabilities: securityContext.capabilities.drop must include \"ALL\"",
    );
    rule(
        failing(&|c| adds_only_net_bind(&ctx(c))),
        "unrestricted capabilities: only NET_BIND_SERVICE may be added",
    );
    let pod_ctx = spec.security_context.clone().unwrap_or_default();
    rule(
        failing(&|c| ctx(c).run_as_non_root.or(pod_ctx.run_as_non_root) == Some(true)),
        "runAsNonRoot != true: securityContext.runAsNonRoot must be true (in the pod or the container)",
    );
    rule(
        failing(&|c| ctx(c).run_as_user.or(pod_ctx.run_as_user) != Some(0)),
        "runAsUser=0: containers must not run as root",
    );
    let seccomp_ok = |profile: Option<&k8s_openapi::api::core::v1::SeccompProfile>| {
        profile.is_some_and(|p| matches!(p.type_.as_str(), "RuntimeDefault" | "Localhost"))
    };
    rule(
        failing(&|c| {
            let own = ctx(c).seccomp_profile;
            match own {
                Some(p) => seccomp_ok(Some(&p)),
                None => seccomp_ok(pod_ctx.seccomp_profile.as_ref()),
            }
        }),
        "seccompProfile: securityContext.seccompProfile.type must be RuntimeDefault or Localhost",
    );
    if let Some(bad) = forbidden_volumes(spec) {
        found.push(format!("restricted volume types: {bad}"));
    }
    found
}

fn drops_all(ctx: &SecurityContext) -> bool {
    ctx.capabilities
        .as_ref()
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| c == "ALL"))
}

fn adds_only_net_bind(ctx: &SecurityContext) -> bool {
    ctx.capabilities
        .as_ref()
        .and_then(|c| c.add.as_ref())
        .is_none_or(|a| a.iter().all(|c| c == "NET_BIND_SERVICE"))
}

/// Volumes of a type the standard does not allow (`hostPath` above all), named.
fn forbidden_volumes(spec: &PodSpec) -> Option<String> {
    let bad: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            let value = serde_json::to_value(v).ok()?;
            let kind = value.as_object()?.keys().find(|k| k.as_str() != "name")?.clone();
            (!ALLOWED_VOLUMES.contains(&kind.as_str())).then(|| format!("volume \"{}\" uses {kind}", v.name))
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_bare_container_breaks_the_standard_a_hardened_one_meets_it() {
        let bare = pod(serde_json::json!({"spec": {"containers": [{"name": "base"}]}}));
        let found = restricted_violations(&bare);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].starts_with("allowPrivilegeEscalation != false"),
            "{found:?}"
        );
        let hardened = pod(serde_json::json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "base", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "scratch", "emptyDir": {}}]}}));
        assert_eq!(restricted_violations(&hardened), Vec::<String>::new());
        let host = pod(serde_json::json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "base", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}));
        assert_eq!(
            restricted_violations(&host),
            ["restricted volume types: volume \"root\" uses hostPath"]
        );
    }
}
