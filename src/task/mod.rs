//! The task: what to run and how to supervise it, checked and ready to become a pod.

mod grant_rules;
mod load;
mod locate;
mod matrix;
mod params;
mod plugin_spec;
mod pod_fields;
mod raw;
mod suggest;
mod validate;
mod volumes;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, LocalObjectReference, Pod, PodSecurityContext,
    ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};

pub use grant_rules::{GrantRules, load_rules};
pub use load::{
    TaskError, declared_params, load, load_given, load_members, load_policies, parse, parse_given,
    problem_at, problem_at_entry,
};
pub use matrix::MAX_MEMBERS;
pub use params::{Given, Param, Source as ParamSource};
pub use plugin_spec::{DEFAULT_MEMORY, DEFAULT_TIMEOUT, Grants, Origin, PluginSpec, default_name};
pub use pod_fields::PodFields;

/// A task file after parsing and validation. Every field is already in the shape the pod
/// builder needs, so building a pod cannot fail on anything the user wrote.
#[derive(Debug, Clone)]
pub struct Task {
    /// The file the task came from; relative paths inside it resolve against its folder.
    pub source: PathBuf,
    pub name: String,
    pub namespace: Option<String>,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFromSource>,
    pub resources: Option<ResourceRequirements>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub node_selector: Option<std::collections::BTreeMap<String, String>>,
    pub tolerations: Option<Vec<Toleration>>,
    pub affinity: Option<Affinity>,
    pub service_account: Option<String>,
    pub image_pull_policy: Option<String>,
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    pub volumes: Vec<Volume>,
    pub volume_mounts: Vec<VolumeMount>,
    pub security_context: Option<PodSecurityContext>,
    pub container_security_context: Option<SecurityContext>,
    pub init_containers: Vec<Container>,
    pub sidecars: Vec<Container>,
    pub active_deadline_seconds: Option<i64>,
    pub termination_grace_period: Option<i64>,
    /// The pod's everyday fields given inline (networking, DNS, scheduling, ports).
    pub pod_fields: PodFields,
    /// The pod the task's fields are merged onto (`pod_template`), already parsed.
    pub template: Option<Pod>,
    pub run: RunPolicy,
    /// Which failures get another attempt, with a new pod.
    pub retry: RetryPolicy,
    /// Mutator plugins, in the order they apply.
    pub mutators: Vec<PluginSpec>,
    /// Validating policies, run on the final pod after every mutator: those imposed from
    /// outside the task file (see [`Task::impose`]) first, then the task file's own.
    pub policies: Vec<PluginSpec>,
    pub interpreters: Vec<PluginSpec>,
    /// The values of the file's parameters (`[params]`, and a matrix member's values).
    pub params: Vec<Param>,
    /// Whether the task is a member of its file's `[matrix]`: such a file runs as a batch.
    pub matrix: bool,
}

impl Task {
    /// Whether the task names any plugin (its own or an imposed policy): without one, no
    /// WebAssembly engine is started for it.
    pub fn has_plugins(&self) -> bool {
        !(self.mutators.is_empty() && self.policies.is_empty() && self.interpreters.is_empty())
    }

    /// Adds policies imposed from outside the task file (the command line, the user's or the
    /// machine's configuration). The task file cannot take one back: an entry of its own with
    /// the name of an imposed policy (which could otherwise switch it to `monitor` or give it
    /// another config) is an error, located in the task file.
    pub fn impose(&mut self, imposed: &[PluginSpec]) -> Result<(), TaskError> {
        let mut seen: Vec<&PluginSpec> = Vec::new();
        for p in imposed {
            if let Some(first) = seen.iter().find(|s| s.name == p.name) {
                return Err(TaskError::Imposed(format!(
                    "policy `{}` is imposed twice, by {} and by {}; give one another `name`",
                    p.name, first.origin, p.origin
                )));
            }
            seen.push(p);
        }
        for (i, own) in self.policies.iter().enumerate() {
            if let Some(theirs) = imposed.iter().find(|p| p.name == own.name) {
                return Err(problem_at_entry(
                    &self.source,
                    "policy",
                    i,
                    format!(
                        "policy `{}` is imposed by {}; a task file cannot redefine it, change its mode or switch it off (use another `name` for a policy of its own)",
                        own.name, theirs.origin
                    ),
                ));
            }
        }
        let own = std::mem::take(&mut self.policies);
        self.policies = imposed.iter().cloned().chain(own).collect();
        Ok(())
    }
}

