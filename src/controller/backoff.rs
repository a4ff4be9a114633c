//! Per-object exponential backoff after failed reconciles (as Kaniop's
//! `error_backoff_cache`): one object that keeps failing — its Secret
//! unreadable, the apiserver refusing its patch — is retried less and less
//! often, without slowing the retries of any other object, and is back to
//! normal after its first success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// First retry delay after a failure.
pub const FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX: Duration = Duration::from_secs(120);

/// Failure counts by object (`kind/namespace/name`).
#[derive(Debug, Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// The key of one object.
    pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> String {
        format!("{kind}/{}/{name}", namespace.unwrap_or_default())
    }

    /// Records a failure and returns how long to wait before the next try:
    /// 1 s, 2 s, 4 s, … up to [`MAX`], each ±10% so failures that happened
    /// together do not retry together.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_insert(0);
        let delay = FIRST.saturating_mul(1u32 << (*n).min(16)).min(MAX);
        *n = n.saturating_add(1);
        delay.mul_f64(rand::random_range(0.9..1.1))
    }

    /// Forgets an object's failures (after a successful reconcile).
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(key);
    }

    /// How many objects are backing off.
    pub fn len(&self) -> usize {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no object is backing off.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(d: Duration, secs: f64) -> bool {
        (d.as_secs_f64() - secs).abs() <= secs * 0.1 + 1e-9
    }

    #[test]
    fn doubles_per_object_up_to_the_cap_and_resets_on_success() {
        let b = ErrorBackoff::default();
        let a = ErrorBackoff::key("AuthPolicy", Some("ns"), "a");
        let other = ErrorBackoff::key("AuthPolicy", Some("ns"), "b");
        for secs in [1.0, 2.0, 4.0, 8.0, 16.0] {
            let d = b.failed(&a);
            assert!(about(d, secs), "{d:?} is not about {secs} s");
        }
        assert!(about(b.failed(&other), 1.0), "another object starts from the first delay");
        for _ in 0..20 {
            b.failed(&a);
        }
        assert!(about(b.failed(&a), MAX.as_secs_f64()), "capped");
        b.succeeded(&a);
        assert!(about(b.failed(&a), 1.0), "reset after a success");
        assert_eq!(b.len(), 2);
        assert_ne!(ErrorBackoff::key("AuthPolicy", Some("a"), "bc"), ErrorBackoff::key("AuthPolicy", Some("ab"), "c"));
    }
}
