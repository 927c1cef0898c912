//! The simulated kubelet and scheduler: drives each pod from Pending to Succeeded or Failed,
//! writing container statuses, logs and events as a real node would.
//!
//! What happens to a pod is scripted by annotations, so any task file can be rehearsed:
//! `container.sim.kpo.dev/<container>` holds a JSON [`Script`], and
//! `pod.sim.kpo.dev/schedule: never` keeps the pod unschedulable. A real cluster ignores both.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;

use super::store::{ChangeKind, Store};

pub const NODE_NAME: &str = "sim-node";
/// Annotation prefix of per-container scripts.
pub const SCRIPT_PREFIX: &str = "container.sim.kpo.dev/";
/// Annotation that keeps a pod from ever being scheduled.
pub const SCHEDULE_ANNOTATION: &str = "pod.sim.kpo.dev/schedule";
/// What the node offers; pods requesting more stay Pending with the scheduler's reason.
const NODE_CPU_MILLIS: f64 = 4000.0;
const NODE_MEMORY_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;
const NODE_LABELS: [(&str, &str); 3] = [
    ("kubernetes.io/hostname", NODE_NAME),
    ("kubernetes.io/os", "linux"),
    ("kubernetes.io/arch", "amd64"),
];

/// What one container does, from its `container.sim.kpo.dev/<name>` annotation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Script {
    /// Exit code when it finishes by itself.
    pub exit_code: i32,
    /// Lines printed, in order.
    pub logs: Vec<String>,
    /// Further generated lines `line 1`, `line 2`, ...
    pub log_count: usize,
    /// Pause after each line.
    pub log_interval_ms: u64,
    /// After the lines, one line of this many bytes (a repeating `0-9a-z` pattern) and its
    /// newline ...
    pub long_line: Option<usize>,
    /// ... then these bytes, exactly as given: each character up to U+00FF is one byte (so
    /// `"\u00ff"` is the byte 0xFF, invalid UTF-8), no newline added.
    pub output: Option<String>,
    /// Total run time; without it a container exits after its logs (a native sidecar runs on).
    pub duration_ms: Option<u64>,
    /// Ends as OOMKilled with exit code 137.
    pub oom: bool,
    pub termination_message: Option<String>,
    /// Ignores SIGTERM, so deletion waits for the whole grace period.
    pub ignore_sigterm: bool,
    /// `ok` (default), `not-found`, `unauthorized` or `rate-limited`.
    pub pull: Option<String>,
    /// Time the image pull takes: a slow start.
    pub pull_ms: u64,
    /// A file the container writes before it exits (its `terminationMessagePath`, or a file a
    /// sidecar reads) ...
    pub write_path: Option<String>,
    /// ... with this content ...
    pub write: Option<String>,
    /// ... or with a JSON document of exactly this many bytes (see [`filler_document`]).
    pub write_size: Option<usize>,
}

/// A JSON document of exactly `size` bytes (at least 13), the same for every call: large
/// results for tests, checkable byte for byte.
pub fn filler_document(size: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut doc = b"{\"filler\":\"".to_vec();
    doc.extend((0..size.saturating_sub(13)).map(|i| alphabet[i % alphabet.len()]));
    doc.extend(b"\"}");
    doc
}

impl Script {
    pub fn parse(text: &str) -> Result<Self, String> {
        let script: Script = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match script.pull.as_deref() {
            None | Some("ok" | "not-found" | "unauthorized" | "rate-limited") => Ok(script),
            Some(other) => Err(format!("unknown pull outcome {other:?}")),
        }
    }

    fn of(pod: &Pod, container: &str) -> Self {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(&format!("{SCRIPT_PREFIX}{container}")))
            .and_then(|s| Script::parse(s).ok())
            .unwrap_or_default()
    }
}

