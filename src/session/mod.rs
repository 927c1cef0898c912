//! A run id's life, for one task or a batch of them: claimed before anything is decided about
//! it (one supervisor per run), planned once from this machine's journal and the cluster (the
//! cluster wins), each task started, followed again or reported, journalled, and the claim
//! given back. The command line only says what to run and shows what happens.

mod plan;

use std::sync::Arc;

use futures::Stream;

pub use plan::Planned;

use crate::batch::{self, Ended, Finished, Member, Options};
use crate::claim::{self, Claim, ClaimError};
use crate::connect::Connection;
use crate::journal::{JournalStore, Recording};
use crate::machine::Machine;
use crate::plugin::TaskPlugins;
use crate::pod::RunIdentity;
use crate::reattach::{self, LostPod, NotReattached};
use crate::supervise::{Cluster, Interrupt, Observer};
use crate::task::Task;

/// What to run: the tasks, each with its plugins — loaded by the caller before anything is
/// claimed, so that a plugin's error shows before the cluster is asked anything — and how.
pub struct Request {
    pub tasks: Vec<(Task, Option<Arc<TaskPlugins>>)>,
    /// Where to run, over each task's namespace and the context's.
    pub namespace: Option<String>,
    pub asked: Asked,
}

/// What was asked of the run's id.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// The id asked for: a run (or a batch) to report, follow again, or start under that id.
    /// `None`: a fresh id, and every task starts.
    pub run_id: Option<String>,
    /// Run as a batch even with one task (a batch of one, asked for again by its id).
    pub batch: bool,
    /// Whether a run known already starts again.
    pub rerun: crate::reattach::Rerun,
    /// Wait for another kpo's claim on the run to end instead of failing.
    pub wait: bool,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Claim(#[from] Box<ClaimError>),
    /// A member of a batch is claimed through its batch, and that claim could not be had.
    #[error("run {run} is a member of batch {batch}, claimed through it: {claim}")]
    Member {
        run: String,
        batch: String,
        claim: Box<ClaimError>,
    },
    /// The cluster could not be asked what the run id means now.
    #[error(transparent)]
    Lost(#[from] LostPod),
    #[error(transparent)]
    NotReattached(#[from] NotReattached),
}

impl SessionError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SessionError::Claim(e) | SessionError::Member { claim: e, .. } => e.exit_code(),
            SessionError::Lost(e) => e.exit_code(),
            SessionError::NotReattached(e) => e.exit_code(),
        }
    }
}

/// A claimed run id: its tasks, and once planned what each will do.
pub struct Session {
    client: kube::Client,
    /// The cluster's address, as the journal keys runs.
    server: String,
    store: JournalStore,
    claim: Claim,
    /// The run's id, or the batch's.
    id: String,
    /// Whether its tasks run as a batch (one watch per namespace, pods stopped together).
    batch: bool,
    asked: bool,
    rerun: crate::reattach::Rerun,
    tasks: Vec<plan::Placed>,
    planned: Vec<Planned>,
}

impl Session {
    /// Claims the run (or the batch) `request` names on `conn`: a member of a batch asked for
    /// by its id is claimed through its batch, whose kpo may be supervising it right now.
    ///
    /// # Errors
    /// The claim is another kpo's (or cannot be had), or the cluster cannot be asked which batch
    /// the run belongs to.
    pub async fn open(conn: &Connection, machine: &Machine, request: Request) -> Result<Self, SessionError> {
        let Request {
            tasks,
            namespace,
            asked:
                Asked {
                    run_id,
                    batch,
                    rerun,
                    wait,
                },
        } = request;
        let store = machine.journals();
        let place = |task: &Task| {
            namespace
                .clone()
                .or_else(|| task.namespace.clone())
                .unwrap_or_else(|| conn.default_namespace.clone())
        };
        let batch = batch || tasks.len() != 1;
        let (id, claimed_in, first, placed) = if batch {
            // The batch's claim is in the namespace it was started from.
            let home = namespace
                .clone()
                .unwrap_or_else(|| conn.default_namespace.clone());
            let id = run_id
                .clone()
                .unwrap_or_else(|| RunIdentity::generate("batch").run_id);
            let placed = tasks
                .into_iter()
                .map(|(task, plugins)| plan::Placed::member(&id, &home, place(&task), task, plugins))
                .collect();
            (id, home, None, placed)
        } else {
            let (task, plugins) = tasks.into_iter().next().expect("one task");
            let ns = place(&task);
            let mut identity = RunIdentity::generate(&task.name);
            if let Some(id) = &run_id {
                identity.run_id = id.clone();
            }
            // A fresh run's first pod is recorded with its claim; one asked for by id may be
            // followed again instead.
            let first = run_id
                .is_none()
                .then(|| claim::record::Entry::creating(&ns, &identity.pod_name));
            let id = identity.run_id.clone();
            let placed = vec![plan::Placed::new(ns.clone(), task, plugins, identity)];
            (id, ns, first, placed)
        };
        let member_of = match (&run_id, batch) {
            (Some(id), false) => {
                let journal = store.load(&conn.server, &claimed_in, id).ok().flatten();
                reattach::batch_of(&conn.client, &claimed_in, id, journal.and_then(|j| j.batch)).await?
            }
            _ => None,
        };
        let (claim_ns, claim_id) = member_of.clone().unwrap_or((claimed_in, id.clone()));
        let claim = claim::take(&conn.client, &claim_ns, &claim_id, wait, first, &machine.hostname)
            .await
            .map_err(|e| match member_of {
                Some((_, batch)) => SessionError::Member {
                    run: id.clone(),
                    batch,
                    claim: Box::new(e),
                },
                None => SessionError::Claim(Box::new(e)),
            })?;
        Ok(Self {
            client: conn.client.clone(),
            server: conn.server.clone(),
            store,
            claim,
            id,
            batch,
            asked: run_id.is_some(),
            rerun,
            tasks: placed,
            planned: Vec::new(),
        })
    }

