//! Turns the raw task into a checked [`Task`], collecting every problem with the key it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, LocalObjectReference,
    ObjectFieldSelector, Pod, ResourceFieldSelector, ResourceRequirements, SecretEnvSource,
    SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::locate::KeyPath;
use super::plugin_spec::{self, Grants, Origin, PluginSpec};
use super::raw::{
    RawEnvFrom, RawEnvValue, RawLogs, RawPlugin, RawPolicyFile, RawResources, RawResult, RawRetry,
    RawRunPolicy, RawTask,
};
use super::{LogSelection, OnFinish, RetryPolicy, RunPolicy, Task};
use crate::names;
use crate::result::{ResultSpec, Via};
use crate::vocabulary::PolicyMode;

pub type Found = Vec<(KeyPath, String)>;

/// Checks everything that can be checked without a cluster, one part of the task at a time;
/// every problem is collected, so the user sees them all at once.
pub fn validate(mut raw: RawTask, folder: &Path) -> Result<Task, Found> {
    let mut found = Found::new();
    let mut bad = |key: KeyPath, msg: String| found.push((key, msg));
    check_pod_fields(&raw, &mut bad);
    let env = env(std::mem::take(&mut raw.env), &mut bad);
    let env_from = env_from(std::mem::take(&mut raw.env_from), &mut bad);
    let resources = raw.resources.take().map(|r| resources(r, &mut bad));
    let pod_fields = super::pod_fields::pod_fields(&mut raw, &mut bad);
    let (volumes, volume_mounts) = super::volumes::volumes(
        std::mem::take(&mut raw.volumes),
        &mut [&mut raw.sidecars, &mut raw.init_containers],
        &mut bad,
    );
    let template = raw.pod_template.as_ref().and_then(|rel| {
        load_template(&folder.join(rel))
            .map_err(|m| bad(KeyPath::default().key("pod_template"), m))
            .ok()
    });
    let containers = container_names(&raw, template.as_ref(), &mut bad);
    let result = raw.result.take().map(|r| result_spec(r, &mut bad));
    if let Some(policy) = &pod_fields.termination_message_policy
        && policy != "File"
        && result.as_ref().is_some_and(|r| r.via == Via::TerminationMessage)
    {
        bad(
            KeyPath::default().key("termination_message_policy"),
            format!(
                "`{policy}` would hand back the log's end as the result when the file is missing: the result travels by termination message ([result] via), which needs `File`"
            ),
        );
    }
    let run = run_policy(std::mem::take(&mut raw.run), &containers, result, &mut bad);
    let retry = raw
        .retry
        .take()
        .map(|r| retry_policy(r, &mut bad))
        .unwrap_or_default();
    let [mutators, policies, interpreters] = [
        ("mutate", std::mem::take(&mut raw.mutate)),
        ("policy", std::mem::take(&mut raw.policy)),
        ("interpret", std::mem::take(&mut raw.interpret)),
    ]
    .map(|(field, entries)| plugins(entries, field, folder, &Origin::TaskFile, &mut bad));

    if !found.is_empty() {
        return Err(found);
    }
    Ok(Task {
        source: Default::default(),
        name: raw.name,
        namespace: raw.namespace,
        image: raw.image,
        command: raw.command,
        args: raw.args,
        working_dir: raw.working_dir,
        env,
        env_from,
        resources,
        labels: raw.labels,
        annotations: raw.annotations,
        node_selector: raw.node_selector,
        tolerations: raw.tolerations,
        affinity: raw.affinity,
        service_account: raw.service_account,
        image_pull_policy: raw.image_pull_policy,
        image_pull_secrets: raw.image_pull_secrets.map(|names| {
            names
                .into_iter()
                .map(|name| LocalObjectReference { name })
                .collect()
        }),
        volumes,
        volume_mounts,
        security_context: raw.security_context,
        container_security_context: raw.container_security_context,
        init_containers: raw.init_containers,
        sidecars: raw.sidecars,
        active_deadline_seconds: raw.active_deadline_seconds,
        termination_grace_period: raw.termination_grace_period,
        pod_fields,
        template,
        run,
        retry,
        mutators,
        policies,
        interpreters,
        params: Vec::new(),
        matrix: false,
    })
}

