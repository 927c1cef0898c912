//! @SUMMARY@
//!
//! The logic is plain Rust, tested natively with `cargo test`; the `component` module binds it
//! to kpo's contract when built for wasm32.

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "@WORLD@", path: "wit" });

    use exports::kpo::plugin::interpreter::Guest;
    use exports::kpo::plugin::settings::Guest as Settings;
    use kpo::plugin::types::{Context, Judgement, Outcome, Status, Verdict};

    struct Plugin;

    impl Guest for Plugin {
        fn interpret(outcome: Outcome, context: Context) -> Judgement {
            let marker = serde_json::from_str(&context.config)
                .map_err(|e| e.to_string())
                .and_then(|config| super::marker(&config));
            let marker = match marker {
                Ok(marker) => marker,
                Err(e) => return Judgement { verdict: Verdict::Failure(e), outputs: None },
            };
            let succeeded = matches!(outcome.status, Status::Succeeded);
            let (verdict, outputs) = match super::judge(succeeded, outcome.exit_code, &outcome.log_tail, &marker) {
                super::Judged::Failure(reason) => (Verdict::Failure(reason), None),
                super::Judged::Skip(reason) => (Verdict::Skip(reason), None),
                super::Judged::Success(outputs) => (Verdict::Success, Some(outputs.to_string())),
            };
            Judgement { verdict, outputs }
        }
    }

    impl Settings for Plugin {
        // Called when kpo loads the plugin: `err` stops `kpo validate` and `kpo run` before any pod.
        fn validate_config(config: String) -> Result<(), String> {
            super::marker(&serde_json::from_str(&config).map_err(|e| e.to_string())?).map(|_| ())
        }
    }

    export!(Plugin);
}

/// The line that means "nothing to do" (`{"marker": "..."}`), `NOTHING TO DO` by default.
pub fn marker(config: &Value) -> Result<String, String> {
    let config = config.as_object().ok_or("the config must be a table")?;
    if let Some(key) = config.keys().find(|k| *k != "marker") {
        return Err(format!("unknown key `{key}` (known: marker)"));
    }
    match config.get("marker") {
        None => Ok("NOTHING TO DO".to_owned()),
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(_) => Err("`marker` must be a non-empty string".to_owned()),
    }
}

/// What the plugin decides.
#[derive(Debug, PartialEq)]
pub enum Judged {
    Failure(String),
    Skip(String),
    /// With the outputs published in the run report.
    Success(Value),
}

/// A failed run fails; a run whose log has the marker is skipped; any other succeeds.
pub fn judge(succeeded: bool, exit_code: i32, log_tail: &[String], marker: &str) -> Judged {
    if !succeeded {
        return Judged::Failure(format!("the task failed (exit code {exit_code})"));
    }
    if log_tail.iter().any(|line| line.contains(marker)) {
        return Judged::Skip(format!("the task said {marker:?}"));
    }
    Judged::Success(serde_json::json!({ "log_lines": log_tail.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn the_marker_skips_the_run() {
        let judged = judge(true, 0, &lines(&["looking", "NOTHING TO DO"]), "NOTHING TO DO");
        assert_eq!(judged, Judged::Skip("the task said \"NOTHING TO DO\"".into()));
    }

    #[test]
    fn a_run_without_it_succeeds_with_its_line_count() {
        let judged = judge(true, 0, &lines(&["processed 3 rows"]), "NOTHING TO DO");
        assert_eq!(judged, Judged::Success(serde_json::json!({"log_lines": 1})));
    }

    #[test]
    fn a_failed_run_fails() {
        assert_eq!(judge(false, 3, &[], "x"), Judged::Failure("the task failed (exit code 3)".into()));
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(marker(&serde_json::json!({"mark": "x"})).unwrap_err(), "unknown key `mark` (known: marker)");
    }
}
