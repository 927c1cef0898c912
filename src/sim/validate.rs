//! What the API server checks and fills in on pod creation, for the fields kpo touches.
//! Messages follow the API server's wording so the sim and a real cluster read alike.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, PodStatus, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::script::{SCRIPT_PREFIX, Script};
use crate::names;

const DNS_LABEL_HINT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

struct Cause {
    field: String,
    reason: &'static str,
    message: String,
}

/// A pod the API server refuses: a `Status` body answered with 422.
#[derive(Debug)]
pub struct Invalid(serde_json::Value);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, Json(self.0)).into_response()
    }
}

/// Validates a pod as the API server would.
pub fn pod(pod: &Pod) -> Result<(), Invalid> {
    let mut causes = Vec::new();
    let mut add = |field: String, reason: &'static str, message: String| {
        causes.push(Cause {
            field,
            reason,
            message,
        })
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        add(
            "metadata.name".into(),
            "FieldValueRequired",
            "Required value: name or generateName is required".into(),
        );
    } else if name.len() > 253 || name.split('.').any(|part| names::check_dns_label(part).is_err()) {
        add(
            "metadata.name".into(),
            "FieldValueInvalid",
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        );
    }
    for (k, v) in pod.metadata.labels.iter().flatten() {
        if names::check_qualified_name(k).is_err() || names::check_label_value(v).is_err() {
            add(
                "metadata.labels".into(),
                "FieldValueInvalid",
                format!("Invalid value: {v:?}: label {k:?} is not a valid label"),
            );
        }
    }
    for (k, v) in pod.metadata.annotations.iter().flatten() {
        if let Some(container) = k.strip_prefix(SCRIPT_PREFIX)
            && let Err(e) = Script::parse(v)
        {
            add(
                format!("metadata.annotations[{k}]"),
                "FieldValueInvalid",
                format!("Invalid value: simulation script for container {container:?}: {e}"),
            );
        }
    }
    let Some(spec) = &pod.spec else {
        add("spec".into(), "FieldValueRequired", "Required value".into());
        return finish(&name, causes);
    };
    if spec.containers.is_empty() {
        add(
            "spec.containers".into(),
            "FieldValueRequired",
            "Required value".into(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let lists: [(&str, &[Container]); 2] = [
        (
            "spec.initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("spec.containers", &spec.containers),
    ];
    for (field, list) in lists {
        for (i, c) in list.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if c.name.is_empty() {
                add(
                    format!("{at}.name"),
                    "FieldValueRequired",
                    "Required value".into(),
                );
            } else if names::check_dns_label(&c.name).is_err() {
                add(
                    format!("{at}.name"),
                    "FieldValueInvalid",
                    format!("Invalid value: {:?}: {DNS_LABEL_HINT}", c.name),
                );
            } else if !seen.insert(c.name.clone()) {
                add(
                    format!("{at}.name"),
                    "FieldValueDuplicate",
                    format!("Duplicate value: {:?}", c.name),
                );
            }
            if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                add(
                    format!("{at}.image"),
                    "FieldValueRequired",
                    "Required value".into(),
                );
            }
            if let Some(p) = &c.image_pull_policy
                && !["Always", "IfNotPresent", "Never"].contains(&p.as_str())
            {
                add(
                    format!("{at}.imagePullPolicy"),
                    "FieldValueNotSupported",
                    format!(
                        "Unsupported value: {p:?}: supported values: \"Always\", \"IfNotPresent\", \"Never\""
                    ),
                );
            }
        }
    }
    if let Some(p) = &spec.restart_policy
        && !["Always", "OnFailure", "Never"].contains(&p.as_str())
    {
        add(
            "spec.restartPolicy".into(),
            "FieldValueNotSupported",
            format!("Unsupported value: {p:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
        );
    }
    if let Some(d) = spec.active_deadline_seconds
        && d <= 0
    {
        add(
            "spec.activeDeadlineSeconds".into(),
            "FieldValueInvalid",
            format!("Invalid value: {d}: must be between 1 and 2147483647, inclusive"),
        );
    }
    finish(&name, causes)
}

/// Validates a change to a stored pod's spec as a v1.20 API server does: only containers'
/// images, tolerations and `activeDeadlineSeconds` (set, or cut — never lengthened) may change.
pub fn update(old: &Pod, new: &Pod) -> Result<(), Invalid> {
    let name = old.metadata.name.clone().unwrap_or_default();
    let mut causes = Vec::new();
    let (before, after) = (
        old.spec.clone().unwrap_or_default(),
        new.spec.clone().unwrap_or_default(),
    );
    if let Some(d) = after.active_deadline_seconds {
        let longer = before.active_deadline_seconds.is_some_and(|b| d > b);
        let invalid = if d <= 0 {
            Some("must be between 1 and 2147483647, inclusive")
        } else if longer {
            Some("must be less than or equal to previous value")
        } else {
            None
        };
        if let Some(why) = invalid {
            causes.push(Cause {
                field: "spec.activeDeadlineSeconds".into(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {d}: {why}"),
            });
        }
    }
    let mutable_cleared = |mut spec: k8s_openapi::api::core::v1::PodSpec| {
        spec.active_deadline_seconds = None;
        spec.tolerations = None;
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.image = None;
        }
        spec
    };
    if mutable_cleared(before) != mutable_cleared(after) {
        causes.push(Cause {
            field: "spec".into(),
            reason: "FieldValueForbidden",
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)".into(),
        });
    }
    finish(&name, causes)
}

fn finish(name: &str, causes: Vec<Cause>) -> Result<(), Invalid> {
    if causes.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let joined = if texts.len() == 1 {
        texts[0].clone()
    } else {
        format!("[{}]", texts.join(", "))
    };
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Pod {name:?} is invalid: {joined}"),
        "reason": "Invalid",
        "details": {
            "name": name, "kind": "Pod",
            "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        },
        "code": 422,
    });
    Err(Invalid(body))
}

/// Fills in what admission and defaulting add to a stored pod.
pub fn apply_defaults(pod: &mut Pod) {
    pod.metadata.uid = Some(uid());
    pod.metadata.creation_timestamp = Some(Time(Timestamp::now()));
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.service_account_name.get_or_insert_with(|| "default".into());
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.enable_service_links.get_or_insert(true);
    spec.priority.get_or_insert(0);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        tolerations.push(Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            ..Default::default()
        });
    }
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy.get_or_insert_with(|| "File".into());
        let image = c.image.clone().unwrap_or_default();
        let latest = !image.contains('@') && !image.rsplit('/').next().unwrap_or_default().contains(':')
            || image.ends_with(":latest");
        c.image_pull_policy
            .get_or_insert_with(|| if latest { "Always" } else { "IfNotPresent" }.into());
    }
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    });
}

pub fn uid() -> String {
    let hex = |n: usize| {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
            .collect::<String>()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}
