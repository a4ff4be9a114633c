//! One refresh per session at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::session::Session;

/// Why a refresh did not produce a new session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshFailure {
    /// The provider refused (expired or revoked grant) or the user no
    /// longer passes the filters: sign in again.
    Rejected,
    /// Network trouble or the like: try again later.
    Transient,
}

type Flight = Arc<tokio::sync::OnceCell<Result<Session, RefreshFailure>>>;

/// Makes concurrent requests of one session share a single refresh (a
/// provider that rotates refresh tokens would reject all but the first),
/// and lets a successful result serve requests that arrive shortly after
/// with the same old cookie. Failures are not kept.
#[derive(Default)]
pub(crate) struct RefreshCoalescer {
    flights: Mutex<HashMap<[u8; 32], (Instant, Flight)>>,
}

impl RefreshCoalescer {
    const KEEP: Duration = Duration::from_secs(10);

    pub(crate) async fn run<F, Fut>(&self, key: [u8; 32], refresh: F) -> Result<Session, RefreshFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, RefreshFailure>>,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            flights.retain(|_, (at, _)| at.elapsed() < Self::KEEP);
            flights.entry(key).or_insert_with(|| (Instant::now(), Flight::default())).1.clone()
        };
        let result = flight.get_or_init(refresh).await.clone();
        if result.is_err() {
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if flights.get(&key).is_some_and(|(_, f)| Arc::ptr_eq(f, &flight)) {
                flights.remove(&key);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn coalescer_runs_one_refresh_for_concurrent_callers() {
        let c = RefreshCoalescer::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let run = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(RefreshFailure::Transient)
        };
        let (a, b) = tokio::join!(c.run([1; 32], run), c.run([1; 32], run));
        assert_eq!((a, b), (Err(RefreshFailure::Transient), Err(RefreshFailure::Transient)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A failure is not kept: the next caller tries again.
        let _ = c.run([1; 32], run).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
