//! `client_credentials` tokens for routes with `tokenAuth`: fetched once,
//! shared by every serving thread, renewed before they expire.
//!
//! - The hot path (a token at hand) takes a read lock, clones a
//!   [`HeaderValue`] (a reference count) and reads one atomic; no lock is
//!   held across an `await`.
//! - Renewal ([`Schedule`]) starts in the background when a request sees the
//!   token past its renewal time; that request and every other one keep
//!   sending the current token meanwhile. Only when no usable token is left
//!   do requests wait, all on the one fetch in flight (single flight per
//!   source, so per route).
//! - A failed fetch backs off ([`schedule::backoff`]): until the next
//!   attempt is due, requests without a usable token fail at once with
//!   [`TokenError::Backoff`] (a 502) instead of reaching the endpoint. The
//!   first request after that tries again, so the route recovers by itself.
//!
//! Tokens never reach logs or metrics; logs name the endpoint's host and
//! the kind of failure only.

mod fetch;
pub mod schedule;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use futures::future::Shared;
use http::HeaderValue;
use tokio::sync::oneshot;

use self::fetch::{Endpoint, Fetched};
pub use self::schedule::Schedule;
use crate::contract::routes::TokenAuthConfig;
use crate::gateway::metrics::{TokenCounters, upstream_tokens};

/// Why no token is at hand.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TokenError {
    /// The `tokenAuth` configuration cannot work (found at startup).
    #[error("{0}")]
    Config(String),
    /// Connecting, TLS, a timeout, or a body that broke off or was too
    /// large.
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    /// The endpoint answered with an error status; `code` is the OAuth2
    /// error code (`invalid_client`, …) when it sent a well-formed one.
    #[error("the token endpoint answered HTTP {status}: {code}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// OAuth2 error code, or what was wrong instead.
        code: String,
    },
    /// A success status without a usable bearer token.
    #[error("the token endpoint's answer holds no usable bearer token: {0}")]
    BadResponse(&'static str),
    /// The last fetch failed and the next one is not due yet.
    #[error("the token endpoint failed recently ({last}); next attempt in {retry_in:?}")]
    Backoff {
        /// Why the last fetch failed.
        last: Box<TokenError>,
        /// Until the next attempt, to the millisecond.
        retry_in: Duration,
    },
    /// The fetch was dropped before it ended (the gateway is stopping).
    #[error("the token request was cancelled")]
    Cancelled,
}

/// The token of one route.
pub struct TokenSource {
    inner: Arc<Inner>,
}

/// A token at hand and its plan.
struct Current {
    value: HeaderValue,
    renew_at: Instant,
    usable_until: Instant,
}

/// The outcome of one fetch, as every caller waiting for it sees it.
type Flight = Shared<oneshot::Receiver<Result<HeaderValue, TokenError>>>;

/// What only the slow path touches: the fetch in flight and the failures.
#[derive(Default)]
struct Control {
    flight: Option<Flight>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<TokenError>,
}

struct Inner {
    endpoint: Endpoint,
    metrics: TokenCounters,
    current: RwLock<Option<Current>>,
    control: Mutex<Control>,
    /// Nanoseconds after `epoch` before which the hot path starts no
    /// renewal: during backoff, and ([`u64::MAX`]) while a fetch runs.
    no_renewal_before: AtomicU64,
    epoch: Instant,
}