/// Checks the fields that go onto the pod as they are: names, image, labels, deadlines.
fn check_pod_fields(raw: &RawTask, bad: &mut impl FnMut(KeyPath, String)) {
    if let Err(m) = names::check_task_name(&raw.name) {
        bad(KeyPath::default().key("name"), m);
    }
    if let Some(ns) = &raw.namespace
        && let Err(m) = names::check_dns_label(ns)
    {
        bad(KeyPath::default().key("namespace"), m);
    }
    if raw.image.trim().is_empty() || raw.image.contains(char::is_whitespace) {
        bad(
            KeyPath::default().key("image"),
            "must be a non-empty image reference without spaces".into(),
        );
    }
    if let Some(policy) = &raw.image_pull_policy
        && !["Always", "IfNotPresent", "Never"].contains(&policy.as_str())
    {
        bad(
            KeyPath::default().key("image_pull_policy"),
            format!("`{policy}` is not one of Always, IfNotPresent, Never"),
        );
    }

    for (field, map) in [("labels", &raw.labels), ("annotations", &raw.annotations)] {
        for (k, v) in map {
            if let Err(m) = names::check_qualified_name(k) {
                bad(KeyPath::default().key(field).key(k), m);
            } else if names::reserved(k) {
                bad(KeyPath::default().key(field).key(k), reserved_key(k));
            } else if field == "labels"
                && let Err(m) = names::check_label_value(v)
            {
                bad(KeyPath::default().key(field).key(k), m);
            }
        }
    }

    if let Some(s) = raw.active_deadline_seconds
        && s <= 0
    {
        bad(
            KeyPath::default().key("active_deadline_seconds"),
            "must be a positive number of seconds".into(),
        );
    }
    if let Some(s) = raw.termination_grace_period
        && s < 0
    {
        bad(
            KeyPath::default().key("termination_grace_period"),
            "must not be negative".into(),
        );
    }
}

/// Checks `[env]`: each variable a literal or a reference to a Secret or ConfigMap key.
fn env(raw: indexmap::IndexMap<String, RawEnvValue>, bad: &mut impl FnMut(KeyPath, String)) -> Vec<EnvVar> {
    let mut env = Vec::new();
    for (name, value) in raw {
        let key = KeyPath::default().key("env").key(&name);
        if let Err(m) = names::check_env_name(&name) {
            bad(key.clone(), m);
        }
        let var = match value {
            RawEnvValue::Literal(v) => EnvVar {
                name,
                value: Some(v),
                value_from: None,
            },
            RawEnvValue::From(r) => match env_source(r, &key) {
                Ok(source) => EnvVar {
                    name,
                    value: None,
                    value_from: Some(source),
                },
                Err((at, m)) => {
                    bad(at, m);
                    continue;
                }
            },
        };
        env.push(var);
    }
    env
}

