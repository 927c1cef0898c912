//! One supervisor per run: before it acts on a run's pod, kpo claims the run with a
//! `coordination.k8s.io` Lease beside it (`kpo-run-<run id>`), renews it while it supervises and
//! deletes it at the end. Every write carries the Lease's `resourceVersion`, so of two kpo
//! processes only one can hold it; a holder that died stops renewing and its claim expires, so
//! that a new kpo can take the run over.
//!
//! A holder acts on the pod (creates, deletes, retries) only while its last renewal is younger
//! than [`ACT_WITHIN`], a margin inside the term. When renewals stop getting through — the API
//! server restarts, etcd changes leader, the network drops — it *pauses*: it keeps reading and
//! renewing but acts on nothing, and goes on as before once a renewal gets through, which its
//! `resourceVersion` precondition proves nobody else wrote meanwhile. Only a Lease another
//! writer changed or removed is lost. Unlike client-go's leader election, whose holder gives up
//! at its renew deadline, a paused kpo keeps what it knows (log cursors, the pod's state, the
//! run's timers): an outage of the control plane is also an outage for anyone who would take
//! the run over, and giving the run up would leave its pod to nobody.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::exit;

mod holder;
pub mod record;

use holder::Process;
use record::{Entry, Record};

/// How long a claim lasts without renewal: how soon a new kpo can take over from a dead one.
pub const TERM: Duration = Duration::from_secs(15);
/// How often the holder renews, well inside the term.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How soon a renewal that did not get through is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long one renewal may take: a request into a silent network must not hold the next one.
const REQUEST_LIMIT: Duration = Duration::from_secs(4);
/// How far apart two machines' clocks may be for a claim to be judged by its holder's
/// `renewTime` alone: one not renewed for its term plus this is free at once.
pub const SKEW_ALLOWANCE: Duration = Duration::from_secs(60);
/// How often a claim held by another is read while it is watched.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How young the last renewal must be for this kpo to act on the pod: a margin inside the term
/// for a request still on its way when the claim could expire.
pub const ACT_WITHIN: Duration = Duration::from_secs(12);

/// Where this kpo stands with its run.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Renewed within [`ACT_WITHIN`]: this kpo may act on the pod.
    Held { renewed: Instant },
    /// No renewal got through within [`ACT_WITHIN`]: nobody else can take the run while the
    /// Lease cannot be written, but this kpo cannot prove it holds it, so it acts on nothing
    /// until a renewal gets through.
    Paused {
        renewed: Instant,
        since: Timestamp,
        why: String,
    },
    /// Another writer changed or removed the Lease: the run is someone else's now.
    Lost(String),
}

/// The run's claim was lost: nothing more may be done to its pod.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Lost(pub String);

/// This kpo's right to act on a run's pod, as its claim stands: every create and delete asks
/// it first ([`Warrant::may_act`]); and the pen that records the run's pods in its Lease
/// ([`record`]).
#[derive(Debug, Clone)]
pub struct Warrant(Option<Held>);

/// What a warrant of a claimed run sees of its claim, and how it asks for a record.
#[derive(Debug, Clone)]
struct Held {
    standing: watch::Receiver<Standing>,
    written: watch::Receiver<Lease>,
    asks: mpsc::UnboundedSender<Ask>,
}

/// What the renewer of a claim, the Lease's only writer, is asked to do besides renewing.
enum Ask {
    /// Record a pod; the answer, if wanted, once the record is written.
    Record(Entry, Option<oneshot::Sender<Result<(), Lost>>>),
    /// Forget a pod seen gone, with the next write.
    Forget { namespace: String, name: String },
    /// Give the run up.
    Release(oneshot::Sender<()>),
}

impl Warrant {
    /// The right of a run nobody claimed (the library used on its own, tests): always held.
    pub fn unconditional() -> Self {
        Self(None)
    }

    /// Where the claim stands now.
    pub fn standing(&self) -> Standing {
        self.0.as_ref().map_or_else(
            || Standing::Held {
                renewed: Instant::now(),
            },
            |h| h.standing.borrow().clone(),
        )
    }

