//! @SUMMARY@
//!
//! Written on kpo's Rust SDK (`kpo-plugin/`, copied into this project): the pod arrives typed
//! (k8s-openapi), every container's image read as a runtime reads it, the config is read into
//! `Config` — a misspelt key refused when kpo loads the plugin, before any pod — and
//! `kpo_plugin::policy!` exports the component. The logic is plain Rust, tested natively with
//! `cargo test`.

use kpo_plugin::{Admission, Context, Plugin, Policy, Pod};

/// The plugin's config: `{"allowed": ["registry.example.com/", "busybox:"]}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// The image prefixes allowed (a registry, a repository); none: any image.
    pub allowed: Vec<String>,
}

pub struct Images;

impl Plugin for Images {
    type Config = Config;
}

impl Policy for Images {
    /// Refuses the first container whose image is unpinned (no tag, or `latest`) or starts
    /// with none of the allowed prefixes; warns of each container without a memory limit.
    fn validate(pod: &Pod, context: &Context<Config>) -> Admission {
        let allowed = &context.config.allowed;
        let mut warnings = Vec::new();
        for (_, container, image) in pod.images() {
            let (name, text) = (&container.name, container.image.as_deref().unwrap_or_default());
            if !image.is_ok_and(|i| i.is_pinned()) {
                return Admission::Refuse(format!("container {name}: image {text} has no pinned tag (latest or none)"));
            }
            if !allowed.is_empty() && !allowed.iter().any(|prefix| text.starts_with(prefix.as_str())) {
                let allowed = allowed.join(", ");
                return Admission::Refuse(format!(
                    "container {name}: image {text} starts with none of the allowed prefixes ({allowed})"
                ));
            }
            let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
            if !limits.is_some_and(|l| l.contains_key("memory")) {
                warnings.push(format!("container {name} has no memory limit"));
            }
        }
        Admission::warn_any(warnings)
    }
}

kpo_plugin::policy!(Images);

#[cfg(test)]
mod tests {
    use super::*;
    use kpo_plugin::parse_config;
    use serde_json::json;

    fn pod(image: &str) -> Pod {
        Pod::parse(&json!({"spec": {"containers": [{"name": "main", "image": image}]}}).to_string()).unwrap()
    }

    fn validate(image: &str, config: &str) -> Admission {
        Images::validate(&pod(image), &Context::with_config(parse_config(config).unwrap()))
    }

    #[test]
    fn an_unpinned_image_is_refused() {
        for image in ["busybox", "busybox:latest", "localhost:5000/busybox"] {
            let reason = format!("container main: image {image} has no pinned tag (latest or none)");
            assert_eq!(validate(image, "{}"), Admission::Refuse(reason));
        }
        assert!(matches!(validate(&format!("busybox@sha256:{}", "0".repeat(64)), "{}"), Admission::Warn(_)));
    }

    #[test]
    fn only_the_allowed_prefixes_pass() {
        let config = r#"{"allowed": ["registry.example.com/"]}"#;
        assert!(matches!(validate("registry.example.com/app:1.0", config), Admission::Warn(_)));
        let Admission::Refuse(reason) = validate("busybox:1.36", config) else { panic!("accepted") };
        assert!(reason.contains("none of the allowed prefixes (registry.example.com/)"), "{reason}");
    }

    #[test]
    fn a_missing_memory_limit_is_a_warning() {
        assert_eq!(validate("busybox:1.36", "{}"), Admission::Warn(vec!["container main has no memory limit".into()]));
    }

    #[test]
    fn a_misspelt_config_is_refused() {
        assert_eq!(parse_config::<Config>(r#"{"allow": []}"#).unwrap_err(), "unknown config key `allow`");
    }
}
