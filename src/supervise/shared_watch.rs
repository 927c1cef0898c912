//! One watch for many runs: the pods of a batch in one namespace, selected by the batch's label,
//! fanned out to the run that owns each pod. A thousand runs cost one watch, not a thousand.
//!
//! Each run subscribes to its pod's name before the pod is created, and gets what a watch of that
//! one pod would give: its changes, its deletion, and the relist markers of the watcher (so the
//! run notices a pod that vanished while the watch was down). The latest state of every pod is
//! kept, so a run that subscribes late (a reattach, a clean-up) starts from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

/// What a run receives: the watcher's events for its pod.
pub type PodEvent = watcher::Event<Pod>;

/// A watch of every pod carrying one label selector in one namespace, shared by the runs of a
/// batch. Cloning shares it; the watch stops when the last clone is dropped.
#[derive(Clone)]
pub struct SharedWatch {
    state: Arc<Mutex<Fanout>>,
    _task: Arc<AbortOnDropHandle<()>>,
}

#[derive(Default)]
struct Fanout {
    /// The latest state of every pod the watch knows, by name.
    pods: HashMap<String, Pod>,
    /// The pods seen in the relist under way, if one is.
    relisting: Option<Vec<String>>,
    /// Whether the first listing is complete: from then on, a pod not in `pods` is gone.
    listed: bool,
    subscribers: HashMap<String, Vec<Subscriber>>,
}

struct Subscriber {
    /// Boxed: a channel allocates its slots in blocks of 32, and a `Pod` inline is over 2 KiB —
    /// 70 KiB a run, most of what a run of a thousand-task batch cost, before it was boxed.
    tx: mpsc::UnboundedSender<Box<PodEvent>>,
    /// Whether it is in the relist under way (its pod was known when it began): only then does
    /// the relist's end say anything about its pod.
    in_relist: bool,
}

/// What a late subscriber learns at once.
pub struct Subscription {
    /// The pod as last seen; `None` when the watch does not know it (not yet, or no longer).
    pub current: Option<Pod>,
    /// Whether the watch has listed the namespace: then `current == None` means the pod is gone.
    pub listed: bool,
    /// The pod's events from now on.
    pub events: mpsc::UnboundedReceiver<Box<PodEvent>>,
}

impl SharedWatch {
    /// Starts watching the pods `selector` selects in `api`'s namespace.
    pub fn start(api: Api<Pod>, selector: &str) -> Self {
        let state = Arc::new(Mutex::new(Fanout::default()));
        let config = watcher::Config::default().labels(selector);
        let fanout = state.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher(api, config).backoff(super::watch_backoff()));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => lock(&fanout).dispatch(event),
                    Err(e) => tracing::debug!("the batch's watch was interrupted, resuming: {e}"),
                }
            }
        });
        Self {
            state,
            _task: Arc::new(AbortOnDropHandle::new(task)),
        }
    }

    /// Subscribes to the pod called `name`.
    pub fn subscribe(&self, name: &str) -> Subscription {
        let (tx, events) = mpsc::unbounded_channel();
        let mut fanout = lock(&self.state);
        let subscriber = Subscriber { tx, in_relist: false };
        fanout
            .subscribers
            .entry(name.to_owned())
            .or_default()
            .push(subscriber);
        Subscription {
            current: fanout.pods.get(name).cloned(),
            listed: fanout.listed,
            events,
        }
    }
}

fn lock(state: &Mutex<Fanout>) -> std::sync::MutexGuard<'_, Fanout> {
    // A panic while holding the lock leaves plain maps behind: still usable.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fanout {
    fn dispatch(&mut self, event: PodEvent) {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(Vec::new());
                // Only a pod the watch has seen can be missing from a relist: one not seen yet
                // (a run subscribes before it creates its pod, and the first listing may come
                // first) would be taken for deleted.
                for (name, list) in &mut self.subscribers {
                    let known = self.pods.contains_key(name);
                    for subscriber in list {
                        subscriber.in_relist = known;
                    }
                }
                self.broadcast(|| watcher::Event::Init, |s| s.in_relist);
            }
            watcher::Event::InitApply(pod) => {
                let name = pod.name_any();
                if let Some(seen) = self.relisting.as_mut() {
                    seen.push(name.clone());
                }
                self.send(&name, watcher::Event::InitApply(pod.clone()));
                self.pods.insert(name, pod);
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.relisting.take() {
                    let seen: std::collections::HashSet<String> = seen.into_iter().collect();
                    self.pods.retain(|name, _| seen.contains(name));
                }
                self.listed = true;
                self.broadcast(|| watcher::Event::InitDone, |s| s.in_relist);
            }
            watcher::Event::Apply(pod) => {
                let name = pod.name_any();
                self.send(&name, watcher::Event::Apply(pod.clone()));
                self.pods.insert(name, pod);
            }
            watcher::Event::Delete(pod) => {
                let name = pod.name_any();
                self.pods.remove(&name);
                self.send(&name, watcher::Event::Delete(pod));
            }
        }
    }

    /// Sends `event` to the subscribers of `name`, forgetting those that went away.
    fn send(&mut self, name: &str, event: PodEvent) {
        if let Some(list) = self.subscribers.get_mut(name) {
            list.retain(|s| s.tx.send(Box::new(event.clone())).is_ok());
            if list.is_empty() {
                self.subscribers.remove(name);
            }
        }
    }

    fn broadcast(&mut self, event: impl Fn() -> PodEvent, to: impl Fn(&Subscriber) -> bool) {
        self.subscribers.retain(|_, list| {
            list.retain(|s| !to(s) || s.tx.send(Box::new(event())).is_ok());
            !list.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p
    }

    fn subscribe(fanout: &mut Fanout, name: &str) -> mpsc::UnboundedReceiver<Box<PodEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let subscriber = Subscriber { tx, in_relist: false };
        fanout
            .subscribers
            .entry(name.into())
            .or_default()
            .push(subscriber);
        rx
    }

    fn received(rx: &mut mpsc::UnboundedReceiver<Box<PodEvent>>) -> Vec<&'static str> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match *e {
                watcher::Event::Init => "init",
                watcher::Event::InitApply(_) => "init-apply",
                watcher::Event::InitDone => "init-done",
                watcher::Event::Apply(_) => "apply",
                watcher::Event::Delete(_) => "delete",
            })
            .collect()
    }

    #[test]
    fn a_listing_without_a_pod_not_yet_seen_does_not_say_it_is_gone() {
        let mut fanout = Fanout::default();
        // Subscribed before its pod was created; the first listing comes before the pod.
        let mut early = subscribe(&mut fanout, "early");
        fanout.dispatch(watcher::Event::Init);
        fanout.dispatch(watcher::Event::InitDone);
        assert_eq!(received(&mut early), Vec::<&str>::new());
        fanout.dispatch(watcher::Event::Apply(pod("early")));
        assert_eq!(received(&mut early), ["apply"]);
        // Now known: a relist that lacks it means it is gone.
        fanout.dispatch(watcher::Event::Init);
        fanout.dispatch(watcher::Event::InitDone);
        assert_eq!(received(&mut early), ["init", "init-done"]);
    }
}