    /// Whether the claim is paused now: this kpo may not act until a renewal gets through.
    pub fn paused(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|h| matches!(*h.standing.borrow(), Standing::Paused { .. }))
    }

    /// A feed of the claim's changes, for those who show them (`None`: never changes).
    pub fn changes(&self) -> Option<watch::Receiver<Standing>> {
        self.0.as_ref().map(|h| h.standing.clone())
    }

    /// Records a pod as the run's in its Lease and waits until that is written: asked before a
    /// pod is created (by name), so that no pod of the run ever exists unrecorded. Waits through
    /// an outage as [`Warrant::may_act`] does. Nothing to record for a run nobody claimed.
    ///
    /// # Errors
    /// The claim is lost (or released) first.
    pub async fn record(&self, entry: Entry) -> Result<(), Lost> {
        let Some(held) = &self.0 else {
            return Ok(());
        };
        if Record::of(&held.written.borrow()).has(&entry) {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let sent = held.asks.send(Ask::Record(entry, Some(done)));
        match (sent, answer.await) {
            (Ok(()), Ok(answer)) => answer,
            // The renewer has ended: the claim was lost, or released.
            _ => match self.standing() {
                Standing::Lost(why) => Err(Lost(why)),
                _ => Err(Lost("the run's claim was released".into())),
            },
        }
    }

    /// Records a pod without waiting for the write: its UID, once it is created (the name,
    /// recorded before, already makes it the run's).
    pub fn note(&self, entry: Entry) {
        if let Some(held) = &self.0 {
            let _ = held.asks.send(Ask::Record(entry, None));
        }
    }

    /// Forgets a pod this kpo saw gone, with the Lease's next write.
    pub fn forget(&self, namespace: &str, name: &str) {
        if let Some(held) = &self.0 {
            let _ = held.asks.send(Ask::Forget {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            });
        }
    }

    /// The run's record as last written; `None` for a run nobody claimed, where every pod
    /// labelled as the run's counts as its own.
    pub fn recorded(&self) -> Option<Record> {
        self.0.as_ref().map(|h| Record::of(&h.written.borrow()))
    }

    /// Waits until this kpo may act on the pod — at once while its claim is renewed, after a
    /// pause once a renewal gets through again.
    ///
    /// # Errors
    /// The claim is lost: the pod is someone else's to act on.
    pub async fn may_act(&self) -> Result<(), Lost> {
        self.until(|s| !matches!(s, Standing::Paused { .. })).await
    }

    /// Waits until a renewal that began after `since` got through: proof that the API server
    /// answers this kpo again. At once for a run nobody claimed.
    ///
    /// # Errors
    /// The claim is lost first.
    pub async fn answered_after(&self, since: Instant) -> Result<(), Lost> {
        self.until(|s| match s {
            Standing::Held { renewed } => *renewed >= since,
            Standing::Paused { .. } => false,
            Standing::Lost(_) => true,
        })
        .await
    }

    /// Waits until the claim stands as `ready` says (a lost one always ends the wait).
    async fn until(&self, ready: impl Fn(&Standing) -> bool) -> Result<(), Lost> {
        let Some(held) = &self.0 else {
            return Ok(());
        };
        let mut standing = held.standing.clone();
        let now = standing
            .wait_for(|s| matches!(s, Standing::Lost(_)) || ready(s))
            .await
            .map(|s| s.clone());
        match now {
            Ok(Standing::Lost(why)) => Err(Lost(why)),
            // The renewal task ended without a word only when the claim was released.
            Err(_) => Err(Lost("the run's claim was released".into())),
            Ok(_) => Ok(()),
        }
    }

    /// Whether a renewal that began after `since` got through already.
    pub fn answered_since(&self, since: Instant) -> bool {
        match self.standing() {
            Standing::Held { renewed } | Standing::Paused { renewed, .. } => renewed >= since,
            Standing::Lost(_) => false,
        }
    }
}

/// The run could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "run {run_id} is supervised by another kpo ({holder}, claim renewed {renewed}); `--wait` waits until it is free"
    )]
    Held {
        run_id: String,
        holder: String,
        renewed: String,
    },
    #[error("cannot claim run {run_id} (Lease {namespace}/{lease})")]
    Unavailable {
        run_id: String,
        namespace: String,
        lease: String,
        #[source]
        source: kube::Error,
    },
}

impl ClaimError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ClaimError::Held { .. } => exit::CLAIMED,
            ClaimError::Unavailable { .. } => exit::CLUSTER_UNAVAILABLE,
        }
    }
}

