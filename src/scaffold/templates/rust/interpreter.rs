//! @SUMMARY@
//!
//! Written on kpo's Rust SDK (`kpo-plugin/`, copied into this project): the run's outcome
//! arrives typed, the config is read into `Config` — a misspelt key refused when kpo loads the
//! plugin, before any pod — and `kpo_plugin::interpreter!` exports the component. The logic is
//! plain Rust, tested natively with `cargo test`.

use kpo_plugin::{Context, Interpreter, Judgement, Outcome, Plugin, Status, Verdict};

/// The plugin's config: `{"marker": "NOTHING TO DO"}`.
#[derive(Debug, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// The line that means "nothing to do".
    pub marker: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { marker: "NOTHING TO DO".into() }
    }
}

pub struct Marker;

impl Plugin for Marker {
    type Config = Config;

    fn check_config(config: &Config) -> Result<(), String> {
        match config.marker.is_empty() {
            true => Err("`marker` must be a non-empty string".into()),
            false => Ok(()),
        }
    }
}

impl Interpreter for Marker {
    /// A failed run fails; a run whose log has the marker is skipped; any other succeeds, with
    /// its number of log lines as an output.
    fn interpret(outcome: &Outcome, context: &Context<Config>) -> Judgement {
        let marker = &context.config.marker;
        if outcome.status != Status::Succeeded {
            return Verdict::Failure(format!("the task failed (exit code {})", outcome.exit_code)).into();
        }
        if outcome.log_tail.iter().any(|line| line.contains(marker.as_str())) {
            return Verdict::Skip(format!("the task said {marker:?}")).into();
        }
        Judgement::from(Verdict::Success).with_outputs(kpo_plugin::serde_json::json!({ "log_lines": outcome.log_tail.len() }))
    }
}

kpo_plugin::interpreter!(Marker);

#[cfg(test)]
mod tests {
    use super::*;
    use kpo_plugin::parse_config;

    fn outcome(status: Status, exit_code: i32, lines: &[&str]) -> Outcome {
        Outcome {
            attempt: 1,
            status,
            exit_code,
            phase: "Succeeded".into(),
            containers: Vec::new(),
            log_tail: lines.iter().map(|l| l.to_string()).collect(),
            result: None,
            pod_json: String::new(),
        }
    }

    fn judge(outcome: &Outcome) -> Judgement {
        Marker::interpret(outcome, &Context::with_config(Config::default()))
    }

    #[test]
    fn the_marker_skips_the_run() {
        let judged = judge(&outcome(Status::Succeeded, 0, &["looking", "NOTHING TO DO"]));
        assert_eq!(judged.verdict, Verdict::Skip("the task said \"NOTHING TO DO\"".into()));
    }

    #[test]
    fn a_run_without_it_succeeds_with_its_line_count() {
        let judged = judge(&outcome(Status::Succeeded, 0, &["processed 3 rows"]));
        assert_eq!(judged, Judgement::from(Verdict::Success).with_outputs(serde_json::json!({"log_lines": 1})));
    }

    #[test]
    fn a_failed_run_fails() {
        let judged = judge(&outcome(Status::Failed, 3, &[]));
        assert_eq!(judged.verdict, Verdict::Failure("the task failed (exit code 3)".into()));
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(parse_config::<Config>(r#"{"mark": "x"}"#).unwrap_err(), "unknown config key `mark`");
        assert_eq!(Marker::check_config(&Config { marker: String::new() }).unwrap_err(), "`marker` must be a non-empty string");
    }
}