    /// The run's id, or the batch's.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the session runs its tasks as a batch.
    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// Decides once what each task does — start, follow its pod again, or report how it ended —
    /// and says what the user should hear about it (pods that carry the run's labels without
    /// being its own, a journal that cannot be read). A fresh id starts every task.
    ///
    /// # Errors
    /// The cluster cannot be asked, or a run's pod cannot be followed again for another reason
    /// than being gone.
    pub async fn plan(&mut self) -> Result<Vec<String>, SessionError> {
        let tasks = std::mem::take(&mut self.tasks);
        if !self.asked {
            self.planned = tasks.into_iter().map(|t| t.start_new(&self.server)).collect();
            return Ok(Vec::new());
        }
        let (label, id) = match self.batch {
            true => (crate::pod::LABEL_BATCH, self.id.as_str()),
            false => (crate::pod::LABEL_RUN_ID, self.id.as_str()),
        };
        let (planned, notices) = plan::plan(
            &self.client,
            &self.server,
            &self.store,
            tasks,
            (label, id),
            self.rerun,
        )
        .await?;
        self.planned = planned;
        Ok(notices)
    }

    /// What each task will do, in order (empty until planned).
    pub fn planned(&self) -> &[Planned] {
        &self.planned
    }

    /// The run's interrupts: `signals`, and the loss of its claim.
    pub fn interrupts(
        &self,
        signals: impl Stream<Item = Interrupt> + Unpin + Send + 'static,
    ) -> impl Stream<Item = Interrupt> + Unpin + Send + 'static {
        let lost = self.claim.lost();
        let lost = futures::stream::once(async move { Interrupt::Lost(lost.await) });
        futures::stream::select(signals, Box::pin(lost))
    }

    /// Runs the planned tasks — one on its own, a batch `options.parallel` at a time — each
    /// heard by its observer (in `observers`, by the task's index) and journalled; `ended` hears
    /// of each task as it ends, after its journal has its report.
    pub async fn run(
        &mut self,
        observers: Vec<Arc<dyn Observer>>,
        options: Options,
        interrupts: impl Stream<Item = Interrupt> + Unpin + Send + 'static,
        ended: impl Fn(usize, &Ended) + Send + Sync + 'static,
    ) -> Finished {
        let mut recordings = Vec::with_capacity(self.planned.len());
        let mut members = Vec::with_capacity(self.planned.len());
        for (planned, observer) in std::mem::take(&mut self.planned).into_iter().zip(observers) {
            let recording = Arc::new(Recording::new(observer, self.store.clone(), planned.journal));
            recordings.push(recording.clone());
            members.push(Member {
                task: planned.task,
                plugins: planned.plugins,
                namespace: planned.namespace,
                identity: planned.identity,
                start: planned.start,
                observer: recording,
            });
        }
        let journalled = move |index: usize, end: &Ended| {
            if let Ended::Ran(report) = end {
                recordings[index].finish(report);
            }
            ended(index, end);
        };
        let client = self.client.clone();
        let warrant = self.claim.warrant();
        if self.batch {
            return batch::schedule(
                client, warrant, &self.id, members, options, journalled, interrupts,
            )
            .await;
        }
        let Some(member) = members.pop() else {
            return Finished {
                ended: Vec::new(),
                interrupted: false,
            };
        };
        let cluster = Cluster {
            client,
            shared: None,
            warrant,
        };
        let end = batch::run_one(cluster, member, interrupts, None).await;
        journalled(0, &end);
        let interrupted =
            matches!(&end, Ended::Ran(r) if r.outcome == crate::vocabulary::Outcome::Interrupted);
        Finished {
            ended: vec![end],
            interrupted,
        }
    }

    /// Gives the claim back: the Lease is deleted, or kept as the record of pods that remain.
    pub async fn release(self) {
        self.claim.release().await;
    }
}
