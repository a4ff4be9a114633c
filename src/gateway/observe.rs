//! Every public response, counted by status code and, with `accessLog`,
//! logged: one line with the method, the path (never the query, which may
//! carry tokens), the status and the time taken. A tower layer around the
//! whole public router, so no handler can forget it; its future is not
//! boxed, and without the access log it reads no clock and copies nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::Request;
use axum::response::Response;
use tower::{Layer, Service};

use super::metrics::Metrics;

/// Adds [`Observe`] to a service.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    access_log: bool,
}

impl ObserveLayer {
    /// Counts into `metrics`; logs each request when `access_log`.
    pub fn new(metrics: Arc<Metrics>, access_log: bool) -> Self {
        Self { metrics, access_log }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, metrics: self.metrics.clone(), access_log: self.access_log }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
    access_log: bool,
}

/// What the access log line says about the request.
struct Line {
    method: axum::http::Method,
    path: String,
    started: Instant,
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let line = self.access_log.then(|| Line {
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        });
        Observed { inner: self.inner.call(request), metrics: self.metrics.clone(), line }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future, observed when it completes.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        metrics: Arc<Metrics>,
        line: Option<Line>,
    }
}

impl<F, E> Future for Observed<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let status = response.status();
            this.metrics.response(status);
            if let Some(line) = this.line.take() {
                tracing::info!(
                    target: "authgate::access",
                    method = %line.method,
                    path = %line.path,
                    status = status.as_u16(),
                    duration_ms = line.started.elapsed().as_secs_f64() * 1000.0,
                    "request"
                );
            }
        }
        Poll::Ready(result)
    }
}