/// A run claimed by this kpo. Renewed in the background until released.
pub struct Claim {
    held: Held,
    renewing: tokio::task::JoinHandle<()>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Whether a claim is free to take at once: released, held by a kpo of this machine that is
/// gone ([`holder`]), or not renewed for its term plus [`SKEW_ALLOWANCE`] by this machine's
/// clock. A claim that only looks expired is watched for a term first (see [`take`]).
fn free_at_once(lease: &Lease, at: Timestamp, me: Option<&Process>) -> bool {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return true,
        Some(holder) => holder,
    };
    let record = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(holder::PROCESS_ANNOTATION));
    let gone = record
        .and_then(|r| Process::of_record(r, holder))
        .zip(me)
        .is_some_and(|(process, me)| process.is_gone_for(me));
    gone || not_renewed_within(&spec, at, SKEW_ALLOWANCE)
}

/// Whether the Lease was last renewed longer than its term plus `allowance` before `at` (by
/// this machine's clock).
fn not_renewed_within(spec: &LeaseSpec, at: Timestamp, allowance: Duration) -> bool {
    let term = jiff::SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
    let allowance = jiff::SignedDuration::try_from(allowance).unwrap_or_default();
    spec.renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0 + term + allowance < at)
}

/// A Lease as this kpo watches it: the version it saw last, and since when it has seen no other.
struct Watched {
    version: Option<String>,
    since: Instant,
}

impl Watched {
    /// Notes `lease`, read just now; whether it changed since the last look.
    fn note(watched: &mut Option<Watched>, lease: &Lease) -> bool {
        let version = lease.metadata.resource_version.clone();
        let changed = watched.as_ref().is_some_and(|w| w.version != version);
        if watched.as_ref().is_none_or(|w| w.version != version) {
            *watched = Some(Watched {
                version,
                since: Instant::now(),
            });
        }
        changed
    }
}

/// Who supervises the run whose claim `lease` is, by this machine's clock: its holder, unless the
/// claim was released or has gone unrenewed for its term plus [`SKEW_ALLOWANCE`]. What `kpo gc`
/// asks before it deletes a finished pod whose kpo may still be reading its log or result.
pub fn supervisor(lease: &Lease, at: Timestamp) -> Option<String> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    (!not_renewed_within(spec, at, SKEW_ALLOWANCE)).then_some(holder)
}

/// A delete of `lease` that happens only if nobody wrote it since it was read.
pub fn if_unchanged(lease: &Lease) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: None,
        }),
        ..Default::default()
    }
}

/// The Lease's name for a run.
pub fn lease_name(run_id: &str) -> String {
    format!("kpo-run-{run_id}")
}

