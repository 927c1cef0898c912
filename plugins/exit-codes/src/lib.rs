//! Maps the main container's exit code to a verdict, like Airflow's `skip_on_exit_code`:
//! codes listed under `skip` make the run skipped, under `success` succeeded, under `retry`
//! a transient failure (kpo retries it if the task's `[retry] plugin` budget allows), under
//! `failure` failed; other codes keep kpo's own reading (0 succeeds, anything else fails).
//!
//! ```toml
//! [[interpret]]
//! path = "plugins/exit_codes.wasm"
//! config = { skip = [99], success = [3] }
//! ```

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "interpreter-plugin", path: "../../wit/0.1.0" });

    use super::*;
    use serde_json::json;
    use exports::kpo::plugin::interpreter::Guest;
    use kpo::plugin::types::{Context, Judgement, Outcome, Verdict};

    struct Plugin;

    impl Guest for Plugin {
        fn interpret(outcome: Outcome, context: Context) -> Judgement {
            let config: Value = serde_json::from_str(&context.config).unwrap_or(Value::Null);
            let main = outcome.containers.iter().find(|c| c.role == "main").and_then(|c| c.exit_code);
            let verdict = match main.map(|code| judge(code, &config)) {
                Some(Judged::Success) => Verdict::Success,
                Some(Judged::Skip(why)) => Verdict::Skip(why),
                Some(Judged::Failure(why)) => Verdict::Failure(why),
                Some(Judged::Retry(why)) => Verdict::Retry(why),
                None => Verdict::Failure(format!("the main container never finished ({})", outcome.status)),
            };
            Judgement { verdict, outputs: main.map(|code| json!({ "exit_code": code }).to_string()) }
        }
    }

    export!(Plugin);
}

fn listed(config: &Value, key: &str, code: i32) -> bool {
    config[key].as_array().into_iter().flatten().any(|c| c.as_i64() == Some(i64::from(code)))
}

/// What an exit code means under a config.
#[derive(Debug, PartialEq)]
pub enum Judged {
    Success,
    Skip(String),
    Retry(String),
    Failure(String),
}

/// The verdict for `code` under `config`.
pub fn judge(code: i32, config: &Value) -> Judged {
    if listed(config, "skip", code) {
        Judged::Skip(format!("exit code {code} means skip"))
    } else if listed(config, "success", code) {
        Judged::Success
    } else if listed(config, "retry", code) {
        Judged::Retry(format!("exit code {code} is transient"))
    } else if listed(config, "failure", code) || code != 0 {
        Judged::Failure(format!("exit code {code}"))
    } else {
        Judged::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapping() {
        let config = json!({"skip": [99], "success": [3], "failure": [0]});
        assert_eq!(judge(99, &config), Judged::Skip("exit code 99 means skip".into()));
        assert_eq!(judge(3, &config), Judged::Success);
        assert_eq!(judge(75, &json!({"retry": [75]})), Judged::Retry("exit code 75 is transient".into()));
        assert_eq!(judge(0, &config), Judged::Failure("exit code 0".into()));
        assert_eq!(judge(1, &json!({})), Judged::Failure("exit code 1".into()));
        assert_eq!(judge(0, &json!({})), Judged::Success);
    }
}
