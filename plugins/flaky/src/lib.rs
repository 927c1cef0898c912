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

use serde_json::{Value, json};

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "interpreter-plugin", path: "../../wit" });

    use super::*;
    use exports::kpo::plugin::interpreter::Guest;
    use kpo::plugin::types::{Context, Judgement, Outcome, Status, Verdict};

    struct Plugin;

    fn attempt(o: &Outcome) -> Attempt {
        let main = o.containers.iter().find(|c| matches!(c.role, kpo::plugin::types::Role::Main));
        Attempt {
            attempt: o.attempt,
            succeeded: matches!(o.status, Status::Succeeded),
            status: match o.status {
                Status::Succeeded => "succeeded",
                Status::Failed => "failed",
                Status::NeverStarted => "never_started",
                Status::TimedOut => "timed_out",
                Status::Rejected => "rejected",
                Status::Refused => "refused",
                Status::Interrupted => "interrupted",
            }
            .to_owned(),
            exit_code: o.exit_code,
            reason: main.and_then(|c| c.reason.clone()),
        }
    }

    impl Guest for Plugin {
        fn interpret(outcome: Outcome, context: Context) -> Judgement {
            let earlier: Vec<Attempt> = context.earlier.iter().map(attempt).collect();
            let (outputs, failure) = judge(&attempt(&outcome), &earlier);
            let verdict = match failure {
                None => Verdict::Success,
                Some(why) => Verdict::Failure(why),
            };
            Judgement { verdict, outputs: Some(outputs.to_string()) }
        }
    }

    export!(Plugin);
}

/// What the plugin needs of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    pub succeeded: bool,
    pub status: String,
    pub exit_code: i32,
    /// The main container's reason (`OOMKilled`, `Error`).
    pub reason: Option<String>,
}

/// The outputs, and the failure when the last attempt did not succeed.
pub fn judge(last: &Attempt, earlier: &[Attempt]) -> (Value, Option<String>) {
    let failed_before = earlier.iter().filter(|a| !a.succeeded).count();
    let outputs = json!({
        "attempt": last.attempt,
        "flaky": last.succeeded && failed_before > 0,
        "earlier": earlier
            .iter()
            .map(|a| json!({"attempt": a.attempt, "status": a.status, "exit_code": a.exit_code, "reason": a.reason}))
            .collect::<Vec<_>>(),
    });
    let failure = (!last.succeeded).then(|| match failed_before {
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

    fn a(attempt: u32, succeeded: bool, exit_code: i32) -> Attempt {
        let status = if succeeded { "succeeded" } else { "failed" }.to_string();
        Attempt { attempt, succeeded, status, exit_code, reason: None }
    }

    #[test]
    fn success_after_failures_is_flaky() {
        let (out, failure) = judge(&a(2, true, 0), &[a(1, false, 137)]);
        assert_eq!(failure, None);
        assert_eq!(out["flaky"], true);
        assert_eq!(out["earlier"][0]["exit_code"], 137);
        let (out, _) = judge(&a(1, true, 0), &[]);
        assert_eq!(out["flaky"], false);
    }

    #[test]
    fn a_failure_says_what_came_before() {
        let (_, failure) = judge(&a(3, false, 2), &[a(1, false, 2), a(2, false, 2)]);
        assert_eq!(failure.unwrap(), "attempt 3 failed with exit code 2, as did 2 earlier attempt(s)");
    }
}
