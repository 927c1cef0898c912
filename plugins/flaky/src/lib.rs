//! An interpreter that reads the run's earlier attempts (contract 0.2.0): a run that succeeded
//! only after failed attempts is *flaky*, which is worth knowing even when the retries hid it.
//! It publishes `{"attempt", "flaky", "earlier": [{"attempt", "status", "exit_code", "reason"}]}`
//! and judges the run by its last attempt: success when it succeeded, else failure with what
//! the earlier attempts did too.
//!
//! ```toml
//! [[interpret]]
//! path = "plugins/flaky.wasm"
//! ```

use kpo_plugin::serde_json::{Value, json};
use kpo_plugin::{Context, Interpreter, Judgement, NoConfig, Outcome, Plugin, Status, Verdict};

pub struct Flaky;

impl Plugin for Flaky {
    type Config = NoConfig;
}

impl Interpreter for Flaky {
    fn interpret(outcome: &Outcome, context: &Context<NoConfig>) -> Judgement {
        let (outputs, failure) = judge(outcome, &context.earlier);
        let verdict = failure.map_or(Verdict::Success, Verdict::Failure);
        Judgement::from(verdict).with_outputs(outputs)
    }
}

kpo_plugin::interpreter!(Flaky);

/// The outputs, and the failure when the last attempt did not succeed.
pub fn judge(last: &Outcome, earlier: &[Outcome]) -> (Value, Option<String>) {
    let succeeded = |o: &Outcome| o.status == Status::Succeeded;
    let failed_before = earlier.iter().filter(|o| !succeeded(o)).count();
    let outputs = json!({
        "attempt": last.attempt,
        "flaky": succeeded(last) && failed_before > 0,
        "earlier": earlier
            .iter()
            .map(|o| {
                let reason = o.main().and_then(|c| c.reason.clone());
                json!({"attempt": o.attempt, "status": o.status.to_string(), "exit_code": o.exit_code, "reason": reason})
            })
            .collect::<Vec<_>>(),
    });
    let failure = (!succeeded(last)).then(|| match failed_before {
        0 => format!("attempt {} failed with exit code {}", last.attempt, last.exit_code),
        n => format!(
            "attempt {} failed with exit code {}, as did {n} earlier attempt(s)",
            last.attempt, last.exit_code
        ),
    });
    (outputs, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(attempt: u32, succeeded: bool, exit_code: i32) -> Outcome {
        Outcome {
            attempt,
            status: if succeeded { Status::Succeeded } else { Status::Failed },
            exit_code,
            phase: String::new(),
            containers: Vec::new(),
            log_tail: Vec::new(),
            result: None,
            pod_json: String::new(),
        }
    }

    #[test]
    fn success_after_failures_is_flaky() {
        let (out, failure) = judge(&a(2, true, 0), &[a(1, false, 137)]);
        assert_eq!(failure, None);
        assert_eq!(out["flaky"], true);
        assert_eq!(out["earlier"][0]["exit_code"], 137);
        assert_eq!(out["earlier"][0]["status"], "failed");
        let (out, _) = judge(&a(1, true, 0), &[]);
        assert_eq!(out["flaky"], false);
    }

    #[test]
    fn a_failure_says_what_came_before() {
        let (_, failure) = judge(&a(3, false, 2), &[a(1, false, 2), a(2, false, 2)]);
        assert_eq!(failure.unwrap(), "attempt 3 failed with exit code 2, as did 2 earlier attempt(s)");
    }
}
