//! Batch runs: many tasks supervised by one kpo process. Each task keeps its own settings,
//! plugins and retry policy; the batch shares what one process can share — one client (and its
//! rate limit), one watch per namespace ([`SharedWatch`]) fanned out to every run's state
//! machine, one plugin host — and caps how many of its pods are alive at once.
//!
//! A batch has one id (a label on every pod of it); each task's run id is derived from the
//! batch id and the task's name ([`task_run_id`]), so a batch killed and started again with the
//! same id finds every run again — from the journal, or from the cluster by label.

mod members;
mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::sync::{Semaphore, broadcast};

pub use members::{Member, Start, TaskSource, load_tasks, task_run_id};
pub use summary::{Counts, Line, Summary};

use crate::claim::Warrant;
use crate::plugin::TaskPlugins;
use crate::pod::LABEL_BATCH;
use crate::reattach::NotReattached;
use crate::report::RunReport;
use crate::runner::{self, RunTaskError};
use crate::supervise::{self, Cluster, Interrupt, SharedWatch};

/// How a batch is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// At most this many tasks run at once (each has at most one pod alive).
    pub parallel: usize,
    /// After the first task that does not succeed, start no new task; running ones finish.
    pub fail_fast: bool,
}

/// The default of `--parallel`: enough to keep a node busy, few enough not to flood a small
/// cluster (a node takes 110 pods by default).
pub const DEFAULT_PARALLEL: usize = 50;

/// How a batch ended: each task in order, and whether an interrupt stopped it.
#[derive(Debug)]
pub struct Finished {
    pub ended: Vec<Ended>,
    pub interrupted: bool,
}

/// How one task of the batch ended.
#[derive(Debug)]
pub enum Ended {
    /// It ran (or was followed again after a restart) to a report.
    Ran(Box<RunReport>),
    /// It finished in an earlier life of the batch: its report, as journalled.
    Reported(crate::journal::JournaledEnd),
    /// It could not run: a plugin failed, the cluster could not be reached, or its pod went away
    /// while no kpo watched.
    Failed(Box<RunFailure>),
    /// It was not started: `--fail-fast` after a failure, or the batch was interrupted.
    NotStarted(String),
}

impl Ended {
    /// Whether the task counts as done well for the batch: succeeded, or skipped by a plugin.
    pub fn ok(&self) -> bool {
        let code = match self {
            Ended::Ran(r) => r.exit_code,
            Ended::Reported(end) => end.exit_code(),
            Ended::Failed(why) => why.exit_code(),
            Ended::NotStarted(_) => return false,
        };
        code == crate::exit::SUCCESS || code == crate::exit::SKIPPED
    }
}

