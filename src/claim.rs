//! One supervisor per run: before it acts on a run's pod, kpo claims the run with a
//! `coordination.k8s.io` Lease beside it (`kpo-run-<run id>`), renews it while it supervises and
//! deletes it at the end. Every write carries the Lease's `resourceVersion`, so of two kpo
//! processes only one can hold it; a holder that died stops renewing and its claim expires, so
//! that a new kpo can take the run over. A supervisor that loses its claim is told, and stops
//! acting on the pod.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use tokio::sync::watch;

use crate::exit;

/// How long a claim lasts without renewal: how soon a new kpo can take over from a dead one.
pub const TERM: Duration = Duration::from_secs(15);
/// How often the holder renews, well inside the term.
const RENEW_EVERY: Duration = Duration::from_secs(5);

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
    api: Api<Lease>,
    name: String,
    lost: watch::Receiver<Option<String>>,
    /// The Lease as this kpo last wrote it.
    written: watch::Receiver<Lease>,
    renewing: tokio::task::JoinHandle<()>,
}

/// This machine's name, as claims give it.
fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Who holds a claim: the machine, the process, and a random part for two kpo of one process.
fn identity() -> String {
    format!(
        "{}/{}/{}",
        host(),
        std::process::id(),
        crate::names::random_suffix(4)
    )
}

/// Whether `holder` names a kpo process of this machine that no longer exists (killed): its
/// claim need not be waited out.
fn holder_is_dead_here(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, '/');
    let (_random, pid, host) = (parts.next(), parts.next(), parts.next());
    let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    host == Some(self::host().as_str()) && pid != std::process::id() as i32 && !alive(pid)
}

#[cfg(unix)]
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive(_pid: i32) -> bool {
    true
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Whether a claim is free to take: released, not renewed within its term, or held by a kpo of
/// this machine that is gone.
fn free(lease: &Lease, at: Timestamp) -> bool {
    let spec = lease.spec.clone().unwrap_or_default();
    match spec.holder_identity.as_deref() {
        None | Some("") => return true,
        Some(holder) if holder_is_dead_here(holder) => return true,
        Some(_) => {}
    }
    let term = jiff::SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
    spec.renew_time.is_none_or(|renewed| renewed.0 + term < at)
}

/// The Lease's name for a run.
pub fn lease_name(run_id: &str) -> String {
    format!("kpo-run-{run_id}")
}

/// Claims run `run_id` in `namespace`. When another kpo holds it, waits until the claim is free
/// (released or expired) if `wait`, else fails naming the holder.
///
/// # Errors
/// The claim is held by another kpo (and `wait` is false), or the cluster refuses or cannot be
/// reached.
pub async fn take(
    client: &kube::Client,
    namespace: &str,
    run_id: &str,
    wait: bool,
) -> Result<Claim, ClaimError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(run_id);
    let me = identity();
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
    let held = loop {
        let attempt = match api.get_opt(&name).await.map_err(unavailable)? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([(crate::pod::LABEL_RUN_ID.to_owned(), run_id.to_owned())].into()),
                        ..Default::default()
                    },
                    spec: Some(spec(0)),
                };
                api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) if free(&lease, Timestamp::now()) => {
                let transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
                lease.spec = Some(spec(transitions + 1));
                api.replace(&name, &PostParams::default(), &lease).await
            }
            Some(lease) => {
                let spec = lease.spec.unwrap_or_default();
                let holder = spec.holder_identity.unwrap_or_default();
                if !wait {
                    return Err(ClaimError::Held {
                        run_id: run_id.to_owned(),
                        holder,
                        renewed: spec
                            .renew_time
                            .map_or_else(|| "never".into(), |t| format!("at {}", t.0)),
                    });
                }
                tracing::info!("run {run_id} is claimed by {holder}; waiting");
                // Until the claim could have expired; a release comes sooner to a re-read.
                tokio::time::sleep(RENEW_EVERY.min(TERM)).await;
                continue;
            }
        };
        match attempt {
            Ok(lease) => break lease,
            // Another kpo got there first, or changed it since it was read: look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(unavailable(e)),
        }
    };
    let (tell, lost) = watch::channel(None);
    let (write, written) = watch::channel(held);
    let renewing = tokio::spawn(renew(api.clone(), name.clone(), write, tell));
    Ok(Claim {
        api,
        name,
        lost,
        written,
        renewing,
    })
}

/// Renews the claim every [`RENEW_EVERY`] until it is lost (another writer changed the Lease, or
/// no renewal got through within the term) — then says why and stops.
async fn renew(
    api: Api<Lease>,
    name: String,
    written: watch::Sender<Lease>,
    tell: watch::Sender<Option<String>>,
) {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let mut next = written.borrow().clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        match api.replace(&name, &PostParams::default(), &next).await {
            Ok(lease) => {
                written.send_replace(lease);
                renewed = tokio::time::Instant::now();
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                tell.send_replace(Some(format!("the run's Lease {name} was taken over or removed")));
                return;
            }
            Err(e) if renewed.elapsed() >= TERM => {
                tell.send_replace(Some(format!(
                    "the run's Lease {name} could not be renewed within its term ({e})"
                )));
                return;
            }
            Err(e) => tracing::debug!("renewing Lease {name} failed, trying again: {e}"),
        }
    }
}

impl Claim {
    /// Resolves (with the reason) once the claim is lost; never while it is held.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            let reason = lost
                .wait_for(Option::is_some)
                .await
                .ok()
                .map(|r| r.clone().unwrap_or_default());
            match reason {
                Some(reason) => reason,
                None => std::future::pending().await,
            }
        }
    }

    /// Gives the run up: stops renewing and deletes the Lease — only if it is still this kpo's
    /// (a `resourceVersion` precondition), never a successor's.
    pub async fn release(self) {
        self.renewing.abort();
        let _ = self.renewing.await;
        if self.lost.borrow().is_some() {
            return;
        }
        let resource_version = self.written.borrow().metadata.resource_version.clone();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version,
                uid: None,
            }),
            ..Default::default()
        };
        if let Err(e) = self.api.delete(&self.name, &params).await {
            tracing::debug!("releasing Lease {} failed: {e}", self.name);
        }
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
    fn a_claim_is_free_once_released_or_expired() {
        let now = Timestamp::now();
        assert!(!free(&lease(Some("a"), 1), now));
        assert!(free(&lease(Some("a"), 16), now));
        assert!(free(&lease(None, 1), now));
        assert!(free(&lease(Some(""), 1), now));
        // A kpo of this machine that is gone (a pid no process has) holds nothing.
        let dead = format!("{}/{}/abcd", host(), i32::MAX);
        assert!(free(&lease(Some(&dead), 1), now));
        let alive_here = format!("{}/1/abcd", host());
        assert!(!free(&lease(Some(&alive_here), 1), now));
        assert!(!free(
            &lease(Some(&format!("elsewhere/{}/abcd", i32::MAX)), 1),
            now
        ));
    }
}