/// Where a variable's value comes from: a Secret's or ConfigMap's key, or the downward API (a
/// field of the pod, a resource of a container).
fn env_source(r: super::raw::RawEnvRef, key: &KeyPath) -> Result<EnvVarSource, (KeyPath, String)> {
    let kinds = [
        r.secret.is_some(),
        r.config_map.is_some(),
        r.field.is_some(),
        r.resource.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err((
            key.clone(),
            "needs exactly one of `secret`, `config_map` (with `key`), `field` or `resource`".into(),
        ));
    }
    let needs_key = || {
        r.key
            .clone()
            .ok_or_else(|| (key.clone(), "needs `key`: which key of it".to_owned()))
    };
    let misplaced = |what: &str, with: &str| (key.clone().key(what), format!("goes with `{with}` only"));
    if r.key.is_some() && (r.field.is_some() || r.resource.is_some()) {
        return Err(misplaced("key", "secret` or `config_map"));
    }
    if r.resource.is_none() {
        if r.container.is_some() {
            return Err(misplaced("container", "resource"));
        }
        if r.divisor.is_some() {
            return Err(misplaced("divisor", "resource"));
        }
    }
    if let Some(name) = r.secret {
        return Ok(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name,
                key: needs_key()?,
                optional: r.optional,
            }),
            ..Default::default()
        });
    }
    if let Some(name) = r.config_map {
        return Ok(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name,
                key: needs_key()?,
                optional: r.optional,
            }),
            ..Default::default()
        });
    }
    if r.optional.is_some() {
        return Err(misplaced("optional", "secret` or `config_map"));
    }
    if let Some(field_path) = r.field {
        let known = FIELDS.contains(&field_path.as_str())
            || ["metadata.labels['", "metadata.annotations['"]
                .iter()
                .any(|p| field_path.starts_with(p) && field_path.ends_with("']"));
        if !known {
            return Err((
                key.clone().key("field"),
                format!(
                    "`{field_path}` is not a field the downward API gives: one of {}, metadata.labels['…'], metadata.annotations['…']",
                    FIELDS.join(", ")
                ),
            ));
        }
        return Ok(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path,
                api_version: None,
            }),
            ..Default::default()
        });
    }
    let resource = r.resource.unwrap_or_default();
    if !RESOURCES.contains(&resource.as_str()) {
        return Err((
            key.clone().key("resource"),
            format!("`{resource}` is not one of {}", RESOURCES.join(", ")),
        ));
    }
    if let Some(d) = &r.divisor
        && let Err(m) = names::check_quantity(d)
    {
        return Err((key.clone().key("divisor"), m));
    }
    Ok(EnvVarSource {
        resource_field_ref: Some(ResourceFieldSelector {
            resource,
            container_name: r.container,
            divisor: r.divisor.map(Quantity),
        }),
        ..Default::default()
    })
}

/// The pod fields the downward API gives to environment variables (besides single labels and
/// annotations).
const FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.podIP",
    "status.podIPs",
    "status.hostIPs",
];

/// The container resources the downward API gives.
const RESOURCES: [&str; 6] = [
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

/// Checks `env_from`: whole Secrets or ConfigMaps as variables.
fn env_from(raw: Vec<RawEnvFrom>, bad: &mut impl FnMut(KeyPath, String)) -> Vec<EnvFromSource> {
    let mut env_from = Vec::new();
    for (i, e) in raw.into_iter().enumerate() {
        let (config_map_ref, secret_ref) = match (e.secret, e.config_map) {
            (Some(name), None) => (
                None,
                Some(SecretEnvSource {
                    name,
                    optional: e.optional,
                }),
            ),
            (None, Some(name)) => (
                Some(ConfigMapEnvSource {
                    name,
                    optional: e.optional,
                }),
                None,
            ),
            _ => {
                bad(
                    KeyPath::default().key("env_from").index(i),
                    "needs exactly one of `secret` or `config_map`".into(),
                );
                continue;
            }
        };
        env_from.push(EnvFromSource {
            config_map_ref,
            secret_ref,
            prefix: e.prefix,
        });
    }
    env_from
}

/// Checks `[resources]`: every quantity in Kubernetes' own notation.
fn resources(r: RawResources, bad: &mut impl FnMut(KeyPath, String)) -> ResourceRequirements {
    let mut quantities = |which: &str, map: BTreeMap<String, String>| {
        let checked: BTreeMap<String, Quantity> = map
            .into_iter()
            .inspect(|(name, q)| {
                if let Err(m) = names::check_quantity(q) {
                    bad(KeyPath::default().key("resources").key(which).key(name), m);
                }
            })
            .map(|(name, q)| (name, Quantity(q)))
            .collect();
        (!checked.is_empty()).then_some(checked)
    };
    ResourceRequirements {
        requests: quantities("requests", r.requests),
        limits: quantities("limits", r.limits),
        ..Default::default()
    }
}

/// Checks the extra containers' names and images; every container name of the pod, for `logs`.
fn container_names(
    raw: &RawTask,
    template: Option<&Pod>,
    bad: &mut impl FnMut(KeyPath, String),
) -> BTreeSet<String> {
    let mut container_names = BTreeSet::from([crate::vocabulary::MAIN_CONTAINER.to_owned()]);
    for (field, list) in [
        ("init_containers", &raw.init_containers),
        ("sidecars", &raw.sidecars),
    ] {
        for (i, c) in list.iter().enumerate() {
            let key = KeyPath::default().key(field).index(i);
            if let Err(m) = names::check_dns_label(&c.name) {
                bad(key.clone().key("name"), m);
            } else if !container_names.insert(c.name.clone()) {
                bad(
                    key.clone().key("name"),
                    format!("container name `{}` is already used", c.name),
                );
            }
            if c.image.as_deref().is_none_or(str::is_empty) {
                bad(key.key("image"), "is required".into());
            }
        }
    }

    if let Some(t) = template {
        let spec = t.spec.iter();
        container_names.extend(spec.flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .map(|c| c.name.clone())
        }));
    }
    container_names
}

