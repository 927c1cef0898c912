//! The `kube` clients kpo uses: kube's own stack without its built-in retries, plus a layer that
//! honours `Retry-After`.
//!
//! kube retries 429, 503 and 504 by itself, up to 15 times over minutes, whatever the task's
//! deadline; kpo retries in one place instead (`supervise::retry`), bounded by the deadline. An
//! API server that sheds load (API Priority and Fairness, a proxy in front of it) answers 429 or
//! 503 with `Retry-After: N`; kube turns those answers into errors and drops their headers, so the
//! wait happens here: the answer is handed back only once N seconds have passed, and kpo's backoff
//! adds its delay after that.
//!
//! The HTTP stack under kube's layers is built here rather than by kube, for one setting:
//! `TCP_NODELAY`. kube's connector leaves Nagle's algorithm on, and a fresh TLS connection writes
//! its handshake's last message and then the first request: the request waits until the server
//! acknowledges the handshake, which a Linux server delays by 40 ms. Measured on the test
//! cluster, the log read at a run's end took 50–60 ms instead of 10 ms. Go's clients — kubectl,
//! client-go, the API server itself — turn Nagle off on every connection; so does kpo.
//!
//! Every request first takes a token from a client-side bucket ([`RateLimit`]), as client-go's
//! clients do, so that a batch of a thousand runs is polite to the API server; the default is
//! generous enough that a thousand creates take seconds (client-go's 5/s with a burst of 10 would
//! take over three minutes).

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Response, StatusCode, header};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::{ClientBuilder, ConfigExt, DynBody};
use kube::{Client, Config};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// The longest `Retry-After` honoured; a server asking for more is retried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How many requests a client may start: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    /// 100 requests a second, 500 at once: a thousand pods are created in about five seconds,
    /// and a busy batch stays well inside what API Priority and Fairness gives one client.
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(100).expect("not zero"),
            burst: NonZeroU32::new(500).expect("not zero"),
        }
    }
}

/// A client for `config` that honours `Retry-After`, limited to the default [`RateLimit`].
///
/// # Errors
/// When kube cannot build a client for the configuration (TLS, proxy, auth settings).
pub fn build(config: Config) -> Result<Client, kube::Error> {
    build_limited(config, RateLimit::default())
}

/// [`build`] with a rate limit of its own.
///
/// # Errors
/// As [`build`].
pub fn build_limited(mut config: Config, limit: RateLimit) -> Result<Client, kube::Error> {
    config.default_retry = false;
    let quota = governor::Quota::per_second(limit.per_second).allow_burst(limit.burst);
    let bucket = Arc::new(governor::RateLimiter::direct(quota));
    Ok(stack(config)?
        .with_layer(&tower::util::AndThenLayer::new(honour_retry_after))
        .with_layer(&tower::layer::layer_fn(move |inner| TakeToken {
            inner,
            bucket: bucket.clone(),
            waiting: None,
            has_token: false,
        }))
        .build())
}

/// What kube's [`ClientBuilder`] takes: requests in, boxed bodies out.
type Stack = tower::util::BoxService<http::Request<kube::client::Body>, Response<Box<DynBody>>, BoxError>;

/// kube's own stack (its layers for the cluster's address, credentials and extra headers, its
/// timeouts), on connections that send each write at once. A configuration with a proxy is
/// left to kube, which builds only the proxies its features include.
fn stack(config: Config) -> Result<ClientBuilder<Stack>, kube::Error> {
    if config.proxy_url.is_some() {
        return ClientBuilder::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let mut connector =
        hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .map_err(BoxError::from)
        .service(hyper)
        .map_response(|response: Response<_>| {
            response
                .map(|body| Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>)
        })
        .boxed();
    Ok(ClientBuilder::new(service, config.default_namespace))
}

type Bucket = governor::DefaultDirectRateLimiter;

/// A service that starts a request only with a token from the bucket: it waits for one in
/// `poll_ready`, as tower's own rate limit does, so that requests queue rather than fail.
struct TakeToken<S> {
    inner: S,
    bucket: Arc<Bucket>,
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    has_token: bool,
}

impl<S: Service<R>, R> Service<R> for TakeToken<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.has_token {
            let bucket = self.bucket.clone();
            let wait = self
                .waiting
                .get_or_insert_with(|| Box::pin(async move { bucket.until_ready().await }));
            std::task::ready!(wait.as_mut().poll(cx));
            self.waiting = None;
            self.has_token = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.has_token = false;
        self.inner.call(request)
    }
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
