//! The task file exactly as written: serde structs that mirror the TOML, before any checking.
//!
//! Unknown keys are not rejected here (no `deny_unknown_fields`): the loader wraps the
//! deserializer with `serde_ignored`, which reports every unknown key with its full path — also
//! inside the Kubernetes-shaped tables (`affinity`, `tolerations`, containers) whose k8s-openapi
//! types would otherwise ignore unknown fields silently.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, CSIVolumeSource, Container, ContainerPort, DownwardAPIVolumeSource, EphemeralVolumeSource,
    HostAlias, HostPathVolumeSource, NFSVolumeSource, PodDNSConfig, PodSecurityContext,
    ProjectedVolumeSource, SecurityContext, Toleration,
};
use serde::Deserialize;

/// Top level of a task file.
#[derive(Debug, Deserialize)]
pub struct RawTask {
    pub name: String,
    pub image: String,
    pub namespace: Option<String>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// In file order: `$(VAR)` references in later values need earlier variables first.
    #[serde(default)]
    pub env: indexmap::IndexMap<String, RawEnvValue>,
    #[serde(default)]
    pub env_from: Vec<RawEnvFrom>,
    pub resources: Option<RawResources>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub tolerations: Option<Vec<Toleration>>,
    pub affinity: Option<Affinity>,
    pub service_account: Option<String>,
    pub image_pull_policy: Option<String>,
    pub image_pull_secrets: Option<Vec<String>>,
    #[serde(default)]
    pub volumes: Vec<RawVolume>,
    pub security_context: Option<PodSecurityContext>,
    pub container_security_context: Option<SecurityContext>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub sidecars: Vec<Container>,
    pub active_deadline_seconds: Option<i64>,
    pub termination_grace_period: Option<i64>,
    /// The main container's `ports` (Kubernetes' ContainerPort objects).
    pub ports: Option<Vec<ContainerPort>>,
    /// The main container's `terminationMessagePolicy`.
    pub termination_message_policy: Option<String>,
    pub host_network: Option<bool>,
    pub dns_policy: Option<String>,
    pub dns_config: Option<PodDNSConfig>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub host_aliases: Option<Vec<HostAlias>>,
    pub priority_class_name: Option<String>,
    pub scheduler_name: Option<String>,
    pub runtime_class_name: Option<String>,
    pub automount_service_account_token: Option<bool>,
    pub pod_template: Option<String>,
    #[serde(default)]
    pub run: RawRunPolicy,
    /// `[retry]`: which failures get another attempt.
    pub retry: Option<RawRetry>,
    /// `[result]`: how the task hands back a result document.
    pub result: Option<RawResult>,
    /// `[[mutate]]`: plugins that change the pod before submission, applied in order.
    #[serde(default)]
    pub mutate: Vec<RawPlugin>,
    /// `[[interpret]]`: plugins that judge the run afterwards.
    #[serde(default)]
    pub interpret: Vec<RawPlugin>,
    /// `[params]` and `[matrix]`: read and applied from the document before it becomes this
    /// struct (`params.rs`, `matrix.rs`); taken whole here so that no key of theirs is unknown.
    #[serde(default, rename = "params")]
    pub _params: Option<toml::Table>,
    #[serde(default, rename = "matrix")]
    pub _matrix: Option<toml::Table>,
    /// `[[policy]]`: validating plugins that accept or refuse the final pod.
    #[serde(default)]
    pub policy: Vec<RawPlugin>,
}

/// A policy file (`--policy FILE`, a configuration folder's `*.toml`): `[[policy]]` entries.
#[derive(Debug, Deserialize)]
pub struct RawPolicyFile {
    #[serde(default)]
    pub policy: Vec<RawPlugin>,
}

/// `[retry]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawRetry {
    pub infrastructure: Option<u32>,
    pub user: Option<u32>,
    pub on_exit_codes: Option<Vec<i32>>,
    pub plugin: Option<u32>,
    pub never_started: Option<u32>,
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
}

/// `[result]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawResult {
    pub path: Option<String>,
    pub required: Option<bool>,
    pub via: Option<String>,
    pub max_size: Option<String>,
    pub sidecar_image: Option<String>,
    pub wait: Option<String>,
}

