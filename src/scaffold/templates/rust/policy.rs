//! @SUMMARY@
//!
//! The logic is plain Rust on `serde_json` values, tested natively with `cargo test`; the
//! `component` module binds it to kpo's contract when built for wasm32.

use serde_json::Value;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "@WORLD@", path: "wit" });

    use exports::kpo::plugin::settings::Guest as Settings;
    use exports::kpo::plugin::validator::Guest;
    use kpo::plugin::types::{Admission, Context};

    struct Plugin;

    impl Guest for Plugin {
        fn validate(pod: String, context: Context) -> Admission {
            let answer = serde_json::from_str(&context.config)
                .map_err(|e| e.to_string())
                .and_then(|config| super::allowed(&config))
                .and_then(|allowed| {
                    let pod = serde_json::from_str(&pod).map_err(|e| e.to_string())?;
                    super::check(&pod, &allowed)
                });
            match answer {
                Err(reason) => Admission::Refuse(reason),
                Ok(warnings) if warnings.is_empty() => Admission::Accept,
                Ok(warnings) => Admission::Warn(warnings),
            }
        }
    }

    impl Settings for Plugin {
        // Called when kpo loads the plugin: `err` stops `kpo validate` and `kpo run` before any pod.
        fn validate_config(config: String) -> Result<(), String> {
            super::allowed(&serde_json::from_str(&config).map_err(|e| e.to_string())?).map(|_| ())
        }
    }

    export!(Plugin);
}

/// The image prefixes the config allows (`{"allowed": ["registry.example.com/", "busybox:"]}`):
/// a registry, a repository; none: any image.
pub fn allowed(config: &Value) -> Result<Vec<String>, String> {
    let config = config.as_object().ok_or("the config must be a table")?;
    if let Some(key) = config.keys().find(|k| *k != "allowed") {
        return Err(format!("unknown key `{key}` (known: allowed)"));
    }
    let Some(list) = config.get("allowed") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or("`allowed` must be a list of strings")?;
    list.iter()
        .map(|r| r.as_str().map(str::to_owned).ok_or("`allowed` must be a list of strings".to_owned()))
        .collect()
}

/// Whether an image names a fixed version: a tag other than `latest`, or a digest.
pub fn pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(_, tag)| tag != "latest")
}

/// `Err(reason)` for the first container whose image is unpinned or not allowed;
/// otherwise a warning for each container without a memory limit.
pub fn check(pod: &Value, allowed: &[String]) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for list in ["containers", "initContainers"] {
        for container in pod["spec"][list].as_array().into_iter().flatten() {
            let name = container["name"].as_str().unwrap_or("?");
            let image = container["image"].as_str().unwrap_or("");
            if !pinned(image) {
                return Err(format!("container {name}: image {image} has no pinned tag (latest or none)"));
            }
            if !allowed.is_empty() && !allowed.iter().any(|r| image.starts_with(r.as_str())) {
                let allowed = allowed.join(", ");
                return Err(format!("container {name}: image {image} starts with none of the allowed prefixes ({allowed})"));
            }
            if container["resources"]["limits"]["memory"].is_null() {
                warnings.push(format!("container {name} has no memory limit"));
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str) -> Value {
        json!({"spec": {"containers": [{"name": "main", "image": image}]}})
    }

    #[test]
    fn an_unpinned_image_is_refused() {
        for image in ["busybox", "busybox:latest", "localhost:5000/busybox"] {
            let reason = check(&pod(image), &[]).unwrap_err();
            assert_eq!(reason, format!("container main: image {image} has no pinned tag (latest or none)"));
        }
        assert!(pinned("localhost:5000/busybox:1.36") && pinned("busybox@sha256:abc"));
    }

    #[test]
    fn only_the_allowed_prefixes_pass() {
        let allowed = allowed(&json!({"allowed": ["registry.example.com/"]})).unwrap();
        assert!(check(&pod("registry.example.com/app:1.0"), &allowed).is_ok());
        let reason = check(&pod("busybox:1.36"), &allowed).unwrap_err();
        assert!(reason.contains("none of the allowed prefixes (registry.example.com/)"), "{reason}");
    }

    #[test]
    fn a_missing_memory_limit_is_a_warning() {
        assert_eq!(check(&pod("busybox:1.36"), &[]).unwrap(), ["container main has no memory limit"]);
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(allowed(&json!({"allow": []})).unwrap_err(), "unknown key `allow` (known: allowed)");
    }
}
