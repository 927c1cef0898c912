//! Running every interpreter on the finished run and combining their verdicts.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ContainerOutcome, Context, Loaded, MAX_OUTPUT, Outcome, PluginError, PluginHost, Verdict};
use crate::report::RunReport;
use crate::vocabulary::{self, Decision};

/// Failure beats retry beats skip beats success.
fn rank(v: &Verdict) -> u8 {
    match v {
        Verdict::Success => 0,
        Verdict::Skip(_) => 1,
        Verdict::Retry(_) => 2,
        Verdict::Failure(_) => 3,
    }
}

/// Runs every interpreter; `None` when there are none.
pub async fn interpret(
    host: &PluginHost,
    plugins: &[Loaded],
    report: &RunReport,
    ctx: &Context,
) -> Result<Option<Decision>, PluginError> {
    let outcome = outcome_of(report);
    let mut decision: Option<(Verdict, String)> = None;
    let mut outputs = BTreeMap::new();
    for plugin in plugins {
        let name = plugin.spec.name.clone();
        let judgement = plugin.call_interpret(host, &outcome, ctx).await?;
        if let Some(text) = judgement.outputs {
            let invalid = |message: String| PluginError::InvalidOutput {
                plugin: name.clone(),
                message,
            };
            if text.len() > MAX_OUTPUT {
                return Err(invalid(format!(
                    "outputs of {} bytes, more than the limit of {MAX_OUTPUT}",
                    text.len()
                )));
            }
            let value: Value =
                serde_json::from_str(&text).map_err(|e| invalid(format!("outputs are not JSON: {e}")))?;
            if !value.is_object() {
                return Err(invalid("outputs must be a JSON object".into()));
            }
            outputs.insert(name.clone(), value);
        }
        tracing::debug!(plugin = %name, verdict = ?judgement.verdict, "interpreter judged");
        if decision
            .as_ref()
            .is_none_or(|(v, _)| rank(&judgement.verdict) > rank(v))
        {
            decision = Some((judgement.verdict, name));
        }
    }
    Ok(decision.map(|(verdict, plugin)| {
        let (verdict, reason) = match verdict {
            Verdict::Success => (vocabulary::Verdict::Success, None),
            Verdict::Failure(r) => (vocabulary::Verdict::Failure, Some(r)),
            Verdict::Skip(r) => (vocabulary::Verdict::Skip, Some(r)),
            Verdict::Retry(r) => (vocabulary::Verdict::Retry, Some(r)),
        };
        Decision {
            verdict,
            reason,
            plugin,
            outputs,
        }
    }))
}

/// The WIT view of a finished attempt.
pub fn outcome_of(report: &RunReport) -> Outcome {
    let phase = report
        .final_pod
        .as_ref()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    Outcome {
        attempt: report.attempt,
        status: super::terms::status(report.outcome),
        exit_code: report.exit_code,
        phase,
        containers: report
            .containers
            .iter()
            .map(|c| ContainerOutcome {
                name: c.name.clone(),
                role: super::terms::role(c.role),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        log_tail: report.log_tail.clone(),
        result: report.result.as_ref().map(|r| r.to_string()),
        pod: report
            .final_pod
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok())
            .unwrap_or_default(),
    }
}