/// One plugin entry.
#[derive(Debug, Deserialize)]
pub struct RawPlugin {
    pub path: String,
    pub name: Option<String>,
    /// Free-form; handed to the plugin as JSON.
    pub config: Option<serde_json::Value>,
    pub timeout: Option<String>,
    pub memory: Option<String>,
    pub writable: Option<Vec<String>>,
    /// `enforce` or `monitor` (`[[policy]]` only).
    pub mode: Option<String>,
    #[serde(default)]
    pub grant: RawGrant,
}

/// Capabilities granted to a plugin; none by default.
#[derive(Debug, Default, Deserialize)]
pub struct RawGrant {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub clock: bool,
    /// `"host/path:/guest/path"`, read-only.
    #[serde(default)]
    pub dirs: Vec<String>,
}

/// An `env` entry: a literal string, or a reference to a Secret or ConfigMap key.
#[derive(Debug)]
pub enum RawEnvValue {
    Literal(String),
    From(RawEnvRef),
}

/// `{ secret = "name", key = "k" }`, `{ config_map = "name", key = "k" }`, or the downward
/// API: `{ field = "metadata.name" }`, `{ resource = "limits.memory", divisor = "1Mi" }`.
#[derive(Debug, Deserialize)]
pub struct RawEnvRef {
    pub secret: Option<String>,
    pub config_map: Option<String>,
    pub key: Option<String>,
    pub optional: Option<bool>,
    /// `fieldRef.fieldPath`.
    pub field: Option<String>,
    /// `resourceFieldRef.resource`, of `container` (the main one by default).
    pub resource: Option<String>,
    pub container: Option<String>,
    pub divisor: Option<String>,
}

impl<'de> Deserialize<'de> for RawEnvValue {
    // Hand-written rather than `#[serde(untagged)]`: untagged buffers the value, which hides
    // unknown keys from `serde_ignored` and turns every mistake into "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawEnvValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, or a table { secret | config_map, key }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawEnvValue::Literal(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawEnvRef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawEnvValue::From)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// An `[[env_from]]` entry: every key of a Secret or ConfigMap as environment variables.
#[derive(Debug, Deserialize)]
pub struct RawEnvFrom {
    pub secret: Option<String>,
    pub config_map: Option<String>,
    pub prefix: Option<String>,
    pub optional: Option<bool>,
}

/// `[resources]`: quantities as Kubernetes writes them (`"250m"`, `"64Mi"`).
#[derive(Debug, Deserialize)]
pub struct RawResources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// A `[[volumes]]` entry: one source, optionally mounted into the main container
/// (`mount_path`) and anywhere else (`mounts`).
#[derive(Debug, Deserialize)]
pub struct RawVolume {
    pub name: String,
    pub config_map: Option<String>,
    pub secret: Option<String>,
    pub empty_dir: Option<RawEmptyDir>,
    pub persistent_volume_claim: Option<String>,
    /// These take Kubernetes' own source objects.
    pub host_path: Option<HostPathVolumeSource>,
    pub nfs: Option<NFSVolumeSource>,
    pub csi: Option<CSIVolumeSource>,
    pub projected: Option<ProjectedVolumeSource>,
    pub downward_api: Option<DownwardAPIVolumeSource>,
    pub ephemeral: Option<EphemeralVolumeSource>,
    pub mount_path: Option<String>,
    pub sub_path: Option<String>,
    pub read_only: Option<bool>,
    #[serde(default)]
    pub mounts: Vec<RawMount>,
}

/// One more mount of a volume: at another path, or into another container.
#[derive(Debug, Deserialize)]
pub struct RawMount {
    pub path: String,
    /// The main container (`base`) unless named: a sidecar or an init container of the task.
    pub container: Option<String>,
    pub sub_path: Option<String>,
    pub read_only: Option<bool>,
}

/// `empty_dir = {}` or `empty_dir = { medium = "Memory", size_limit = "64Mi" }`.
#[derive(Debug, Deserialize)]
pub struct RawEmptyDir {
    pub medium: Option<String>,
    pub size_limit: Option<String>,
}

/// `[run]`: how kpo supervises the pod, as opposed to what the pod is.
#[derive(Debug, Default, Deserialize)]
pub struct RawRunPolicy {
    pub schedule_timeout: Option<String>,
    pub startup_timeout: Option<String>,
    pub timeout: Option<String>,
    pub on_finish: Option<String>,
    pub logs: Option<RawLogs>,
    pub events_on_failure: Option<bool>,
    pub skip_on_exit_codes: Option<Vec<i32>>,
}

/// `logs = "main" | "all" | "none"` or a list of container names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawLogs {
    Mode(String),
    Containers(Vec<String>),
}
