//! Retrying API calls that fail for reasons that pass — 5xx answers, 429 Too Many Requests, a
//! refused or reset connection, and 401 (expired credentials: kube re-reads token files at least
//! once a minute and re-runs exec plugins when their credential expires) — with capped, jittered
//! backoff until a deadline. Everything else (403, 404, 422, ...) is returned at once: waiting
//! would not change the answer.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use crate::claim::{Lost, Warrant};

/// Whether an error may go away by itself.
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 401 || s.code == 429 || (500..600).contains(&s.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An act on the pod that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// The run's claim was lost: the pod is someone else's to act on.
    #[error(transparent)]
    Lost(#[from] Lost),
}

impl ActError {
    fn transient(&self) -> bool {
        matches!(self, ActError::Api(e) if transient(e))
    }
}

/// Calls `f` until it succeeds, fails for good, or `limit` has been spent waiting. When the
/// limit is spent and no renewal of the run's claim got through meanwhile either, the API server
/// is away for this kpo as a whole (an outage, a partition): the wait starts again once a
/// renewal gets through, for as long as the claim is not lost.
pub async fn retrying<T, Fut, F>(
    what: &str,
    limit: Duration,
    warrant: &Warrant,
    f: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    through_outages(what, limit, warrant, f, transient).await
}

/// [`retrying`] for an act on the pod (a create, a delete): every attempt waits until the claim
/// lets this kpo act, and none is made once it is lost.
pub async fn acting<T, Fut, F>(
    what: &str,
    limit: Duration,
    warrant: &Warrant,
    mut f: F,
) -> Result<T, ActError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let attempt = || {
        let act = f();
        async move {
            warrant.may_act().await?;
            Ok(act.await?)
        }
    };
    through_outages(what, limit, warrant, attempt, ActError::transient).await
}

async fn through_outages<T, E, Fut, F>(
    what: &str,
    limit: Duration,
    warrant: &Warrant,
    mut f: F,
    transient: fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    loop {
        let began = Instant::now();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(limit));
        let result = (&mut f)
            .retry(backoff)
            .when(transient)
            .notify(|e, wait| tracing::debug!("{what} failed ({e}); retrying in {wait:?}"))
            .await;
        match result {
            Err(e) if transient(&e) && !warrant.answered_since(began) => {
                tracing::debug!("{what}: the API server has not answered for a while; waiting for it");
                if warrant.answered_after(began).await.is_err() {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}