/// Why a task could not run, typed: its exit code and its words come from the error itself.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error(transparent)]
    Run(#[from] RunTaskError),
    /// Its pod went away while no kpo watched, and no report of it was kept: not run again,
    /// since it may have run to its end.
    #[error(transparent)]
    Lost(#[from] NotReattached),
}

impl RunFailure {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunFailure::Run(e) => e.exit_code(),
            RunFailure::Lost(e) => e.exit_code(),
        }
    }

    /// The failure with its causes, on one line.
    pub fn message(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Runs every member of the batch `batch_id`, at most `options.parallel` at a time, in order;
/// `ended` hears of each task as it ends (by its index), and the result lists them all in order.
/// An interrupt goes to every running task (each stops its pod, or leaves it with
/// [`Interrupt::Detach`]) and no new one starts.
pub async fn schedule(
    client: kube::Client,
    warrant: Warrant,
    batch_id: &str,
    members: Vec<Member>,
    options: Options,
    ended: impl Fn(usize, &Ended) + Send + Sync + 'static,
    interrupts: impl Stream<Item = Interrupt> + Unpin + Send + 'static,
) -> Finished {
    let watches = watches(&client, batch_id, &members);
    let sweep = Sweep::of(&client, &warrant, &members);
    let (tx, _) = broadcast::channel::<Interrupt>(16);
    let interrupted = Arc::new(AtomicBool::new(false));
    let relay = tokio::spawn(relay(interrupts, tx.clone(), interrupted.clone(), sweep));
    let ended = Arc::new(ended);
    let slots = Arc::new(Semaphore::new(options.parallel.max(1)));
    let failed = Arc::new(AtomicBool::new(false));
    let mut running = tokio::task::JoinSet::new();
    let mut results: Vec<Option<Ended>> = (0..members.len()).map(|_| None).collect();
    let mut members = members.into_iter().enumerate();
    for (index, member) in members.by_ref() {
        // Subscribed before the last look at `interrupted`: an interrupt in between is heard.
        let interrupts = receive(tx.subscribe());
        let Ok(slot) = acquire(&slots, &interrupted).await else {
            let end = Ended::NotStarted("the batch was interrupted before it started".into());
            ended(index, &end);
            results[index] = Some(end);
            break;
        };
        if options.fail_fast && failed.load(Ordering::SeqCst) {
            let end = Ended::NotStarted("not started: an earlier task failed (--fail-fast)".into());
            ended(index, &end);
            results[index] = Some(end);
            break;
        }
        let cluster = Cluster {
            client: client.clone(),
            shared: watches.get(&member.namespace).cloned(),
            warrant: warrant.clone(),
        };
        let (ended, failed) = (ended.clone(), failed.clone());
        let mut turn = runner::Turn::new(slots.clone(), slot);
        running.spawn(async move {
            let end = run_one(cluster, member, interrupts, Some(&mut turn)).await;
            if !end.ok() {
                failed.store(true, Ordering::SeqCst);
            }
            ended(index, &end);
            drop(turn);
            (index, end)
        });
    }
    // What the loop did not start, it reports as not started, saying why.
    for (index, _) in members {
        let why = if interrupted.load(Ordering::SeqCst) {
            "the batch was interrupted before it started"
        } else {
            "not started: an earlier task failed (--fail-fast)"
        };
        let end = Ended::NotStarted(why.into());
        ended(index, &end);
        results[index] = Some(end);
    }
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok((index, end)) => results[index] = Some(end),
            // A panic in one run is a bug in kpo: the run has deleted its pod already.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    relay.abort();
    let ended = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Ended::NotStarted("not started".into())))
        .collect();
    Finished {
        ended,
        interrupted: interrupted.load(Ordering::SeqCst),
    }
}

/// Hands each interrupt the batch hears to every running task; the first that stops the batch
/// also deletes all its pods at once.
async fn relay(
    mut interrupts: impl Stream<Item = Interrupt> + Unpin,
    tx: broadcast::Sender<Interrupt>,
    interrupted: Arc<AtomicBool>,
    sweep: Sweep,
) {
    while let Some(asked) = interrupts.next().await {
        let first = !interrupted.swap(true, Ordering::SeqCst);
        let stop = asked == Interrupt::Stop;
        // The runs hear it first (each decides it was interrupted, not disrupted) ...
        let _ = tx.send(asked);
        // ... then every pod of the batch is deleted at once, and each run waits for its own.
        if first && stop {
            tokio::spawn(sweep.clone().delete_all());
        }
    }
}

/// The deletion of a stopped batch's pods all at once, so that a thousand pods start stopping
/// together rather than one after another as their runs get to it: the pods the batch's record
/// holds (never a pod that only carries its label), each by UID. Namespaces where a task keeps
/// its pod (`on_finish = "keep"`) are left to the runs.
#[derive(Clone)]
struct Sweep {
    client: kube::Client,
    warrant: Warrant,
    namespaces: Vec<String>,
}

/// How many deletes of a sweep are in flight at once.
const SWEEP_AT_ONCE: usize = 32;

