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

use kpo_plugin::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kpo_plugin::{Context, Mutator, Plugin, Pod};

/// How much more memory each OOMKilled attempt earns, and the ceiling.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Config {
    #[serde(default = "double")]
    pub factor: f64,
    /// A memory quantity (`2Gi`); none: no ceiling.
    pub max: Option<String>,
}

fn double() -> f64 {
    2.0
}

impl Config {
    /// The ceiling in bytes.
    fn max_bytes(&self) -> Option<u64> {
        self.max.as_deref().and_then(bytes)
    }
}

pub struct OomMemory;

impl Plugin for OomMemory {
    type Config = Config;

    fn check_config(config: &Config) -> Result<(), String> {
        if config.factor <= 1.0 {
            return Err("`factor` must be a number above 1".into());
        }
        match &config.max {
            Some(max) if bytes(max).is_none() => {
                Err(format!("`max` must be a memory quantity such as \"2Gi\", not {max:?}"))
            }
            _ => Ok(()),
        }
    }
}

impl Mutator for OomMemory {
    fn mutate(pod: &mut Pod, context: &Context<Config>) -> Result<Vec<String>, String> {
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
        Ok(raise(pod, &killed, &context.config))
    }
}

kpo_plugin::mutator!(OomMemory);

/// Raises the memory of every container of `pod` that `killed` (per earlier attempt, the
/// containers OOMKilled in it) names; one warning per raise.
pub fn raise(pod: &mut Pod, killed: &[Vec<String>], config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let last = killed.len();
    for (_, c) in pod.containers_mut() {
        let name = c.name.clone();
        let times = killed.iter().filter(|k| k.contains(&name)).count() as i32;
        if times == 0 {
            continue;
        }
        let resources = c.resources.get_or_insert_with(Default::default);
        let memory = |m: &Option<std::collections::BTreeMap<String, Quantity>>| {
            m.as_ref().and_then(|m| m.get("memory")).and_then(|q| bytes(&q.0))
        };
        let (limit, request) = (memory(&resources.limits), memory(&resources.requests));
        let Some(base) = limit.or(request) else {
            warnings.push(format!("container {name} was OOMKilled but has no memory limit or request to raise"));
            continue;
        };
        let wanted = (base as f64 * config.factor.powi(times)).ceil() as u64;
        let raised = config.max_bytes().map_or(wanted, |m| wanted.min(m));
        if raised <= base {
            warnings.push(format!(
                "container {name} was OOMKilled with {} of memory, already the maximum; not raised",
                quantity(base)
            ));
            continue;
        }
        let set = |m: &mut Option<std::collections::BTreeMap<String, Quantity>>| {
            m.get_or_insert_with(Default::default).insert("memory".into(), Quantity(quantity(raised)));
        };
        if limit.is_some() {
            set(&mut resources.limits);
        }
        if request == limit || limit.is_none() {
            set(&mut resources.requests);
        }
        warnings.push(format!(
            "raised the memory of container {name} from {} to {} (OOMKilled in {times} of {last} earlier attempt(s))",
            quantity(base),
            quantity(raised)
        ));
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
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpo_plugin::serde_json::{Value, json};

    fn pod(resources: Value) -> Pod {
        let p = json!({"spec": {"containers": [{"name": "base", "resources": resources}, {"name": "other"}]}});
        Pod::parse(&p.to_string()).unwrap()
    }

    fn memory(p: &Pod, kind: &str) -> Value {
        p.to_value()["spec"]["containers"][0]["resources"][kind]["memory"].clone()
    }

    fn config(max: &str) -> Config {
        Config { factor: 2.0, max: Some(max.into()) }
    }

    #[test]
    fn each_oomkilled_attempt_doubles_the_memory_up_to_the_max() {
        let mut p = pod(json!({"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}));
        let warnings = raise(&mut p, &[vec!["base".into()]], &config("200Mi"));
        assert_eq!((memory(&p, "limits"), memory(&p, "requests")), (json!("128Mi"), json!("128Mi")));
        assert_eq!(warnings, ["raised the memory of container base from 64Mi to 128Mi (OOMKilled in 1 of 1 earlier attempt(s))"]);
        let mut p = pod(json!({"limits": {"memory": "64Mi"}, "requests": {"memory": "32Mi"}}));
        raise(&mut p, &[vec!["base".into()], vec!["base".into()]], &config("200Mi"));
        assert_eq!((memory(&p, "limits"), memory(&p, "requests")), (json!("200Mi"), json!("32Mi")));
    }

    #[test]
    fn at_the_max_or_without_a_limit_it_only_warns() {
        let mut p = pod(json!({"limits": {"memory": "64Mi"}}));
        let w = raise(&mut p, &[vec!["base".into()]], &config("64Mi"));
        assert_eq!(memory(&p, "limits"), "64Mi");
        assert!(w[0].contains("already the maximum"), "{w:?}");
        let w = raise(&mut pod(json!({})), &[vec!["base".into()]], &config("64Mi"));
        assert!(w[0].contains("no memory limit"), "{w:?}");
        assert!(raise(&mut pod(json!({})), &[vec!["nobody".into()]], &config("64Mi")).is_empty());
    }

    #[test]
    fn quantities_and_configs() {
        assert_eq!(bytes("1.5Gi"), Some(1610612736));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(quantity(3 << 29), "1536Mi");
        assert_eq!(quantity(1000), "1000");
        let parse = |c: &str| {
            kpo_plugin::parse_config::<Config>(c).and_then(|c| OomMemory::check_config(&c).map(|()| c))
        };
        assert_eq!(parse("{}").unwrap(), Config { factor: 2.0, max: None });
        assert!(parse(r#"{"factor": 1}"#).unwrap_err().contains("above 1"));
        assert!(parse(r#"{"max": "huge"}"#).unwrap_err().contains("memory quantity"));
        assert_eq!(parse(r#"{"fator": 3}"#).unwrap_err(), "unknown config key `fator`");
    }
}