/// Which container a log request reads, with the API server's errors for bad requests.
pub fn log_container(pod: &Pod, requested: Option<&str>) -> Result<String, String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let container = match requested {
        Some(c) => c.to_owned(),
        None if spec.containers.len() == 1 => spec.containers[0].name.clone(),
        None => {
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            ));
        }
    };
    if !all.iter().any(|c| c.name == container) {
        return Err(format!("container {container} is not valid for pod {name}"));
    }
    let status = crate::status::of(pod, &container);
    let waiting = status
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let never_ran = status.is_none_or(|s| {
        s.last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .is_none()
    });
    if let Some(w) = waiting
        .filter(|_| never_ran)
        .map(|w| w.reason.clone().unwrap_or_default())
        .or_else(|| status.is_none().then(|| "ContainerCreating".to_owned()))
    {
        return Err(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {w}"
        ));
    }
    Ok(container)
}

/// One pod's life on the node.
struct Node {
    store: Arc<Store>,
    faults: Arc<super::faults::Faults>,
    ns: String,
    name: String,
    uid: String,
    /// Containers are removed as soon as they exit (see `Faults::remove_containers`).
    removes_containers: bool,
}

/// How a deletion request ended the wait.
enum Deletion {
    Graceful(i64),
    Gone,
}

/// Runs the pod until it is deleted. Spawned once per created pod.
pub async fn run(store: Arc<Store>, faults: Arc<super::faults::Faults>, pod: Pod) {
    let removes_containers = faults.take_container_removal();
    let node = Node {
        store,
        faults,
        removes_containers,
        ns: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    };
    let deletion = node.deletion();
    tokio::pin!(deletion);
    let deadline = pod
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s.max(0) as u64));
    let deadline_passes = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline_passes);
    let evict = node.faults.take_eviction();
    let preempt = node.faults.take_preemption();
    let finished = tokio::select! {
        () = node.lifecycle(&pod) => None,
        () = node.preemption(), if preempt => {
            node.kill(&pod, 0).await;
            node.remove();
            return;
        }
        () = node.eviction(), if evict => {
            // Evicted: the pod ends with the kubelet's reason, and is not deleted by itself.
            if let Deletion::Graceful(_) = deletion.await {
                node.remove();
            }
            return;
        }
        () = &mut deadline_passes => Some(()),
        d = &mut deletion => match d {
            Deletion::Gone => return,
            Deletion::Graceful(grace) => {
                let killed = node.kill(&pod, grace);
                tokio::pin!(killed);
                tokio::select! {
                    () = &mut killed => node.remove(),
                    () = &mut deadline_passes => {
                        // As a v1.20 kubelet does: a pod that fails its deadline while it is
                        // being deleted is never removed; only a force delete takes it away.
                        node.deadline_exceeded(&pod);
                        tokio::select! {
                            () = killed => node.removed().await,
                            () = node.removed() => {}
                        }
                    }
                }
                return;
            }
        },
    };
    if finished.is_some() {
        node.kill(&pod, 0).await;
        node.deadline_exceeded(&pod);
    }
    if let Deletion::Graceful(_) = deletion.await {
        node.remove();
    }
}

impl Node {
    fn update(&self, f: impl FnOnce(&mut Pod)) -> Option<Pod> {
        self.store.update_pod(&self.ns, &self.name, &self.uid, f)
    }

    fn event(&self, pod: &Pod, kind: &str, reason: &str, message: &str) {
        self.store.record_event(pod, kind, reason, message, "kubelet");
    }

    fn deadline_exceeded(&self, pod: &Pod) {
        let message = "Pod was active on the node longer than the specified deadline";
        self.store
            .record_event(pod, "Warning", "DeadlineExceeded", message, "kubelet");
        self.update(|p| {
            let status = p.status.get_or_insert_with(Default::default);
            status.phase = Some("Failed".into());
            status.reason = Some("DeadlineExceeded".into());
            status.message = Some(message.into());
        });
    }

