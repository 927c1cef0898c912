//! A mutator that makes retries learn (contract 0.2.0): when the previous attempt of a run lost
//! a container to `OOMKilled`, the retry's pod gets more memory for that container — the memory
//! limit (and a request equal to it) multiplied by `factor` for every earlier attempt the
//! container was OOMKilled in, never above `max`. Each raise is a warning in the run report.
//!
//! ```toml
//! [retry]
//! user = 2                    # OOMKilled is exit code 137: a user failure
//!
//! [[mutate]]
//! path = "plugins/oom_memory.wasm"
//! config = { factor = 2, max = "2Gi" }
//! ```

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "configured-mutator-plugin", path: "../../wit" });

    use super::*;
    use exports::kpo::plugin::mutator::Guest as Mutator;
    use exports::kpo::plugin::settings::Guest as Settings;
    use kpo::plugin::types::{Context, Mutated};

    struct Plugin;

    impl Mutator for Plugin {
        fn mutate(pod: String, context: Context) -> Result<Mutated, String> {
            let config = Config::parse(&serde_json::from_str(&context.config).map_err(|e| e.to_string())?)?;
            let killed: Vec<Vec<String>> = context
                .earlier
                .iter()
                .map(|o| {
                    o.containers
                        .iter()
                        .filter(|c| c.reason.as_deref() == Some("OOMKilled"))
                        .map(|c| c.name.clone())
                        .collect()
                })
                .collect();
            if killed.iter().all(Vec::is_empty) {
                return Ok(Mutated { pod, warnings: Vec::new() });
            }
            let mut pod: Value = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
            let warnings = raise(&mut pod, &killed, &config);
            Ok(Mutated { pod: pod.to_string(), warnings })
        }
    }

    impl Settings for Plugin {
        fn validate_config(config: String) -> Result<(), String> {
            let config: Value = serde_json::from_str(&config).map_err(|e| format!("not JSON: {e}"))?;
            Config::parse(&config).map(drop)
        }
    }

    export!(Plugin);
}

/// How much more memory each OOMKilled attempt earns, and the ceiling.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub factor: f64,
    /// In bytes; `None`: no ceiling.
    pub max: Option<u64>,
}

impl Config {
    pub fn parse(config: &Value) -> Result<Self, String> {
        let table = config.as_object().ok_or("the config must be a table")?;
        if let Some(k) = table.keys().find(|k| *k != "factor" && *k != "max") {
            return Err(format!("unknown key `{k}` (known: factor, max)"));
        }
        let factor = match table.get("factor") {
            None => 2.0,
            Some(v) => v.as_f64().filter(|f| *f > 1.0).ok_or("`factor` must be a number above 1")?,
        };
        let max = match table.get("max") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(bytes)
                    .ok_or_else(|| format!("`max` must be a memory quantity such as \"2Gi\", not {v}"))?,
            ),
        };
        Ok(Config { factor, max })
    }
}

/// Raises the memory of every container of `pod` that `killed` (per earlier attempt, the
/// containers OOMKilled in it) names; one warning per raise.
pub fn raise(pod: &mut Value, killed: &[Vec<String>], config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let last = killed.len();
    for list in ["initContainers", "containers"] {
        for c in pod["spec"][list].as_array_mut().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default().to_owned();
            let times = killed.iter().filter(|k| k.contains(&name)).count() as i32;
            if times == 0 {
                continue;
            }
            let resources = &mut c["resources"];
            let limit = resources["limits"]["memory"].as_str().and_then(bytes);
            let request = resources["requests"]["memory"].as_str().and_then(bytes);
            let Some(base) = limit.or(request) else {
                warnings.push(format!(
                    "container {name} was OOMKilled but has no memory limit or request to raise"
                ));
                continue;
            };
            let wanted = (base as f64 * config.factor.powi(times)).ceil() as u64;
            let raised = config.max.map_or(wanted, |m| wanted.min(m));
            if raised <= base {
                warnings.push(format!(
                    "container {name} was OOMKilled with {} of memory, already the maximum; not raised",
                    quantity(base)
                ));
                continue;
            }
            if limit.is_some() {
                resources["limits"]["memory"] = quantity(raised).into();
            }
            if request == limit || limit.is_none() {
                resources["requests"]["memory"] = quantity(raised).into();
            }
            warnings.push(format!(
                "raised the memory of container {name} from {} to {} (OOMKilled in {times} of {last} earlier attempt(s))",
                quantity(base),
                quantity(raised)
            ));
        }
    }
    warnings
}

/// The bytes of a Kubernetes memory quantity (`64Mi`, `1G`, `1.5Gi`, `134217728`).
pub fn bytes(q: &str) -> Option<u64> {
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok().filter(|n: &f64| *n >= 0.0)?;
    let scale = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * scale).ceil() as u64)
}

/// `bytes` written as the largest binary unit that divides it exactly.
pub fn quantity(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "base", "resources": resources}, {"name": "other"}]}})
    }

    #[test]
    fn each_oomkilled_attempt_doubles_the_memory_up_to_the_max() {
        let config = Config { factor: 2.0, max: bytes("200Mi") };
        let mut p = pod(json!({"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}));
        let warnings = raise(&mut p, &[vec!["base".into()]], &config);
        assert_eq!(p["spec"]["containers"][0]["resources"]["limits"]["memory"], "128Mi");
        assert_eq!(p["spec"]["containers"][0]["resources"]["requests"]["memory"], "128Mi");
        assert_eq!(warnings, ["raised the memory of container base from 64Mi to 128Mi (OOMKilled in 1 of 1 earlier attempt(s))"]);
        let mut p = pod(json!({"limits": {"memory": "64Mi"}, "requests": {"memory": "32Mi"}}));
        raise(&mut p, &[vec!["base".into()], vec!["base".into()]], &config);
        assert_eq!(p["spec"]["containers"][0]["resources"]["limits"]["memory"], "200Mi");
        assert_eq!(p["spec"]["containers"][0]["resources"]["requests"]["memory"], "32Mi");
    }

    #[test]
    fn at_the_max_or_without_a_limit_it_only_warns() {
        let config = Config { factor: 2.0, max: bytes("64Mi") };
        let mut p = pod(json!({"limits": {"memory": "64Mi"}}));
        let w = raise(&mut p, &[vec!["base".into()]], &config);
        assert_eq!(p["spec"]["containers"][0]["resources"]["limits"]["memory"], "64Mi");
        assert!(w[0].contains("already the maximum"), "{w:?}");
        let mut p = pod(json!({}));
        let w = raise(&mut p, &[vec!["base".into()]], &config);
        assert!(w[0].contains("no memory limit"), "{w:?}");
        assert!(raise(&mut pod(json!({})), &[vec!["nobody".into()]], &config).is_empty());
    }

    #[test]
    fn quantities_and_configs() {
        assert_eq!(bytes("1.5Gi"), Some(1610612736));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(quantity(3 << 29), "1536Mi");
        assert_eq!(quantity(1000), "1000");
        assert_eq!(Config::parse(&json!({})).unwrap(), Config { factor: 2.0, max: None });
        assert!(Config::parse(&json!({"factor": 1})).unwrap_err().contains("above 1"));
        assert!(Config::parse(&json!({"max": "huge"})).unwrap_err().contains("memory quantity"));
        assert!(Config::parse(&json!({"fator": 3})).unwrap_err().contains("unknown key `fator`"));
    }
}
