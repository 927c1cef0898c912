//! Running the validating policies on the final pod — after every mutator, so that no mutator
//! can undo what a policy checks — and turning their answers into the run's policy checks.

use k8s_openapi::api::core::v1::Pod;

use super::{Context, Loaded, PluginError, PluginHost, wit};
use crate::vocabulary::{Admission, PolicyCheck, PolicyMode, Warning};

/// Asks every policy about `pod`, exactly as it will be submitted. Every policy answers, so a
/// refused run names every policy that refused it. A policy that fails (traps, times out, runs
/// out of memory, warns too much) stops the run in `enforce` mode — a broken policy must not
/// let pods through — and is only reported in `monitor` mode.
pub async fn admit(
    host: &PluginHost,
    policies: &[Loaded],
    pod: &Pod,
    ctx: &Context,
) -> Result<(Vec<PolicyCheck>, Vec<Warning>), PluginError> {
    let json = serde_json::to_string(pod)
        .map_err(|e| PluginError::Engine(format!("cannot write the pod as JSON: {e}")))?;
    let mut checks = Vec::new();
    let mut warnings = Vec::new();
    for policy in policies {
        let name = &policy.spec.name;
        let answer = policy
            .call_validate(host, &json, ctx)
            .await
            .and_then(|a| match a {
                wit::Admission::Accept => Ok((Admission::Accepted, None)),
                wit::Admission::Warn(list) => {
                    let named = super::warnings(name, list)?;
                    let joined = named
                        .iter()
                        .map(|w| w.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    warnings.extend(named);
                    Ok((Admission::Warned, Some(joined)))
                }
                wit::Admission::Refuse(reason) => Ok((Admission::Refused, Some(reason))),
            });
        let (admission, reason) = match (answer, policy.spec.mode) {
            (Ok(answer), _) => answer,
            (Err(e), PolicyMode::Monitor) => (Admission::Failed, Some(e.to_string())),
            (Err(e), PolicyMode::Enforce) => return Err(e),
        };
        tracing::debug!(policy = %name, ?admission, "policy answered");
        checks.push(PolicyCheck {
            policy: name.clone(),
            source: policy.spec.origin.to_string(),
            mode: policy.spec.mode,
            admission,
            reason,
        });
    }
    Ok((checks, warnings))
}

/// The refusal of the run, when a policy in `enforce` mode refused the pod: every such policy,
/// with where it came from and why.
pub fn denial(checks: &[PolicyCheck]) -> Option<PluginError> {
    let refusals: Vec<String> = checks
        .iter()
        .filter(|c| c.mode == PolicyMode::Enforce && c.admission == Admission::Refused)
        .map(|c| {
            format!(
                "policy {} ({}) refused the pod: {}",
                c.policy,
                c.source,
                c.reason.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    (!refusals.is_empty()).then(|| PluginError::Denied(refusals.join("; ")))
}