    /// Waits until the pod is removed from the store by someone else.
    async fn removed(&self) {
        let mut changes = self.store.subscribe();
        while self.store.get_pod(&self.ns, &self.name, &self.uid).is_some() {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
                return;
            }
        }
    }

    /// Waits until someone asks to delete the pod, or it is removed outright.
    async fn deletion(&self) -> Deletion {
        let mut changes = self.store.subscribe();
        loop {
            match self.store.get_pod(&self.ns, &self.name, &self.uid) {
                None => return Deletion::Gone,
                Some(p) if p.metadata.deletion_timestamp.is_some() => {
                    return Deletion::Graceful(p.metadata.deletion_grace_period_seconds.unwrap_or(30));
                }
                Some(_) => {}
            }
            // Any change may be ours; re-read the store rather than trusting a lagged channel.
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
                return Deletion::Gone;
            }
        }
    }

    fn remove(&self) {
        let mut inner = self.store.lock();
        if let Some(pod) = inner.pods.get(&(self.ns.clone(), self.name.clone())).cloned()
            && pod.metadata.uid.as_deref() == Some(&self.uid)
        {
            self.store.commit(&mut inner, ChangeKind::Deleted, pod);
        }
    }

    /// Waits until the pod runs, then preempts it as the scheduler does: a DisruptionTarget
    /// condition and a Preempted event, then a deletion.
    async fn preemption(&self) {
        self.wait_running().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let message = "Kubernetes default scheduler: preempting to accommodate a higher priority pod";
        let Some(pod) = self.update(|p| {
            set_condition(
                p,
                "DisruptionTarget",
                "True",
                Some("PreemptionByScheduler"),
                Some(message),
            );
            p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            p.metadata.deletion_grace_period_seconds = Some(0);
        }) else {
            return;
        };
        let why = format!("Preempted by pod {} on node {NODE_NAME}", super::validate::uid());
        self.store
            .record_event(&pod, "Normal", "Preempted", &why, "default-scheduler");
    }

    async fn wait_running(&self) {
        loop {
            let running = self
                .store
                .get_pod(&self.ns, &self.name, &self.uid)
                .is_some_and(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
            if running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the pod runs, then evicts it: containers killed, phase Failed, reason
    /// Evicted and a DisruptionTarget condition, in one status update, as the kubelet writes it.
    async fn eviction(&self) {
        self.wait_running().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 20Mi. ";
        let Some(pod) = self.update(|p| {
            let now = Some(Time(Timestamp::now()));
            let status = p.status.get_or_insert_with(Default::default);
            for s in status
                .container_statuses
                .iter_mut()
                .flatten()
                .chain(status.init_container_statuses.iter_mut().flatten())
            {
                let started_at = s
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|r| r.started_at.clone());
                if s.state.as_ref().is_some_and(|st| st.terminated.is_none()) {
                    s.state = Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: 137,
                            reason: Some("Error".into()),
                            started_at,
                            finished_at: now.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    s.ready = false;
                }
            }
            status.phase = Some("Failed".into());
            status.reason = Some("Evicted".into());
            status.message = Some(message.into());
            set_condition(
                p,
                "DisruptionTarget",
                "True",
                Some("TerminationByKubelet"),
                Some(message),
            );
        }) else {
            return;
        };
        for s in crate::status::all(&pod) {
            self.store
                .finish_log(&self.uid, &s.name, self.faults.log_limits());
        }
        self.event(&pod, "Warning", "Evicted", message);
    }

    async fn lifecycle(&self, created: &Pod) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Some(why) = unschedulable(created) {
            self.update(|p| {
                set_condition(p, "PodScheduled", "False", Some("Unschedulable"), Some(&why));
            });
            self.store
                .record_event(created, "Warning", "FailedScheduling", &why, "default-scheduler");
            return std::future::pending().await;
        }
        let spec = created.spec.clone().unwrap_or_default();
        let inits = spec.init_containers.clone().unwrap_or_default();
        let Some(pod) = self.update(|p| {
            let spec = p.spec.get_or_insert_with(Default::default);
            spec.node_name = Some(NODE_NAME.into());
            let status = p.status.get_or_insert_with(Default::default);
            status.start_time = Some(Time(Timestamp::now()));
            status.host_ip = Some("127.0.0.1".into());
            status.pod_ip = Some("10.244.0.7".into());
            let waiting_for = if inits.is_empty() {
                "ContainerCreating"
            } else {
                "PodInitializing"
            };
            status.init_container_statuses =
                (!inits.is_empty()).then(|| inits.iter().map(|c| waiting(c, "PodInitializing")).collect());
            status.container_statuses =
                Some(spec.containers.iter().map(|c| waiting(c, waiting_for)).collect());
            set_condition(p, "PodScheduled", "True", None, None);
            set_condition(
                p,
                "Initialized",
                if inits.is_empty() { "True" } else { "False" },
                None,
                None,
            );
            set_condition(p, "ContainersReady", "False", Some("ContainersNotReady"), None);
        }) else {
            return;
        };
        self.store.record_event(
            &pod,
            "Normal",
            "Scheduled",
            &format!("Successfully assigned {}/{} to {NODE_NAME}", self.ns, self.name),
            "default-scheduler",
        );

        let mut sidecars = Vec::new();
        for init in &inits {
            self.pull(&pod, init).await;
            self.configure(&pod, init).await;
            self.start(&pod, init);
            if init.restart_policy.as_deref() == Some("Always") {
                sidecars.push(self.run_container(&pod, init, true));
                continue;
            }
            if self.run_container(&pod, init, false).await != 0 {
                return;
            }
        }
        if !inits.is_empty() {
            self.update(|p| set_condition(p, "Initialized", "True", None, None));
        }
        // Native sidecars run alongside; ending them is the main containers' business.
        let sidecars = async {
            futures::future::join_all(sidecars).await;
            std::future::pending::<()>().await
        };
        let main = async {
            for c in &spec.containers {
                self.pull(&pod, c).await;
                self.configure(&pod, c).await;
            }
            for c in &spec.containers {
                self.start(&pod, c);
            }
            futures::future::join_all(spec.containers.iter().map(|c| self.run_container(&pod, c, false)))
                .await;
        };
        tokio::select! {
            _ = sidecars => {}
            () = main => {}
        }
        // Native sidecars stop once the regular containers are done.
        let native: Vec<String> = inits
            .iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"))
            .map(|c| c.name.clone())
            .collect();
        for name in &native {
            self.terminate(name, 0, "Completed", None);
        }
    }

    /// Pulls the container's image, or fails the way a registry would; a failure never returns.
    async fn pull(&self, pod: &Pod, c: &Container) {
        let image = c.image.clone().unwrap_or_default();
        let script = Script::of(pod, &c.name);
        if let Err(why) = check_image_reference(&image) {
            self.set_waiting(&c.name, "InvalidImageName", &why);
            self.event(pod, "Warning", "InspectFailed", &why);
            self.event(pod, "Warning", "Failed", "Error: InvalidImageName");
            return std::future::pending().await;
        }
        let full = qualified(&image);
        let error = match script.pull.as_deref() {
            None | Some("ok") => None,
            Some("not-found") => Some(format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
            )),
            Some("unauthorized") => Some(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
            )),
            Some(_) => Some(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to copy: httpReadSeeker: failed open: unexpected status code 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit."
            )),
        };
        if error.is_none() && script.pull_ms == 0 && c.image_pull_policy.as_deref() == Some("IfNotPresent") {
            let message = format!("Container image \"{image}\" already present on machine");
            return self.event(pod, "Normal", "Pulled", &message);
        }
        self.event(pod, "Normal", "Pulling", &format!("Pulling image \"{image}\""));
        tokio::time::sleep(Duration::from_millis(script.pull_ms)).await;
        let Some(error) = error else {
            let took = script.pull_ms as f64 / 1000.0;
            self.event(
                pod,
                "Normal",
                "Pulled",
                &format!("Successfully pulled image \"{image}\" in {took:.3}s"),
            );
            return;
        };
        loop {
            self.set_waiting(&c.name, "ErrImagePull", &error);
            self.event(
                pod,
                "Warning",
                "Failed",
                &format!("Failed to pull image \"{image}\": {error}"),
            );
            self.event(pod, "Warning", "Failed", "Error: ErrImagePull");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let backoff = format!("Back-off pulling image \"{image}\"");
            self.set_waiting(&c.name, "ImagePullBackOff", &backoff);
            self.event(pod, "Normal", "BackOff", &backoff);
            self.event(pod, "Warning", "Failed", "Error: ImagePullBackOff");
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.event(pod, "Normal", "Pulling", &format!("Pulling image \"{image}\""));
        }
    }

    /// Builds the container's configuration as the kubelet does before creating it. The sim has
    /// no Secrets: a container that needs one (not `optional`) waits in
    /// `CreateContainerConfigError` until the pod is deleted, as on a cluster without it.
    async fn configure(&self, pod: &Pod, c: &Container) {
        let from_env = c.env.iter().flatten().filter_map(|e| {
            let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
            (r.optional != Some(true)).then(|| r.name.clone())
        });
        let from_env_from = c.env_from.iter().flatten().filter_map(|e| {
            let r = e.secret_ref.as_ref()?;
            (r.optional != Some(true)).then(|| r.name.clone())
        });
        let Some(secret) = from_env.chain(from_env_from).next() else {
            return;
        };
        let why = format!("secret \"{secret}\" not found");
        self.set_waiting(&c.name, "CreateContainerConfigError", &why);
        self.event(pod, "Warning", "Failed", &format!("Error: {why}"));
        std::future::pending().await
    }

    fn start(&self, pod: &Pod, c: &Container) {
        self.event(pod, "Normal", "Created", &format!("Created container {}", c.name));
        self.event(pod, "Normal", "Started", &format!("Started container {}", c.name));
        self.set_state(
            &c.name,
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(Timestamp::now())),
                }),
                ..Default::default()
            },
        );
    }

    /// Plays the container's script; returns its exit code.
    async fn run_container(&self, pod: &Pod, c: &Container, native_sidecar: bool) -> i32 {
        let script = Script::of(pod, &c.name);
        if c.name == crate::result::SIDECAR && env_of(c, "KPO_RESULT_PATH").is_some() {
            return self.result_sidecar(c).await;
        }
        let started = tokio::time::Instant::now();
        let lagging = self.faults.take_runtime_lag();
        let losing = self.faults.take_lost_log_end();
        let mut unstored = Vec::new();
        let mut write = |bytes: &[u8]| {
            if lagging || losing {
                unstored.extend_from_slice(bytes);
            } else {
                self.store
                    .append_log(&self.uid, &c.name, bytes, self.faults.log_limits());
            }
        };
        let generated = (1..=script.log_count).map(|i| format!("line {i}"));
        for line in script.logs.iter().cloned().chain(generated) {
            write(format!("{line}\n").as_bytes());
            if script.log_interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(script.log_interval_ms)).await;
            }
        }
        if let Some(size) = script.long_line {
            write(&long_line(size));
        }
        if let Some(text) = &script.output {
            write(&latin1(text));
        }
        match script.duration_ms {
            Some(ms) => tokio::time::sleep_until(started + Duration::from_millis(ms)).await,
            None if native_sidecar => std::future::pending().await,
            None => {}
        }
        let (code, reason) = match (script.oom, script.exit_code) {
            (true, _) => (137, "OOMKilled"),
            (false, 0) => (0, "Completed"),
            (false, n) => (n, "Error"),
        };
        let written = script.write_path.as_ref().map(|path| {
            let content = match (&script.write, script.write_size) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(size)) => filler_document(size),
                (None, None) => Vec::new(),
            };
            self.store
                .lock()
                .files
                .insert((self.uid.clone(), path.clone()), content.clone());
            (path, content)
        });
        // The kubelet reads the termination message from the file, keeping at most 4 KiB.
        let from_file = written
            .filter(|(path, _)| c.termination_message_path.as_ref() == Some(path))
            .map(|(_, content)| {
                let kept = &content[..content.len().min(crate::result::TERMINATION_MESSAGE_LIMIT)];
                String::from_utf8_lossy(kept).into_owned()
            });
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") && code != 0;
        let message = script
            .termination_message
            .clone()
            .or(from_file)
            .or_else(|| fallback.then(|| self.log_tail(&c.name)));
        if losing {
            // Two thirds stored, cut in the middle of a line; the rest never.
            let mut kept = unstored.len() * 2 / 3;
            while kept > 1 && unstored[kept - 1] == b'\n' {
                kept -= 1;
            }
            unstored.truncate(kept);
            self.store
                .append_log(&self.uid, &c.name, &unstored, self.faults.log_limits());
            unstored.clear();
        }
        self.terminate(&c.name, code, reason, message);
        for piece in unstored.chunks(32 * 1024) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.store
                .append_log(&self.uid, &c.name, piece, self.faults.log_limits());
        }
        if lagging {
            self.store
                .finish_log(&self.uid, &c.name, self.faults.log_limits());
        }
        code
    }

    /// Plays kpo's result sidecar (`crate::result`'s shell script): waits for the result file in
    /// the shared folder, prints it framed, exits 0.
    async fn result_sidecar(&self, c: &Container) -> i32 {
        let path = env_of(c, "KPO_RESULT_PATH").unwrap_or_default();
        let max: usize = env_of(c, "KPO_RESULT_MAX")
            .and_then(|m| m.parse().ok())
            .unwrap_or(usize::MAX);
        let timeout: u64 = env_of(c, "KPO_RESULT_TIMEOUT")
            .and_then(|t| t.parse().ok())
            .unwrap_or(86_400);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let content = loop {
            if let Some(bytes) = self
                .store
                .lock()
                .files
                .get(&(self.uid.clone(), path.clone()))
                .cloned()
            {
                break Some(bytes);
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut lines = match content {
            None => vec!["::kpo-result-none".to_owned()],
            Some(bytes) if bytes.len() > max => vec![format!("::kpo-result-too-large size={}", bytes.len())],
            Some(bytes) => crate::result::frame(&bytes),
        };
        if self.faults.take_result_cut() {
            // A log cut mid-frame: the last data line and the end marker never arrive.
            lines.truncate(lines.len().saturating_sub(2));
        }
        let late = if self.faults.take_result_lag() {
            lines.split_off(lines.len().saturating_sub(2))
        } else {
            Vec::new()
        };
        let limits = self.faults.log_limits();
        for line in lines {
            self.store
                .append_log(&self.uid, &c.name, format!("{line}\n").as_bytes(), limits);
        }
        self.terminate(&c.name, 0, "Completed", None);
        if !late.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for line in late {
                self.store
                    .append_log(&self.uid, &c.name, format!("{line}\n").as_bytes(), limits);
            }
        }
        0
    }

    /// The last 80 lines (at most 2 KiB) of a container's log, as the kubelet's fallback message.
    fn log_tail(&self, container: &str) -> String {
        let inner = self.store.lock();
        let log: Vec<u8> = inner
            .logs
            .get(&(self.uid.clone(), container.to_owned()))
            .map(|l| l.records.iter().flat_map(|r| r.bytes.iter().copied()).collect())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        let cut = tail.len().saturating_sub(2048);
        let cut = (cut..=tail.len())
            .find(|i| tail.is_char_boundary(*i))
            .unwrap_or(tail.len());
        tail[cut..].to_owned()
    }

    fn terminate(&self, container: &str, code: i32, reason: &str, message: Option<String>) {
        if self.removes_containers {
            let key = (self.uid.clone(), container.to_owned());
            self.store.lock().removed.insert(key);
        }
        self.store
            .finish_log(&self.uid, container, self.faults.log_limits());
        let started_at = self
            .store
            .get_pod(&self.ns, &self.name, &self.uid)
            .and_then(|p| crate::status::of(&p, container).and_then(|s| s.state.clone()))
            .and_then(|s| s.running)
            .and_then(|r| r.started_at);
        self.set_state(
            container,
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(reason.into()),
                    message,
                    started_at,
                    finished_at: Some(Time(Timestamp::now())),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }

    /// Stops every running container as a deletion or deadline does: SIGTERM, then SIGKILL
    /// after the grace period for those that ignore it.
    async fn kill(&self, created: &Pod, grace: i64) {
        let Some(pod) = self.store.get_pod(&self.ns, &self.name, &self.uid) else {
            return;
        };
        let running: Vec<String> = crate::status::all(&pod)
            .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
            .map(|s| s.name.clone())
            .collect();
        let stubborn = running.iter().any(|c| Script::of(created, c).ignore_sigterm);
        for c in &running {
            self.event(&pod, "Normal", "Killing", &format!("Stopping container {c}"));
        }
        // As a v1.20 kubelet does, a pod none of whose containers ever started (an image that
        // cannot be pulled, a missing Secret) waits out its whole grace period, its sandbox
        // running, before it is removed.
        let mut statuses = crate::status::all(&pod).peekable();
        let never_started = statuses.peek().is_some()
            && statuses.all(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()));
        let wait = if stubborn || never_started {
            Duration::from_secs(grace.max(0) as u64)
        } else {
            Duration::from_millis(20)
        };
        tokio::time::sleep(wait).await;
        for c in &running {
            let code = if Script::of(created, c).ignore_sigterm {
                137
            } else {
                143
            };
            self.terminate(c, code, "Error", None);
        }
        // A container still waiting for its image will never start.
        for s in crate::status::all(&pod).filter(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()))
        {
            self.store
                .finish_log(&self.uid, &s.name, self.faults.log_limits());
        }
    }

    fn set_waiting(&self, container: &str, reason: &str, message: &str) {
        self.set_state(
            container,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                }),
                ..Default::default()
            },
        );
    }

    fn set_state(&self, container: &str, state: ContainerState) {
        self.update(|p| {
            let running = state.running.is_some();
            let Some(status) = status_of_mut(p, container) else {
                return;
            };
            if state.terminated.is_some() {
                status.last_state = None;
            }
            status.started = Some(running || status.started == Some(true));
            status.ready = running;
            status.state = Some(state);
            recompute_phase(p);
        });
    }
}

