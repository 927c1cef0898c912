//! Retrying API calls that fail for reasons that pass — 5xx answers, 429 Too Many Requests, a
//! refused or reset connection, and 401 (expired credentials: kube re-reads token files at least
//! once a minute and re-runs exec plugins when their credential expires) — with capped, jittered
//! backoff until a deadline. Everything else (403, 404, 422, ...) is returned at once: waiting
//! would not change the answer.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Whether an error may go away by itself.
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 401 || s.code == 429 || (500..600).contains(&s.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Calls `f` until it succeeds, fails for good, or `limit` has been spent waiting.
pub async fn retrying<T, Fut, F>(what: &str, limit: Duration, f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(limit));
    f.retry(backoff)
        .when(transient)
        .notify(|e, wait| tracing::debug!("{what} failed ({e}); retrying in {wait:?}"))
        .await
}
