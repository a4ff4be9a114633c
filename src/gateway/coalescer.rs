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
/// with the same old cookie. A transient failure that took
/// [`RefreshCoalescer::SLOW`] or longer (a provider that hangs rather than
/// refuses connections) is kept for [`RefreshCoalescer::HOLD_FAILURE`], so
/// a user's next requests do not each wait for its timeout again; a quick
/// failure is retried at once, and a refusal is never kept.
#[derive(Default)]
pub(crate) struct RefreshCoalescer {
    /// Each flight and until when it answers.
    flights: Mutex<HashMap<[u8; 32], (Instant, Flight)>>,
}

impl RefreshCoalescer {
    const KEEP: Duration = Duration::from_secs(10);
    /// How long a slow transient failure answers for the provider.
    pub(crate) const HOLD_FAILURE: Duration = Duration::from_secs(3);
    /// A failure that took this long is held.
    pub(crate) const SLOW: Duration = Duration::from_secs(1);

    pub(crate) async fn run<F, Fut>(&self, key: [u8; 32], refresh: F) -> Result<Session, RefreshFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, RefreshFailure>>,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            flights.retain(|_, (until, _)| *until > now);
            flights.entry(key).or_insert_with(|| (now + Self::KEEP, Flight::default())).1.clone()
        };
        let started = Instant::now();
        let result = flight.get_or_init(refresh).await.clone();
        if let Err(failure) = result {
            let hold = failure == RefreshFailure::Transient && started.elapsed() >= Self::SLOW;
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(entry) = flights.get_mut(&key).filter(|(_, f)| Arc::ptr_eq(f, &flight)) {
                if hold {
                    entry.0 = entry.0.min(Instant::now() + Self::HOLD_FAILURE);
                } else {
                    flights.remove(&key);
                }
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
        // A quick failure is not kept: the next caller tries again.
        let _ = c.run([1; 32], run).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_slow_failure_answers_for_a_moment() {
        let c = RefreshCoalescer::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let hang = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(RefreshCoalescer::SLOW).await;
            Err(RefreshFailure::Transient)
        };
        let _ = c.run([4; 32], hang).await;
        // The next caller does not wait for the hanging provider again.
        let quick = tokio::time::timeout(Duration::from_millis(100), c.run([4; 32], hang)).await;
        assert_eq!(quick.expect("answered at once"), Err(RefreshFailure::Transient));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refusal_is_not_kept_and_a_held_failure_expires() {
        let c = RefreshCoalescer::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let refuse = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(RefreshFailure::Rejected)
        };
        let _ = c.run([2; 32], refuse).await;
        let _ = c.run([2; 32], refuse).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "each refusal is asked again");
        let fail = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(RefreshCoalescer::SLOW).await;
            Err(RefreshFailure::Transient)
        };
        let _ = c.run([3; 32], fail).await;
        std::thread::sleep(RefreshCoalescer::HOLD_FAILURE + Duration::from_millis(50));
        let _ = c.run([3; 32], fail).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4, "asked again once the hold is over");
    }
}