/// Bytes from a string whose characters are all at most U+00FF, one byte each (Latin-1), so
/// that a script in JSON can hold any bytes; other characters are written as UTF-8.
fn latin1(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match u8::try_from(u32::from(ch)) {
            Ok(b) => bytes.push(b),
            Err(_) => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

/// A line of `size` bytes of a repeating `0-9a-z` pattern, with its newline.
pub fn long_line(size: usize) -> Vec<u8> {
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut line: Vec<u8> = (0..size).map(|i| alphabet[i % alphabet.len()]).collect();
    line.push(b'\n');
    line
}

fn env_of(c: &Container, name: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn waiting(c: &Container, reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status_of_mut<'a>(pod: &'a mut Pod, name: &str) -> Option<&'a mut ContainerStatus> {
    let status = pod.status.as_mut()?;
    status
        .init_container_statuses
        .iter_mut()
        .flatten()
        .chain(status.container_statuses.iter_mut().flatten())
        .find(|s| s.name == name)
}

/// Pod phase from container states, as the kubelet computes it for `restartPolicy: Never`.
fn recompute_phase(pod: &mut Pod) {
    let Some(status) = pod.status.as_mut() else {
        return;
    };
    let init_failed = status.init_container_statuses.iter().flatten().any(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    });
    let regular = status.container_statuses.as_deref().unwrap_or_default();
    let terminated: Vec<i32> = regular
        .iter()
        .filter_map(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .map(|t| t.exit_code)
        })
        .collect();
    let any_waiting = regular
        .iter()
        .any(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()));
    let phase = if init_failed {
        "Failed"
    } else if !regular.is_empty() && terminated.len() == regular.len() {
        if terminated.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if any_waiting {
        "Pending"
    } else {
        "Running"
    };
    let all_ready = !regular.is_empty() && regular.iter().all(|s| s.ready);
    status.phase = Some(phase.into());
    let ready = if all_ready { "True" } else { "False" };
    set_condition(pod, "ContainersReady", ready, None, None);
    set_condition(pod, "Ready", ready, None, None);
}