/// Claims run `run_id` in `namespace`. When another kpo holds it, waits until the claim is free
/// if `wait`, else fails naming the holder.
///
/// **When a claim is free.** Two machines' clocks may differ, so a claim is not judged expired by
/// comparing its holder's `renewTime` with this machine's clock alone: it is free once this kpo
/// has watched the Lease go unchanged for a whole term ([`TERM`]) on its own monotonic clock — the
/// rule of client-go's leader election. Without `--wait`, a claim that looks expired by this
/// clock is watched for that term (any renewal meanwhile: it is held, exit 75), and one that
/// does not is held at once. Free at once: a released claim, one whose holder is a kpo of this
/// machine that is gone ([`holder`]), and one not renewed for its term plus [`SKEW_ALLOWANCE`].
/// A kpo that died elsewhere is so taken over 15 s after this kpo first looks, at worst.
///
/// `host` names this machine in the holder's name. `creating` is a pod about to be created,
/// recorded with the claim itself (see [`Warrant::record`]): a fresh run's first pod costs no
/// write of its own.
///
/// # Errors
/// The claim is held by another kpo (and `wait` is false), or the cluster refuses or cannot be
/// reached.
pub async fn take(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
    wait: bool,
    creating: Option<Entry>,
    host: &str,
) -> Result<Claim, ClaimError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(run_id);
    let me = holder::name(host);
    let process = Process::this();
    let unavailable = |source| ClaimError::Unavailable {
        run_id: run_id.to_owned(),
        namespace: namespace.to_owned(),
        lease: name.clone(),
        source,
    };
    let spec = |transitions: i32| LeaseSpec {
        holder_identity: Some(me.clone()),
        lease_duration_seconds: Some(TERM.as_secs() as i32),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let annotations = process
        .as_ref()
        .map(|p| [(holder::PROCESS_ANNOTATION.to_owned(), p.record(&me))].into());
    let mut watched = None;
    // The record of a released claim whose Lease this kpo removed to take it afresh.
    let mut carried = Record::default();
    carried.extend(creating.clone());
    let held = loop {
        let attempt = match api.get_opt(&name).await.map_err(unavailable)? {
            None => {
                let mut lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([(crate::pod::LABEL_RUN_ID.to_owned(), run_id.to_owned())].into()),
                        annotations: annotations.clone(),
                        ..Default::default()
                    },
                    spec: Some(spec(0)),
                };
                carried.put(&mut lease);
                api.create(&PostParams::default(), &lease).await
            }
            Some(lease)
                if lease
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| !o.is_empty()) =>
            {
                // A released run's record, which the garbage collector removes with its last
                // pod: replaced by a new Lease (a new UID), so that a removal already on its way
                // cannot take the new claim with it.
                carried = Record::of(&lease);
                carried.extend(creating.clone());
                match api.delete(&name, &if_unchanged(&lease)).await {
                    Ok(_) => continue,
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                let changed = Watched::note(&mut watched, &lease);
                let quiet = watched.as_ref().is_some_and(|w| w.since.elapsed() >= TERM);
                let spec_now = lease.spec.clone().unwrap_or_default();
                if free_at_once(&lease, Timestamp::now(), process.as_ref()) || quiet {
                    let transitions = spec_now.lease_transitions.unwrap_or(0);
                    let mut record = Record::of(&lease);
                    record.extend(creating.clone());
                    lease.spec = Some(spec(transitions + 1));
                    lease.metadata.annotations = annotations.clone();
                    record.put(&mut lease);
                    api.replace(&name, &PostParams::default(), &lease).await
                } else {
                    let looks_expired = not_renewed_within(&spec_now, Timestamp::now(), Duration::ZERO);
                    if !wait && (changed || !looks_expired) {
                        return Err(ClaimError::Held {
                            run_id: run_id.to_owned(),
                            holder: spec_now.holder_identity.unwrap_or_default(),
                            renewed: spec_now
                                .renew_time
                                .map_or_else(|| "never".into(), |t| format!("at {}", t.0)),
                        });
                    }
                    if watched.as_ref().is_some_and(|w| w.since.elapsed().is_zero()) {
                        tracing::info!(
                            "run {run_id} is claimed; watching its claim for {}s",
                            TERM.as_secs()
                        );
                    }
                    tokio::time::sleep(WATCH_EVERY).await;
                    continue;
                }
            }
        };
        match attempt {
            Ok(lease) => break lease,
            // Another kpo got there first, or changed it since it was read (or removed it): look
            // again.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => continue,
            Err(e) => return Err(unavailable(e)),
        }
    };
    let (tell, standing) = watch::channel(Standing::Held {
        renewed: Instant::now(),
    });
    let record = Record::of(&held);
    let (write, written) = watch::channel(held);
    let (asks, asked) = mpsc::unbounded_channel();
    let renewer = Renewer {
        api,
        name,
        me,
        written: write,
        tell,
        renewed: Instant::now(),
        record,
        waiting: Vec::new(),
    };
    let renewing = tokio::spawn(renewer.serve(asked));
    Ok(Claim {
        held: Held {
            standing,
            written,
            asks,
        },
        renewing,
    })
}

/// Renews a claim until it is lost or released, telling where it stands; the Lease's only writer
/// while the claim is held, so that the run's record never races a renewal.
struct Renewer {
    api: Api<Lease>,
    name: String,
    me: String,
    written: watch::Sender<Lease>,
    tell: watch::Sender<Standing>,
    /// When the last renewal that got through was sent.
    renewed: Instant,
    /// The run's record as this kpo keeps it: written with every renewal.
    record: Record,
    /// Those waiting for their record to be written.
    waiting: Vec<oneshot::Sender<Result<(), Lost>>>,
}

/// How one renewal went.
enum Renewal {
    Done,
    Failed(String),
    Lost(String),
}