/// Checks `[run]`: durations, the clean-up policy, which logs to stream.
fn run_policy(
    raw: RawRunPolicy,
    containers: &BTreeSet<String>,
    result: Option<ResultSpec>,
    bad: &mut impl FnMut(KeyPath, String),
) -> RunPolicy {
    let run_key = || KeyPath::default().key("run");
    let mut duration = |name: &str, value: Option<String>| -> Option<Duration> {
        let text = value?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(m) => {
                bad(run_key().key(name), m);
                None
            }
        }
    };
    let defaults = RunPolicy::default();
    let startup_timeout =
        duration("startup_timeout", raw.startup_timeout).unwrap_or(defaults.startup_timeout);
    let timeout = duration("timeout", raw.timeout);
    let schedule_timeout = duration("schedule_timeout", raw.schedule_timeout);
    let skip_on_exit_codes = raw.skip_on_exit_codes.unwrap_or_default();
    if skip_on_exit_codes.contains(&0) {
        bad(
            run_key().key("skip_on_exit_codes"),
            "0 is success; only a failing exit code can mean \"skip\"".into(),
        );
    }
    let on_finish = match raw.on_finish.as_deref() {
        None => OnFinish::Delete,
        Some(name) if let Some(o) = OnFinish::from_name(name) => o,
        Some(other) => {
            bad(
                run_key().key("on_finish"),
                format!("`{other}` is not one of delete, keep, delete_succeeded"),
            );
            OnFinish::Delete
        }
    };
    let logs = match raw.logs {
        None => LogSelection::Main,
        Some(RawLogs::Mode(m)) => match m.as_str() {
            "main" => LogSelection::Main,
            "all" => LogSelection::All,
            "none" => LogSelection::None,
            other => {
                bad(
                    run_key().key("logs"),
                    format!("`{other}` is not one of main, all, none, or a list of container names"),
                );
                LogSelection::Main
            }
        },
        Some(RawLogs::Containers(list)) => {
            for name in list.iter().filter(|n| !containers.contains(*n)) {
                bad(
                    run_key().key("logs"),
                    format!("no container named `{name}` in this task"),
                );
            }
            LogSelection::Containers(list)
        }
    };
    RunPolicy {
        schedule_timeout,
        startup_timeout,
        timeout,
        on_finish,
        logs,
        events_on_failure: raw.events_on_failure.unwrap_or(defaults.events_on_failure),
        skip_on_exit_codes,
        result,
        wait_for_deletion: false,
    }
}