fn set_condition(pod: &mut Pod, kind: &str, value: &str, reason: Option<&str>, message: Option<&str>) {
    let conditions = pod
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let now = Some(Time(Timestamp::now()));
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) if c.status == value => {}
        Some(c) => {
            c.status = value.into();
            c.reason = reason.map(Into::into);
            c.message = message.map(Into::into);
            c.last_transition_time = now;
        }
        None => conditions.push(PodCondition {
            type_: kind.into(),
            status: value.into(),
            reason: reason.map(Into::into),
            message: message.map(Into::into),
            last_transition_time: now,
            ..Default::default()
        }),
    }
}

/// Why the scheduler would leave this pod Pending on the simulated node, in its own words.
fn unschedulable(pod: &Pod) -> Option<String> {
    let forced = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCHEDULE_ANNOTATION))
        .is_some_and(|v| v == "never");
    if forced {
        return Some("0/1 nodes are available: 1 node(s) were unschedulable.".into());
    }
    let spec = pod.spec.as_ref()?;
    let selector_fits = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| NODE_LABELS.iter().any(|(nk, nv)| nk == k && nv == v));
    if !selector_fits {
        return Some("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity.".into());
    }
    let requested = |resource: &str| -> f64 {
        spec.containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .map(|q| crate::names::quantity_value(&q.0))
            .sum()
    };
    let mut short = Vec::new();
    if requested("cpu") * 1000.0 > NODE_CPU_MILLIS {
        short.push("1 Insufficient cpu");
    }
    if requested("memory") > NODE_MEMORY_BYTES {
        short.push("1 Insufficient memory");
    }
    (!short.is_empty()).then(|| format!("0/1 nodes are available: {}.", short.join(", ")))
}