impl Renewer {
    /// Renews every [`RENEW_EVERY`] (every [`RETRY_EVERY`] after a failure), and at once when a
    /// pod is to be recorded, pausing the claim when no renewal got through within
    /// [`ACT_WITHIN`] and resuming it when one does, until the Lease is another's or the run is
    /// given up.
    async fn serve(mut self, mut asks: mpsc::UnboundedReceiver<Ask>) {
        let mut next = Instant::now() + RENEW_EVERY;
        let mut open = true;
        loop {
            let woken = self
                .pausing_after(async {
                    tokio::select! {
                        () = tokio::time::sleep_until(next) => None,
                        ask = asks.recv(), if open => Some(ask),
                    }
                })
                .await;
            match woken {
                None => {}
                Some(None) => {
                    open = false;
                    continue;
                }
                Some(Some(first)) => {
                    // Whatever else was asked meanwhile goes with the same write.
                    let mut urgent = false;
                    let mut released = None;
                    for ask in std::iter::once(first).chain(std::iter::from_fn(|| asks.try_recv().ok())) {
                        match ask {
                            Ask::Release(done) => released = Some(done),
                            Ask::Record(entry, done) => urgent |= self.absorb(entry, done),
                            Ask::Forget { namespace, name } => self.record.forget(&namespace, &name),
                        }
                    }
                    if let Some(done) = released {
                        self.release().await;
                        let _ = done.send(());
                        return;
                    }
                    if !urgent {
                        continue;
                    }
                }
            }
            let sent = Instant::now();
            let attempt = tokio::time::timeout(REQUEST_LIMIT, self.renew());
            let outcome = match self.pausing_after(attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Renewal::Failed(format!("no answer within {}s", REQUEST_LIMIT.as_secs())),
            };
            next = match outcome {
                Renewal::Done => {
                    self.renewed = sent;
                    self.tell.send_replace(Standing::Held { renewed: sent });
                    for waiting in self.waiting.drain(..) {
                        let _ = waiting.send(Ok(()));
                    }
                    sent + RENEW_EVERY
                }
                Renewal::Failed(why) => {
                    tracing::debug!("renewing Lease {} failed, trying again: {why}", self.name);
                    self.tell.send_modify(|s| {
                        if let Standing::Paused { why: last, .. } = s {
                            *last = why;
                        }
                    });
                    Instant::now() + RETRY_EVERY
                }
                Renewal::Lost(why) => {
                    for waiting in self.waiting.drain(..) {
                        let _ = waiting.send(Err(Lost(why.clone())));
                    }
                    self.tell.send_replace(Standing::Lost(why));
                    return;
                }
            };
        }
    }

    /// Takes a pod into the run's record; whether the record must be written now (someone
    /// waits for it, or a pod's UID is to be known).
    fn absorb(&mut self, entry: Entry, done: Option<oneshot::Sender<Result<(), Lost>>>) -> bool {
        let new = !self.record.has(&entry);
        self.record.add(entry);
        let written = Record::of(&self.written.borrow()) == self.record;
        match done {
            Some(done) if written => {
                let _ = done.send(Ok(()));
            }
            Some(done) => self.waiting.push(done),
            None => {}
        }
        new || !self.waiting.is_empty()
    }

    /// Gives the run up, if the Lease is still this kpo's (a `resourceVersion` precondition),
    /// never a successor's: deletes the Lease when the run has no pod left that this kpo did
    /// not see gone; else keeps it as the run's record, released, owned by those pods.
    async fn release(&self) {
        if matches!(*self.tell.borrow(), Standing::Lost(_)) {
            return;
        }
        let written = self.written.borrow().clone();
        let released = if self.record.is_empty() {
            self.api
                .delete(&self.name, &if_unchanged(&written))
                .await
                .map(|_| ())
        } else {
            let mut record = written;
            if let Some(spec) = record.spec.as_mut() {
                spec.holder_identity = None;
            }
            if let Some(a) = record.metadata.annotations.as_mut() {
                a.remove(holder::PROCESS_ANNOTATION);
            }
            self.record.put(&mut record);
            let owners = self
                .record
                .owners(record.metadata.namespace.as_deref().unwrap_or_default());
            record.metadata.owner_references = (!owners.is_empty()).then_some(owners);
            self.api
                .replace(&self.name, &PostParams::default(), &record)
                .await
                .map(|_| ())
        };
        if let Err(e) = released {
            tracing::debug!("releasing Lease {} failed: {e}", self.name);
        }
    }

    /// Awaits `f`, pausing the claim meanwhile when its last renewal grows too old.
    async fn pausing_after<T>(&self, f: impl Future<Output = T>) -> T {
        tokio::pin!(f);
        loop {
            let held = matches!(*self.tell.borrow(), Standing::Held { .. });
            tokio::select! {
                out = &mut f => return out,
                () = tokio::time::sleep_until(self.renewed + ACT_WITHIN), if held => {
                    self.tell.send_replace(Standing::Paused {
                        renewed: self.renewed,
                        since: Timestamp::now(),
                        why: format!("no renewal of Lease {} got through for {}s", self.name, ACT_WITHIN.as_secs()),
                    });
                }
            }
        }
    }

