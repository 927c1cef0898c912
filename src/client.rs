//! The `kube` clients kpo uses: kube's own stack without its built-in retries, plus a layer that
//! honours `Retry-After`.
//!
//! kube retries 429, 503 and 504 by itself, up to 15 times over minutes, whatever the task's
//! deadline; kpo retries in one place instead (`supervise::retry`), bounded by the deadline. An
//! API server that sheds load (API Priority and Fairness, a proxy in front of it) answers 429 or
//! 503 with `Retry-After: N`; kube turns those answers into errors and drops their headers, so the
//! wait happens here: the answer is handed back only once N seconds have passed, and kpo's backoff
//! adds its delay after that.

use std::time::Duration;

use http::{Response, StatusCode, header};
use kube::client::ClientBuilder;
use kube::{Client, Config};

/// The longest `Retry-After` honoured; a server asking for more is retried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A client for `config` that honours `Retry-After`.
///
/// # Errors
/// When kube cannot build a client for the configuration (TLS, proxy, auth settings).
pub fn build(mut config: Config) -> Result<Client, kube::Error> {
    config.default_retry = false;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&tower::util::AndThenLayer::new(honour_retry_after))
        .build())
}

async fn honour_retry_after<B>(response: Response<B>) -> Result<Response<B>, tower::BoxError> {
    if let Some(wait) = retry_after(&response) {
        tracing::debug!(
            "the API server answered {} and asks to retry after {wait:?}",
            response.status()
        );
        tokio::time::sleep(wait).await;
    }
    Ok(response)
}

/// The wait a 429 or 503 answer asks for (delay-seconds form), capped.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    if !matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Response<()> {
        let mut r = Response::builder().status(status);
        if let Some(v) = retry_after {
            r = r.header(header::RETRY_AFTER, v);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn only_throttling_answers_with_delay_seconds_wait() {
        assert_eq!(retry_after(&answer(429, Some("2"))), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&answer(503, Some("1"))), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(&answer(429, Some("3600"))), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&answer(429, None)), None);
        assert_eq!(
            retry_after(&answer(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            None
        );
        assert_eq!(retry_after(&answer(500, Some("2"))), None);
        assert_eq!(retry_after(&answer(200, Some("2"))), None);
    }
}
