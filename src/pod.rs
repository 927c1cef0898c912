//! Building the pod: a pure function of the task and the run's identity.
//!
//! Nothing here talks to a cluster, so `kpo render` prints exactly what `kpo run` submits.

use std::collections::BTreeMap;

use k8s_openapi::DeepMerge;
use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, Pod, PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::names::pod_name_stem;
use crate::result::{ResultSpec, Via};
use crate::task::Task;
use crate::vocabulary::MAIN_CONTAINER;

/// Label carrying the task name, to find every run of a task.
pub const LABEL_TASK: &str = "kpo.dev/task";
/// Label carrying the run id, to find the pod of one run again.
pub const LABEL_RUN_ID: &str = "kpo.dev/run-id";
/// Label carrying the id of the batch the run belongs to, when it is one of many: one watch
/// selects every pod of a batch by it.
pub const LABEL_BATCH: &str = "kpo.dev/batch";
/// Label carrying the attempt number of the run the pod belongs to.
pub const LABEL_ATTEMPT: &str = "kpo.dev/attempt";
/// Annotation carrying the task's `on_finish`, so `kpo gc` applies it when the run's kpo is gone.
pub const ANNOTATION_ON_FINISH: &str = "kpo.dev/on-finish";
/// Annotation carrying the namespace of a batch member's batch — where its claim, and so its
/// record of the member's pods, lives — when the member runs in another.
pub const ANNOTATION_BATCH_NAMESPACE: &str = "kpo.dev/batch-namespace";
/// Standard label marking objects kpo manages.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// What makes one run of a task distinct from every other: chosen once, before building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub run_id: String,
    pub pod_name: String,
    /// 1 for the first pod of a run; each retry gets a new pod and the next number.
    pub attempt: u32,
    /// The batch the run is part of, if any.
    pub batch: Option<String>,
    /// The namespace the batch is claimed in, if any.
    pub batch_namespace: Option<String>,
}

impl RunIdentity {
    /// A fresh identity: a random run id and a pod name of the task's DNS-safe name and a suffix.
    pub fn generate(task_name: &str) -> Self {
        let run_id: String = std::iter::repeat_with(|| fastrand::alphanumeric().to_ascii_lowercase())
            .take(12)
            .collect();
        let suffix = crate::names::random_suffix(5);
        Self {
            run_id,
            pod_name: format!("{}-{suffix}", pod_name_stem(task_name)),
            attempt: 1,
            batch: None,
            batch_namespace: None,
        }
    }

    /// The identity of the run's next attempt: same run id, a new pod.
    pub fn next_attempt(&self, task_name: &str) -> Self {
        let suffix = crate::names::random_suffix(5);
        Self {
            run_id: self.run_id.clone(),
            pod_name: format!("{}-{suffix}", pod_name_stem(task_name)),
            attempt: self.attempt + 1,
            batch: self.batch.clone(),
            batch_namespace: self.batch_namespace.clone(),
        }
    }
}

/// Builds the pod to submit for `task` in `namespace`.
///
/// The task's fields are merged onto its pod template (if any) with Kubernetes' strategic-merge
/// keys — containers, volumes and env by name, never by position — and the task wins. The run's
/// identity, `restartPolicy: Never` and the kpo labels are applied last, so no template can undo them.
pub fn build(task: &Task, identity: &RunIdentity, namespace: &str) -> Pod {
    let main = Container {
        name: MAIN_CONTAINER.to_owned(),
        image: Some(task.image.clone()),
        command: task.command.clone(),
        args: task.args.clone(),
        working_dir: task.working_dir.clone(),
        env: non_empty(task.env.clone()),
        env_from: non_empty(task.env_from.clone()),
        resources: task.resources.clone(),
        volume_mounts: non_empty(task.volume_mounts.clone()),
        security_context: task.container_security_context.clone(),
        image_pull_policy: task.image_pull_policy.clone(),
        ports: non_empty(task.pod_fields.ports.clone()),
        termination_message_policy: task.pod_fields.termination_message_policy.clone(),
        ..Default::default()
    };
    let active_deadline_seconds = task.active_deadline_seconds.or_else(|| {
        // The dead-man switch: if kpo dies, the kubelet still stops the pod at the task's timeout.
        task.run.timeout.map(|t| t.as_secs_f64().ceil() as i64)
    });
    let overlay = Pod {
        metadata: ObjectMeta {
            labels: non_empty_map(task.labels.clone()),
            annotations: non_empty_map(task.annotations.clone()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: std::iter::once(main)
                .chain(task.sidecars.iter().cloned())
                .collect(),
            init_containers: non_empty(task.init_containers.clone()),
            volumes: non_empty(task.volumes.clone()),
            node_selector: task.node_selector.clone(),
            tolerations: task.tolerations.clone(),
            affinity: task.affinity.clone(),
            service_account_name: task.service_account.clone(),
            image_pull_secrets: task.image_pull_secrets.clone(),
            security_context: task.security_context.clone(),
            active_deadline_seconds,
            termination_grace_period_seconds: task.termination_grace_period,
            ..task.pod_fields.spec.clone()
        }),
        status: None,
    };

    let mut pod = match &task.template {
        Some(template) => {
            let mut base = template.clone();
            // Identity and server-owned fields of the template's source object must not leak in.
            base.metadata = ObjectMeta {
                labels: base.metadata.labels.take(),
                annotations: base.metadata.annotations.take(),
                ..Default::default()
            };
            base.status = None;
            base.merge_from(overlay);
            base
        }
        None => overlay,
    };

    pod.metadata.name = Some(identity.pod_name.clone());
    pod.metadata.namespace = Some(namespace.to_owned());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_TASK.to_owned(), task.name.clone());
    labels.insert(LABEL_RUN_ID.to_owned(), identity.run_id.clone());
    labels.insert(LABEL_ATTEMPT.to_owned(), identity.attempt.to_string());
    if let Some(batch) = &identity.batch {
        labels.insert(LABEL_BATCH.to_owned(), batch.clone());
    }
    labels.insert(LABEL_MANAGED_BY.to_owned(), "kpo".to_owned());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        ANNOTATION_ON_FINISH.to_owned(),
        task.run.on_finish.name().to_owned(),
    );
    if let Some(home) = identity.batch_namespace.as_ref().filter(|h| *h != namespace) {
        annotations.insert(ANNOTATION_BATCH_NAMESPACE.to_owned(), home.clone());
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.restart_policy = Some("Never".to_owned());
    if let Some(result) = &task.run.result {
        add_result_channel(spec, result, task.run.timeout);
    }
    pod
}

/// Makes the result file come back: as the main container's termination message, or through
/// a sidecar sharing the file's folder.
fn add_result_channel(spec: &mut PodSpec, result: &ResultSpec, timeout: Option<std::time::Duration>) {
    let Some(main) = spec.containers.iter_mut().find(|c| c.name == MAIN_CONTAINER) else {
        return;
    };
    match result.via {
        Via::TerminationMessage => {
            main.termination_message_path = Some(result.path.clone());
            main.termination_message_policy = Some("File".to_owned());
        }
        Via::Sidecar => {
            main.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(crate::result::mount(result));
            spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: crate::result::SIDECAR.to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
            // Without a run timeout the sidecar still gives up after a day.
            let wait = timeout.unwrap_or(std::time::Duration::from_secs(24 * 3600));
            spec.containers.push(crate::result::sidecar(result, wait));
        }
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

/// The attempt a pod of a run is, by its label (1 without it).
pub fn attempt_of(pod: &Pod) -> u32 {
    pod.labels()
        .get(LABEL_ATTEMPT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
}