    async fn renew(&self) -> Renewal {
        let mut next = self.written.borrow().clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        self.record.put(&mut next);
        match self.api.replace(&self.name, &PostParams::default(), &next).await {
            Ok(lease) => {
                self.written.send_replace(lease);
                Renewal::Done
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Renewal::Lost(format!("the run's Lease {} was removed", self.name))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => self.reread().await,
            Err(e) => Renewal::Failed(e.to_string()),
        }
    }

    /// After a conflict: a renewal whose answer was lost in an outage got through all the same
    /// when the Lease still names this kpo (nobody else writes its identity); then it goes on
    /// from there. Any other holder took the run over.
    async fn reread(&self) -> Renewal {
        match self.api.get_opt(&self.name).await {
            Ok(Some(lease))
                if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(&self.me) =>
            {
                self.written.send_replace(lease);
                Renewal::Failed("the Lease changed since this kpo last saw it; renewing again".into())
            }
            // Whoever can write the Lease names the holder: its words are made inert.
            Ok(Some(lease)) => Renewal::Lost(format!(
                "the run's Lease {} was taken over by {}",
                self.name,
                crate::said::said(
                    lease
                        .spec
                        .and_then(|s| s.holder_identity)
                        .unwrap_or_else(|| "nobody".into())
                )
            )),
            Ok(None) => Renewal::Lost(format!("the run's Lease {} was removed", self.name)),
            Err(e) => Renewal::Failed(e.to_string()),
        }
    }
}

impl Claim {
    /// Resolves (with the reason) once the claim is lost; never while it is held or paused.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let mut standing = self.held.standing.clone();
        async move {
            let lost = standing
                .wait_for(|s| matches!(s, Standing::Lost(_)))
                .await
                .map(|s| s.clone());
            match lost {
                Ok(Standing::Lost(why)) => why,
                _ => std::future::pending().await,
            }
        }
    }

    /// The right to act this claim gives.
    pub fn warrant(&self) -> Warrant {
        Warrant(Some(self.held.clone()))
    }

    /// Gives the run up: stops renewing and deletes the Lease, or leaves it as the run's record
    /// while a pod of the run may still exist (see [`record`]) — only if it is still this kpo's,
    /// never a successor's.
    pub async fn release(self) {
        let (done, finished) = oneshot::channel();
        if self.held.asks.send(Ask::Release(done)).is_ok() {
            let _ = finished.await;
        }
        let _ = self.renewing.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64) -> Lease {
        Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(
                    Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago),
                )),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_claim_is_free_at_once_only_when_released_or_long_expired() {
        let now = Timestamp::now();
        let me = Process::this();
        let free = |lease: &Lease| free_at_once(lease, now, me.as_ref());
        assert!(!free(&lease(Some("a"), 1)));
        // Looks expired, but the two clocks may differ: watched for a term, not taken at once.
        assert!(!free(&lease(Some("a"), 16)));
        assert!(!free(&lease(Some("a"), -600)), "renewed in this clock's future");
        assert!(free(&lease(Some("a"), 15 + 61)));
        assert!(free(&lease(None, 1)));
        assert!(free(&lease(Some(""), 1)));
    }

    #[test]
    fn a_gone_holder_is_judged_by_its_recorded_process() {
        let now = Timestamp::now();
        let me = Process::this().expect("a Linux /proc");
        let with_record = |holder: &str, record: String| {
            let mut l = lease(Some(holder), 1);
            l.metadata.annotations = Some([(holder::PROCESS_ANNOTATION.to_owned(), record)].into());
            l
        };
        // A gone process of this boot and PID namespace: free at once.
        let gone = me.record("here/1/abcd").replace(
            &format!("pid={} ", std::process::id()),
            &format!("pid={} ", i32::MAX),
        );
        assert!(free_at_once(
            &with_record("here/1/abcd", gone.clone()),
            now,
            Some(&me)
        ));
        // The same record under another holder's name (forged, or stale): not judged.
        assert!(!free_at_once(&with_record("there/1/abcd", gone), now, Some(&me)));
        // This very process: alive.
        assert!(!free_at_once(
            &with_record("here/1/abcd", me.record("here/1/abcd")),
            now,
            Some(&me)
        ));
        // No record (an older kpo, or a holder name alone): expiry decides.
        assert!(!free_at_once(
            &lease(Some(&format!("here/{}/abcd", i32::MAX)), 1),
            now,
            Some(&me)
        ));
    }
}