/// The image-reference grammar's basics, as the kubelet checks it before pulling.
fn check_image_reference(image: &str) -> Result<(), String> {
    let (rest, _digest) = image.split_once('@').unwrap_or((image, ""));
    let last = rest.rsplit('/').next().unwrap_or_default();
    let repo = match last.rsplit_once(':') {
        Some((_, tag))
            if !tag.is_empty()
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) =>
        {
            &rest[..rest.len() - tag.len() - 1]
        }
        Some(_) => "",
        None => rest,
    };
    let repo_ok = !repo.is_empty()
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-:".contains(c))
        });
    let uppercase = repo.chars().any(|c| c.is_ascii_uppercase());
    match (repo_ok, uppercase) {
        (true, _) => Ok(()),
        (false, upper) => Err(format!(
            "Failed to apply default image tag \"{image}\": couldn't parse image reference \"{image}\": invalid reference format{}",
            if upper {
                ": repository name must be lowercase"
            } else {
                ""
            }
        )),
    }
}

/// `busybox` -> `docker.io/library/busybox:latest`, as containerd names it in errors.
fn qualified(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut name = match (has_registry, image.contains('/')) {
        (true, _) => image.to_owned(),
        (false, true) => format!("docker.io/{image}"),
        (false, false) => format!("docker.io/library/{image}"),
    };
    if !image.contains('@') && !image.rsplit('/').next().unwrap_or_default().contains(':') {
        name.push_str(":latest");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "registry.k8s.io/pause:3.6",
            "localhost:5000/a/b:v1",
            "a@sha256:abc",
        ] {
            assert!(check_image_reference(ok).is_ok(), "{ok}");
        }
        for bad in ["Busybox", "busy box", "busybox:", "a//b"] {
            assert!(check_image_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(qualified("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(qualified("me/app:1"), "docker.io/me/app:1");
    }
}
