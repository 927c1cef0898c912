//! An outcome as a file: what interpreters were handed about a run, in the JSON form `kpo
//! plugin test --outcome` reads — written by `kpo run --record-outcome`, so that an author tests
//! an interpreter on a real run. The pod's environment values are redacted: such a file is meant
//! to be kept beside a plugin's tests.

use serde_json::{Value, json};

use super::terms;
use super::wit::Outcome;

/// What stands in for an environment variable's value in a recorded pod.
pub const REDACTED: &str = "[redacted]";

/// `outcome` as `kpo plugin test --outcome` reads it.
pub fn outcome_document(outcome: &Outcome) -> Value {
    let containers: Vec<Value> = outcome
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "role": terms::role_name(c.role),
                "exit_code": c.exit_code,
                "reason": c.reason,
                "message": c.message,
            })
        })
        .collect();
    let pod = serde_json::from_str::<Value>(&outcome.pod).ok().map(redacted);
    json!({
        "attempt": outcome.attempt,
        "status": terms::status_name(outcome.status),
        "exit_code": outcome.exit_code,
        "phase": outcome.phase,
        "containers": containers,
        "log_tail": outcome.log_tail,
        "result": outcome.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "pod": pod,
    })
}

/// `pod` with the value of every environment variable of every container replaced by
/// [`REDACTED`] (references to Secrets and ConfigMaps stay: they name, not hold).
fn redacted(mut pod: Value) -> Value {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for container in containers {
            let Some(env) = container["env"].as_array_mut() else {
                continue;
            };
            for var in env {
                if var.get("value").is_some() {
                    var["value"] = Value::String(REDACTED.into());
                }
            }
        }
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::wit::{ContainerOutcome, Role, Status};

    #[test]
    fn env_values_are_redacted_and_references_kept() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i", "env": [{"name": "A", "value": "init-secret"}]}],
            "containers": [{"name": "base", "env": [
                {"name": "TOKEN", "value": "hunter2"},
                {"name": "FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
            ]}]
        }});
        let outcome = Outcome {
            attempt: 2,
            status: Status::NeverStarted,
            exit_code: 125,
            phase: "Pending".into(),
            containers: vec![ContainerOutcome {
                name: "base".into(),
                role: Role::Main,
                exit_code: None,
                reason: Some("ErrImagePull".into()),
                message: None,
            }],
            log_tail: vec!["x".into()],
            result: Some("{\"rows\": 1}".into()),
            pod: pod.to_string(),
        };
        let document = outcome_document(&outcome);
        let text = document.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("init-secret"),
            "{text}"
        );
        assert_eq!(
            document["pod"]["spec"]["containers"][0]["env"][0]["value"],
            REDACTED
        );
        assert_eq!(
            document["pod"]["spec"]["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["key"],
            "k"
        );
        assert_eq!(document["status"], "never_started");
        assert_eq!(document["containers"][0]["role"], "main");
        assert_eq!(document["result"]["rows"], 1);
    }
}
