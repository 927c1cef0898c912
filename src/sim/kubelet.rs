//! The simulated kubelet: drives each pod from Pending to Succeeded or Failed, through the
//! scheduler, the registry and the container runtime of the neighbouring modules, writing
//! statuses and events as a real node would, until the pod is deleted.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ContainerState, ContainerStateRunning, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::NODE_NAME;
use super::faults::Faults;
use super::node::Node;
use super::pod_status::{set_condition, waiting};
use super::scheduler::unschedulable;
use super::store::{ChangeKind, Store};

/// How a deletion request ended the wait.
enum Deletion {
    Graceful(i64),
    Gone,
}

/// Runs the pod until it is deleted. Spawned once per created pod.
pub async fn run(store: Arc<Store>, faults: Arc<Faults>, pod: Pod) {
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
    let deadline_passes = node.deadline();
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
                        // being deleted is never removed, and its containers are never
                        // reported stopped; only a force delete takes it away.
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
        // Failed at once, while the kubelet is still stopping its containers (seen on v1.20).
        node.deadline_exceeded(&pod);
        node.kill(&pod, 0).await;
    }
    if let Deletion::Graceful(_) = deletion.await {
        node.remove();
    }
}

impl Node {
    /// Until the pod's active deadline passes: `activeDeadlineSeconds` after the kubelet took
    /// the pod (`status.startTime`), as a kubelet counts — so never for a pod no node took —
    /// read again on every change, as the deadline of a pod may be cut while it waits or runs.
    async fn deadline(&self) {
        let due = |p: Option<&Pod>| {
            let p = p?;
            let seconds = p.spec.as_ref()?.active_deadline_seconds?;
            let start = p.status.as_ref()?.start_time.as_ref()?.0;
            Some(start + jiff::SignedDuration::from_secs(seconds.max(0)))
        };
        loop {
            let Some(at) = self.until(due).await else {
                return std::future::pending().await;
            };
            let left = Timestamp::now().duration_until(at);
            let left = Duration::try_from(left).unwrap_or_default();
            let moved = self.until(|p| (due(p) != Some(at)).then_some(()));
            tokio::select! {
                () = tokio::time::sleep(left) => return,
                _ = moved => {}
            }
        }
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
        self.until(|p| p.is_none().then_some(())).await;
    }

    /// Waits until someone asks to delete the pod, or it is removed outright.
    async fn deletion(&self) -> Deletion {
        let asked = |p: Option<&Pod>| match p {
            None => Some(Deletion::Gone),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Some(Deletion::Graceful(
                p.metadata.deletion_grace_period_seconds.unwrap_or(30),
            )),
            Some(_) => None,
        };
        self.until(asked).await.unwrap_or(Deletion::Gone)
    }

    fn remove(&self) {
        let mut inner = self.store.lock();
        if let Some(pod) = inner.pods.get(&(self.ns.clone(), self.name.clone())).cloned()
            && pod.metadata.uid.as_deref() == Some(&self.uid)
        {
            self.store.commit(&mut inner, ChangeKind::Deleted, pod);
        }
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
}
