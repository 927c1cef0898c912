//! Fails a run whose log tail contains one of the configured patterns (plain substrings), even
//! if the container exited 0, and publishes the matching lines as outputs.
//!
//! ```toml
//! [[interpret]]
//! path = "plugins/log_scan.wasm"
//! config = { patterns = ["ERROR", "Traceback"], max_matches = 20 }
//! ```

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "interpreter-plugin", path: "../../wit/0.1.0" });

    use super::*;
    use serde_json::{Value, json};
    use exports::kpo::plugin::interpreter::Guest;
    use kpo::plugin::log::{Level, log};
    use kpo::plugin::types::{Context, Judgement, Outcome, Verdict};

    struct Plugin;

    impl Guest for Plugin {
        fn interpret(outcome: Outcome, context: Context) -> Judgement {
            let config: Value = serde_json::from_str(&context.config).unwrap_or(Value::Null);
            let patterns: Vec<&str> = config["patterns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let max = config["max_matches"].as_u64().unwrap_or(20) as usize;
            let matches = scan(&outcome.log_tail, &patterns, max);
            log(Level::Info, &format!("{} of {} lines match", matches.len(), outcome.log_tail.len()));
            let verdict = match matches.first() {
                Some(first) => Verdict::Failure(format!("log matches {:?}: {first}", patterns)),
                None => Verdict::Success,
            };
            Judgement { verdict, outputs: Some(json!({ "matches": matches }).to_string()) }
        }
    }

    export!(Plugin);
}

/// The lines containing any pattern, at most `max`.
pub fn scan(lines: &[String], patterns: &[&str], max: usize) -> Vec<String> {
    lines.iter().filter(|l| patterns.iter().any(|p| l.contains(p))).take(max).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_matching_lines() {
        let lines: Vec<String> = ["ok", "ERROR: disk full", "fine", "ERROR again"].map(String::from).into();
        assert_eq!(scan(&lines, &["ERROR"], 20), ["ERROR: disk full", "ERROR again"]);
        assert_eq!(scan(&lines, &["ERROR"], 1).len(), 1);
        assert!(scan(&lines, &["panic"], 20).is_empty());
    }
}