impl Sweep {
    fn of(client: &kube::Client, warrant: &Warrant, members: &[Member]) -> Self {
        let keeps: std::collections::BTreeSet<&str> = members
            .iter()
            .filter(|m| m.task.run.on_finish == crate::task::OnFinish::Keep)
            .map(|m| m.namespace.as_str())
            .collect();
        let mut namespaces: Vec<String> = members
            .iter()
            .map(|m| m.namespace.clone())
            .filter(|ns| !keeps.contains(ns.as_str()))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        Self {
            client: client.clone(),
            warrant: warrant.clone(),
            namespaces,
        }
    }

    async fn delete_all(self) {
        if let Err(lost) = self.warrant.may_act().await {
            tracing::debug!("not deleting the batch's pods: {lost}");
            return;
        }
        let record = self.warrant.recorded().unwrap_or_default();
        let pods = record
            .entries()
            .iter()
            .filter(|e| self.namespaces.contains(&e.namespace))
            .filter_map(|e| Some((e.namespace.clone(), e.name.clone(), e.uid.clone()?)));
        futures::stream::iter(pods)
            .for_each_concurrent(SWEEP_AT_ONCE, |(ns, name, uid)| {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                async move {
                    let params = kube::api::DeleteParams {
                        preconditions: Some(kube::api::Preconditions {
                            uid: Some(uid),
                            resource_version: None,
                        }),
                        ..Default::default()
                    };
                    // Each run deletes its own pod anyway: this only makes them stop together.
                    if let Err(e) = api.delete(&name, &params).await {
                        tracing::debug!("deleting {ns}/{name} with the batch failed: {e}");
                    }
                }
            })
            .await;
    }
}

/// A slot for the next task, unless the batch is interrupted meanwhile.
async fn acquire(
    slots: &Arc<Semaphore>,
    interrupted: &AtomicBool,
) -> Result<tokio::sync::OwnedSemaphorePermit, ()> {
    if interrupted.load(Ordering::SeqCst) {
        return Err(());
    }
    let slot = slots.clone().acquire_owned().await.map_err(|_| ())?;
    if interrupted.load(Ordering::SeqCst) {
        return Err(());
    }
    Ok(slot)
}

/// One watch per namespace the batch's tasks run in, selecting the batch's pods by label.
fn watches(client: &kube::Client, batch_id: &str, members: &[Member]) -> BTreeMap<String, SharedWatch> {
    let selector = format!("{LABEL_BATCH}={batch_id}");
    let mut watches = BTreeMap::new();
    for m in members {
        watches.entry(m.namespace.clone()).or_insert_with(|| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &m.namespace);
            SharedWatch::start(api, &selector)
        });
    }
    watches
}

/// The interrupts a running task hears: every one the batch receives from now on.
fn receive(rx: broadcast::Receiver<Interrupt>) -> impl Stream<Item = Interrupt> + Unpin + Send {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(asked) => return Some((asked, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

/// Runs, follows again or reports one task: `turn` is its slot in a batch, given back while
/// it waits to retry.
pub async fn run_one(
    cluster: Cluster,
    member: Member,
    interrupts: impl Stream<Item = Interrupt> + Unpin + Send,
    turn: Option<&mut runner::Turn>,
) -> Ended {
    let Member {
        task,
        plugins,
        namespace,
        identity,
        start,
        observer,
    } = member;
    match start {
        Start::Finished(report) => Ended::Reported(report),
        Start::Lost(lost) => Ended::Failed(Box::new(lost.into())),
        Start::Reattach { pod, cursors } => {
            // Boxed, as a new run's is: the task this runs in is only as large as its largest arm.
            let attach = supervise::attach(cluster, *pod, &task.run, observer, interrupts, cursors);
            let report = Box::pin(attach).await;
            Ended::Ran(Box::new(report))
        }
        Start::New => {
            let plugins: Option<&TaskPlugins> = plugins.as_deref();
            let run = runner::run_task(
                cluster, &task, plugins, identity, &namespace, observer, interrupts, turn,
            );
            match Box::pin(run).await {
                Ok(report) => Ended::Ran(Box::new(report)),
                Err(e) => Ended::Failed(Box::new(e.into())),
            }
        }
    }
}