impl TokenSource {
    /// A source for `config`. Does no I/O: the first request fetches.
    pub fn new(config: &TokenAuthConfig) -> Result<Self, TokenError> {
        let endpoint = Endpoint::new(config)?;
        let metrics = upstream_tokens().handles(&endpoint.host, &config.client_id);
        let inner = Inner {
            endpoint,
            metrics,
            current: RwLock::new(None),
            control: Mutex::new(Control::default()),
            no_renewal_before: AtomicU64::new(0),
            epoch: Instant::now(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// `Bearer <token>`, marked sensitive: the current token, or a fresh
    /// one when there is none yet. See the module documentation for when
    /// this waits and when it fails.
    pub async fn authorization(&self) -> Result<HeaderValue, TokenError> {
        if let Some(value) = self.inner.usable(Instant::now()) {
            return Ok(value);
        }
        let flight = self.inner.join_or_start()?;
        flight.await.unwrap_or(Err(TokenError::Cancelled))
    }
}

impl Inner {
    /// The hot path: the current token if it may still be sent, starting
    /// its renewal when due.
    fn usable(self: &Arc<Self>, now: Instant) -> Option<HeaderValue> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let token = current.as_ref().filter(|t| now < t.usable_until)?;
        let value = token.value.clone();
        let renew = now >= token.renew_at;
        drop(current);
        if renew && self.nanos(now) >= self.no_renewal_before.load(Ordering::Acquire) {
            // Refused only during backoff; the current token still serves.
            let _ = self.join_or_start();
        }
        Some(value)
    }

    /// The slow path: the fetch in flight, or a new one unless the last
    /// failure's backoff is still running. Returns the token directly when
    /// one became usable meanwhile.
    fn join_or_start(self: &Arc<Self>) -> Result<Flight, TokenError> {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(flight) = &control.flight {
            return Ok(flight.clone());
        }
        // A fetch may have landed between the caller's look and this lock.
        if let Some(t) = self.current.read().unwrap_or_else(PoisonError::into_inner).as_ref()
            && now < t.usable_until
            && now < t.renew_at
        {
            return Ok(ready(Ok(t.value.clone())));
        }
        if let Some(retry_at) = control.retry_at
            && now < retry_at
        {
            let last = control.last_error.clone().unwrap_or(TokenError::Cancelled);
            let retry_in = Duration::from_millis((retry_at - now).as_millis().try_into().unwrap_or(u64::MAX));
            return Err(TokenError::Backoff { last: Box::new(last), retry_in });
        }
        let (tx, rx) = oneshot::channel();
        let flight = rx.shared();
        control.flight = Some(flight.clone());
        self.no_renewal_before.store(u64::MAX, Ordering::Release);
        let landing = Landing { inner: self.clone(), tx: Some(tx) };
        tokio::spawn(async move {
            let mut landing = landing;
            let sent = Instant::now();
            let result = landing.inner.endpoint.fetch().await;
            landing.land(sent, result);
        });
        Ok(flight)
    }

    /// Records the outcome of a fetch sent at `sent`, ends the flight and
    /// returns what its waiters get.
    fn record(&self, sent: Instant, result: Result<Fetched, TokenError>) -> Result<HeaderValue, TokenError> {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        control.flight = None;
        let now = Instant::now();
        match result {
            Ok(Fetched { value, expires_in }) => {
                let schedule = Schedule::new(expires_in);
                let (renew_at, usable_until) = schedule.at(sent);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Current { value: value.clone(), renew_at, usable_until });
                *control = Control::default();
                self.no_renewal_before.store(0, Ordering::Release);
                let expires_at =
                    SystemTime::now() + schedule.lifetime.saturating_sub(now.saturating_duration_since(sent));
                self.metrics.fetched(expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64));
                tracing::debug!(
                    endpoint = %self.endpoint.host,
                    expires_in = ?expires_in,
                    renew_after = ?schedule.renew_after,
                    "fetched a client_credentials token for a route"
                );
                Ok(value)
            }
            Err(error) => {
                control.failures += 1;
                let delay = schedule::backoff(control.failures, schedule::jitter());
                control.retry_at = Some(now + delay);
                control.last_error = Some(error.clone());
                self.no_renewal_before.store(self.nanos(now + delay), Ordering::Release);
                self.metrics.failed();
                tracing::warn!(
                    endpoint = %self.endpoint.host,
                    %error,
                    failures = control.failures,
                    retry_in = ?delay,
                    "the token endpoint of a route failed; backing off"
                );
                Err(error)
            }
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos().try_into().unwrap_or(u64::MAX - 1)
    }
}

/// A flight that has already landed.
fn ready(result: Result<HeaderValue, TokenError>) -> Flight {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(result);
    rx.shared()
}

/// Ends a flight exactly once: with its result, or as
/// [`TokenError::Cancelled`] when the task is dropped midway (its runtime
/// stopping), so that the next request can start another.
struct Landing {
    inner: Arc<Inner>,
    tx: Option<oneshot::Sender<Result<HeaderValue, TokenError>>>,
}

impl Landing {
    fn land(&mut self, sent: Instant, result: Result<Fetched, TokenError>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(self.inner.record(sent, result));
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.land(Instant::now(), Err(TokenError::Cancelled));
    }
}

#[cfg(test)]
mod tests;
