//! The simulated API server's object store: pods and events with resource versions, a bounded
//! watch history (older versions answer `410 Gone`, as etcd compaction makes them), and logs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use tokio::sync::{Notify, broadcast};

use super::logfile::{Limits, LogFile};

/// How many pod changes a watch can resume across before its version is "too old".
const HISTORY: usize = 1000;
/// How many events are kept (the oldest go first, as the real API server's TTL lets them go).
const EVENTS: usize = 10_000;

/// A change to a pod, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    pub pod: Arc<Pod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// Shared state of the simulated cluster.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
    /// One signal per container log (pod UID, container), woken when that log grows or
    /// finishes: a thousand followers wake for their own log only, not for every line of all.
    log_signals: Mutex<std::collections::HashMap<(String, String), Arc<Notify>>>,
}

#[derive(Debug)]
pub struct Inner {
    pub rv: u64,
    /// Watches from a version below this answer 410 Gone.
    pub oldest_rv: u64,
    pub namespaces: BTreeSet<String>,
    /// The labels of namespaces created through the API (Pod Security admission reads them).
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub pods: BTreeMap<(String, String), Pod>,
    pub events: Vec<Event>,
    pub history: VecDeque<Change>,
    /// Keyed by pod UID and container name, so a new pod of the same name starts empty.
    pub logs: BTreeMap<(String, String), LogFile>,
    /// Containers the node has removed (pod UID, container): their logs cannot be read any more.
    pub removed: BTreeSet<(String, String)>,
    /// Files containers wrote, keyed by pod UID and path (one shared folder per pod).
    pub files: BTreeMap<(String, String), Vec<u8>>,
    /// `coordination.k8s.io` Leases by namespace and name.
    pub leases: BTreeMap<(String, String), k8s_openapi::api::coordination::v1::Lease>,
}

impl Inner {
    /// The garbage collector's part: a Lease whose owners (pods) are all gone goes too. A real
    /// cluster's collector does it moments later; here it is at once.
    pub fn collect_orphans(&mut self) {
        let pods = &self.pods;
        self.leases.retain(|(ns, _), lease| {
            let owners = lease.metadata.owner_references.as_deref().unwrap_or_default();
            owners.is_empty()
                || owners.iter().any(|o| {
                    o.kind == "Pod"
                        && pods
                            .get(&(ns.clone(), o.name.clone()))
                            .is_some_and(|p| p.metadata.uid.as_deref() == Some(o.uid.as_str()))
                })
        });
    }
}

impl Store {
    pub fn new() -> Arc<Self> {
        let namespaces = ["default", "kube-system", "kube-public", "kube-node-lease"]
            .map(String::from)
            .into();
        Arc::new(Self {
            inner: Mutex::new(Inner {
                rv: 1,
                oldest_rv: 1,
                namespaces,
                namespace_labels: BTreeMap::new(),
                pods: BTreeMap::new(),
                events: Vec::new(),
                history: VecDeque::new(),
                logs: BTreeMap::new(),
                removed: BTreeSet::new(),
                files: BTreeMap::new(),
                leases: BTreeMap::new(),
            }),
            changes: broadcast::channel(4096).0,
            log_signals: Mutex::default(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to changes made after this call; take the lock first to replay history
    /// without a gap.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Records a change: bumps the version, stamps it on the pod, keeps it for resuming watches.
    pub fn commit(&self, inner: &mut Inner, kind: ChangeKind, mut pod: Pod) -> Pod {
        inner.rv += 1;
        pod.metadata.resource_version = Some(inner.rv.to_string());
        let key = key_of(&pod);
        match kind {
            ChangeKind::Deleted => {
                inner.pods.remove(&key);
                // What the node kept of the pod goes with it, as a kubelet removes a deleted
                // pod's logs and volumes: the store holds only what exists.
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                inner.logs.retain(|(u, _), _| *u != uid);
                inner.files.retain(|(u, _), _| *u != uid);
                inner.removed.retain(|(u, _)| *u != uid);
                let mut signals = self.log_signals.lock().unwrap_or_else(|e| e.into_inner());
                signals.retain(|(u, _), _| *u != uid);
                inner.collect_orphans();
            }
            _ => {
                inner.pods.insert(key, pod.clone());
            }
        }
        let change = Change {
            rv: inner.rv,
            kind,
            pod: Arc::new(pod.clone()),
        };
        inner.history.push_back(change.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.oldest_rv = old.rv;
            }
        }
        let _ = self.changes.send(change);
        pod
    }

    /// Changes a stored pod in place; does nothing if it is gone or was replaced (other UID).
    pub fn update_pod(&self, ns: &str, name: &str, uid: &str, f: impl FnOnce(&mut Pod)) -> Option<Pod> {
        let mut inner = self.lock();
        let mut pod = inner.pods.get(&(ns.to_owned(), name.to_owned()))?.clone();
        if pod.metadata.uid.as_deref() != Some(uid) {
            return None;
        }
        f(&mut pod);
        Some(self.commit(&mut inner, ChangeKind::Modified, pod))
    }

    pub fn get_pod(&self, ns: &str, name: &str, uid: &str) -> Option<Pod> {
        let inner = self.lock();
        inner
            .pods
            .get(&(ns.to_owned(), name.to_owned()))
            .filter(|p| p.metadata.uid.as_deref() == Some(uid))
            .cloned()
    }

    /// Records a core/v1 Event about a pod, merging repeats into a count like the kubelet does.
    pub fn record_event(&self, pod: &Pod, kind: &str, reason: &str, message: &str, component: &str) {
        let mut inner = self.lock();
        let now = Time(Timestamp::now());
        let uid = pod.metadata.uid.clone();
        if let Some(e) = inner.events.iter_mut().find(|e| {
            e.involved_object.uid == uid
                && e.reason.as_deref() == Some(reason)
                && e.message.as_deref() == Some(message)
        }) {
            e.count = Some(e.count.unwrap_or(1) + 1);
            e.last_timestamp = Some(now);
            return;
        }
        inner.rv += 1;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{pod_name}.{:x}", inner.rv)),
                namespace: Some(ns.clone()),
                resource_version: Some(inner.rv.to_string()),
                creation_timestamp: Some(now.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name),
                namespace: Some(ns),
                uid,
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(kind.into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(component.into()),
                host: (component == "kubelet").then(|| super::NODE_NAME.into()),
            }),
            reporting_component: Some(component.into()),
            ..Default::default()
        };
        inner.events.push(event);
        if inner.events.len() > EVENTS {
            let excess = inner.events.len() - EVENTS;
            inner.events.drain(..excess);
        }
    }

    /// Stores output of a container of the pod with `uid`, as the runtime does.
    pub fn append_log(&self, uid: &str, container: &str, bytes: &[u8], limits: Limits) {
        self.lock()
            .logs
            .entry((uid.to_owned(), container.to_owned()))
            .or_default()
            .write(bytes, limits);
        self.log_signal(uid, container).notify_waiters();
    }

    pub fn finish_log(&self, uid: &str, container: &str, limits: Limits) {
        self.lock()
            .logs
            .entry((uid.to_owned(), container.to_owned()))
            .or_default()
            .finish(limits);
        self.log_signal(uid, container).notify_waiters();
    }

    /// The signal of one container's log (see `log_signals`).
    pub fn log_signal(&self, uid: &str, container: &str) -> Arc<Notify> {
        let mut signals = self.log_signals.lock().unwrap_or_else(|e| e.into_inner());
        signals
            .entry((uid.to_owned(), container.to_owned()))
            .or_default()
            .clone()
    }
}

pub fn key_of(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}