/// Checks `[retry]`.
fn retry_policy(raw: RawRetry, bad: &mut impl FnMut(KeyPath, String)) -> RetryPolicy {
    let mut policy = RetryPolicy {
        infrastructure: raw.infrastructure.unwrap_or(0),
        user: raw.user.unwrap_or(0),
        on_exit_codes: raw.on_exit_codes.unwrap_or_default(),
        plugin: raw.plugin.unwrap_or(0),
        never_started: raw.never_started.unwrap_or(0),
        ..RetryPolicy::default()
    };
    for (name, value, slot) in [
        ("backoff", raw.backoff, &mut policy.backoff),
        ("max_backoff", raw.max_backoff, &mut policy.max_backoff),
    ] {
        if let Some(text) = value {
            match parse_duration(&text) {
                Ok(d) => *slot = d,
                Err(e) => bad(KeyPath::default().key("retry").key(name), e),
            }
        }
    }
    policy
}

/// Checks `[result]`.
fn result_spec(raw: RawResult, bad: &mut impl FnMut(KeyPath, String)) -> ResultSpec {
    let key = |k: &str| KeyPath::default().key("result").key(k);
    let mut spec = ResultSpec::default();
    if let Some(path) = raw.path {
        if !path.starts_with('/') || path.ends_with('/') {
            bad(
                key("path"),
                format!("`{path}` must be an absolute path to a file"),
            );
        }
        spec.path = path;
    }
    spec.required = raw.required.unwrap_or(false);
    spec.via = match raw.via.as_deref() {
        None | Some("termination-message") => Via::TerminationMessage,
        Some("sidecar") => Via::Sidecar,
        Some(other) => {
            bad(
                key("via"),
                format!("`{other}` is not one of termination-message, sidecar"),
            );
            Via::TerminationMessage
        }
    };
    if let Some(m) = raw.max_size {
        match names::check_quantity(&m) {
            Ok(()) => spec.max_size = names::quantity_value(&m) as u64,
            Err(e) => bad(key("max_size"), e),
        }
    }
    if let Some(image) = raw.sidecar_image {
        spec.sidecar_image = image;
    }
    if let Some(w) = raw.wait {
        match parse_duration(&w) {
            Ok(d) => spec.wait = d,
            Err(e) => bad(key("wait"), e),
        }
    }
    spec
}

/// Checks a policy file's `[[policy]]` entries, as a task file's.
pub fn policy_file(raw: RawPolicyFile, folder: &Path, origin: &Origin) -> Result<Vec<PluginSpec>, Found> {
    let mut found = Found::new();
    let specs = plugins(raw.policy, "policy", folder, origin, &mut |k, m| {
        found.push((k, m))
    });
    if found.is_empty() { Ok(specs) } else { Err(found) }
}