/// Retries by class of failure, in the spirit of a Job's `podFailurePolicy`: each class has its
/// own budget of extra attempts. No retries by default.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Failures of the infrastructure: eviction, preemption, node loss, the pod deleted by
    /// someone else, an image pull rate limit.
    pub infrastructure: u32,
    /// Non-zero exits of the main container ...
    pub user: u32,
    /// ... limited to these exit codes, when given.
    pub on_exit_codes: Vec<i32>,
    /// `retry` verdicts of interpreter plugins.
    pub plugin: u32,
    /// Runs whose main container never started for a reason a new pod may not meet again: not
    /// scheduled in time, not started in time (a pull back-off that waiting did not heal).
    /// Opt-in: a task that cannot be scheduled is usually a mistake to report, not to repeat.
    pub never_started: u32,
    /// The first pause between attempts; it doubles (with jitter) up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            infrastructure: 0,
            user: 0,
            on_exit_codes: Vec::new(),
            plugin: 0,
            never_started: 0,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// How kpo supervises the pod: timeouts, logs and what to do with the pod afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPolicy {
    /// How long the pod may wait for a node, from submission. When set, `startup_timeout`
    /// counts from the moment a node took the pod, as KubernetesPodOperator's
    /// `schedule_timeout_seconds` and `startup_timeout_seconds` do; when not, `startup_timeout`
    /// counts from submission and covers scheduling too.
    pub schedule_timeout: Option<Duration>,
    /// How long the pod may take to get its main container running (scheduling, image pull).
    pub startup_timeout: Duration,
    /// How long the whole run may take, from submission; `None` waits as long as the pod runs.
    pub timeout: Option<Duration>,
    pub on_finish: OnFinish,
    pub logs: LogSelection,
    /// Print the pod's events when the run fails.
    pub events_on_failure: bool,
    /// Exit codes of the main container that mean "nothing to do": the run is skipped (exit
    /// 99), as if an interpreter ran first and said so — KPO's `skip_on_exit_code`.
    pub skip_on_exit_codes: Vec<i32>,
    /// Where and how the task hands back its result document, if it does.
    pub result: Option<crate::result::ResultSpec>,
    /// Wait until a deleted pod is gone even when only sidecars still run in it (`kpo run
    /// --wait-for-deletion`); by default such a pod is left stopping.
    pub wait_for_deletion: bool,
}

impl Default for RunPolicy {
    fn default() -> Self {
        Self {
            schedule_timeout: None,
            startup_timeout: Duration::from_secs(120),
            timeout: None,
            on_finish: OnFinish::Delete,
            logs: LogSelection::Main,
            events_on_failure: true,
            skip_on_exit_codes: Vec::new(),
            result: None,
            wait_for_deletion: false,
        }
    }
}

/// What happens to the pod once the run is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFinish {
    Delete,
    Keep,
    /// Keep failed pods for inspection, delete the rest.
    DeleteSucceeded,
}

impl OnFinish {
    /// The name the task file uses, also written on the pod so `kpo gc` can apply the policy of
    /// a run whose kpo is gone.
    pub fn name(self) -> &'static str {
        match self {
            OnFinish::Delete => "delete",
            OnFinish::Keep => "keep",
            OnFinish::DeleteSucceeded => "delete_succeeded",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [OnFinish::Delete, OnFinish::Keep, OnFinish::DeleteSucceeded]
            .into_iter()
            .find(|o| o.name() == name)
    }

    /// What becomes of a run's pod, given whether its task succeeded and whether its main
    /// container ever started. A pod whose main container never started could start it later
    /// with no one supervising it (KPO's #59083): under `delete_succeeded` it goes with the
    /// succeeded ones (its events are in the report); under `keep` it is fenced.
    pub fn fate(self, succeeded: bool, started: bool) -> Fate {
        match self {
            OnFinish::Delete => Fate::Delete,
            OnFinish::Keep if started => Fate::Keep,
            OnFinish::Keep => Fate::Fence,
            OnFinish::DeleteSucceeded if started && !succeeded => Fate::Keep,
            OnFinish::DeleteSucceeded => Fate::Delete,
        }
    }
}

/// What becomes of a run's pod at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Delete,
    Keep,
    /// Kept for inspection, but unable to start its workload later: one on a node gets a
    /// deadline it has already outlived (its kubelet fails it and starts nothing more); one no
    /// node took is deleted, as nothing of it ran anywhere and a scheduler would otherwise
    /// start it whenever a node frees up.
    Fence,
}

/// Which containers' logs are streamed while the pod runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSelection {
    None,
    Main,
    All,
    Containers(Vec<String>),
}