/// Checks `[[mutate]]`, `[[policy]]` or `[[interpret]]` entries: the file exists, limits parse,
/// names are unique, each key fits the role.
fn plugins(
    raw: Vec<RawPlugin>,
    field: &str,
    folder: &Path,
    origin: &Origin,
    bad: &mut impl FnMut(KeyPath, String),
) -> Vec<PluginSpec> {
    let mut names = BTreeSet::new();
    let mut specs = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let key = || KeyPath::default().key(field).index(i);
        let path = folder.join(&p.path);
        if !path.is_file() {
            bad(key().key("path"), format!("no plugin file at {}", path.display()));
        }
        let name = p.name.unwrap_or_else(|| plugin_spec::default_name(&path));
        if !names.insert(name.clone()) {
            bad(
                key().key("name"),
                format!("plugin name `{name}` is used twice; give one a `name`"),
            );
        }
        let timeout = match p.timeout.as_deref().map(parse_duration) {
            None => plugin_spec::DEFAULT_TIMEOUT,
            Some(Ok(t)) => t,
            Some(Err(m)) => {
                bad(key().key("timeout"), m);
                plugin_spec::DEFAULT_TIMEOUT
            }
        };
        let memory = match p.memory.as_deref().map(|m| names::check_quantity(m).map(|()| m)) {
            None => plugin_spec::DEFAULT_MEMORY,
            Some(Ok(m)) => names::quantity_value(m) as u64,
            Some(Err(e)) => {
                bad(key().key("memory"), e);
                plugin_spec::DEFAULT_MEMORY
            }
        };
        let mode = match p.mode.as_deref() {
            None => PolicyMode::Enforce,
            Some(m) if field != "policy" => {
                bad(
                    key().key("mode"),
                    format!("`mode = \"{m}\"` applies only to [[policy]] entries"),
                );
                PolicyMode::Enforce
            }
            Some(m) => PolicyMode::from_name(m).unwrap_or_else(|| {
                bad(
                    key().key("mode"),
                    format!("`{m}` is not a policy mode (write \"enforce\" or \"monitor\")"),
                );
                PolicyMode::Enforce
            }),
        };
        if p.writable.is_some() && field != "mutate" {
            bad(
                key().key("writable"),
                format!(
                    "only a mutator changes the pod: `writable` applies to [[mutate]] entries, not [[{field}]]"
                ),
            );
        }
        for w in p.writable.iter().flatten().filter(|w| !w.starts_with('/')) {
            bad(
                key().key("writable"),
                format!("`{w}` is not a JSON pointer (write e.g. \"/metadata/labels\")"),
            );
        }
        let mut dirs = Vec::new();
        for d in &p.grant.dirs {
            match d.split_once(':') {
                Some((host, guest)) if guest.starts_with('/') => {
                    dirs.push((folder.join(host), guest.to_owned()))
                }
                _ => bad(
                    key().key("grant").key("dirs"),
                    format!("`{d}` is not \"host/path:/guest/path\""),
                ),
            }
        }
        specs.push(PluginSpec {
            name,
            path,
            config: p.config.unwrap_or_else(|| serde_json::json!({})),
            timeout,
            memory,
            writable: p.writable,
            grants: Grants {
                env: p.grant.env,
                clock: p.grant.clock,
                dirs,
            },
            mode,
            origin: origin.clone(),
        });
    }
    specs
}

/// Accepts `"90s"`, `"2m"`, `"1h 30m"` and ISO 8601 (`"PT2M"`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write e.g. \"90s\", \"2m\", \"1h 30m\")"))?;
    Duration::try_from(d)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` must be a positive duration"))
}

/// Why a task file or template may not set `key`.
fn reserved_key(key: &str) -> String {
    format!(
        "`{key}`: the `{}` prefix is kpo's own (kpo sets these keys and acts on them); use a prefix of yours, e.g. `example.com/`",
        names::RESERVED_PREFIX
    )
}

/// Reads a pod template in kubectl's format (YAML or JSON).
///
/// A file named by mistake may hold a secret (a token, a kubeconfig): errors say what is wrong
/// with it in a short escaped excerpt at most, never its content whole.
fn load_template(path: &Path) -> Result<Pod, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pod template {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
        format!(
            "pod template {} is not valid YAML or JSON: {}",
            path.display(),
            excerpt(&e.to_string())
        )
    })?;
    if !value.is_object() {
        return Err(format!(
            "pod template {} is not a Pod: it holds no YAML mapping",
            path.display()
        ));
    }
    match value.get("kind").and_then(|k| k.as_str()) {
        Some("Pod") | None => {}
        Some(kind) => {
            return Err(format!(
                "pod template {} is a {}, not a Pod",
                path.display(),
                excerpt(kind)
            ));
        }
    }
    let pod: Pod = serde_json::from_value(value).map_err(|e| {
        format!(
            "pod template {} is not a valid Pod: {}",
            path.display(),
            excerpt(&e.to_string())
        )
    })?;
    let meta = &pod.metadata;
    let keys = meta.labels.iter().chain(&meta.annotations).flat_map(|m| m.keys());
    if let Some(key) = keys.into_iter().find(|k| names::reserved(k)) {
        return Err(format!(
            "pod template {} sets {}",
            path.display(),
            reserved_key(key)
        ));
    }
    Ok(pod)
}

/// At most the first 100 bytes of the first line of a message about a file's content, escaped.
fn excerpt(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    crate::said::inert(first, 100).into_owned()
}
