//! When a token is renewed, when it stops being used, and how long a
//! failing endpoint is left alone. Pure arithmetic, so it is tested alone.

use std::time::{Duration, Instant};

/// Lifetime assumed when the token response has no `expires_in`
/// (RFC 6749 §5.1 makes it optional): five minutes. Short enough that a
/// token the server meant to be short-lived is not kept much longer than
/// usual; long enough not to load the endpoint.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Longest lifetime planned with: a token valid for a year is still
/// renewed daily, so a rotated client secret or changed scope is picked up.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Shortest lifetime planned with: an `expires_in` of 0 would otherwise
/// make every request fetch.
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Largest safety margin before expiry.
const MAX_SKEW: Duration = Duration::from_secs(30);

/// Smallest margin before expiry: `expires_in` counts whole seconds and the
/// server's `exp` is rounded down, so the token may expire up to a second
/// before `fetched + expires_in`.
const MIN_SKEW: Duration = Duration::from_secs(1);

/// First retry delay after a failed fetch.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The plan for one token, relative to when its request was sent (the
/// token may have been issued later, never earlier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The lifetime planned with (see [`Schedule::new`]).
    pub lifetime: Duration,
    /// From then on, the next request starts a renewal in the background
    /// and keeps using this token meanwhile.
    pub renew_after: Duration,
    /// From then on, the token is not sent anymore: requests wait for the
    /// renewal (or fail, when the endpoint is failing).
    pub usable_for: Duration,
}

impl Schedule {
    /// The plan for a token that the server said lives `expires_in`
    /// seconds ([`DEFAULT_LIFETIME`] when it did not say), kept within
    /// [`MIN_LIFETIME`] and [`MAX_LIFETIME`].
    ///
    /// With lifetime `L` and margin `skew = clamp(L/10, 1 s, 30 s)` (but at
    /// most `L/4`):
    /// - the token is used until `L - skew`;
    /// - renewal starts at 80 % of `L`, or earlier when that would leave
    ///   less than two margins before expiry, but never before `L/2`.
    ///
    /// A one-hour token is renewed after 48 minutes and used for at most
    /// 59.5; a four-second one is renewed after 2 s and used for 3.
    pub fn new(expires_in: Option<u64>) -> Self {
        let lifetime = expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs).clamp(MIN_LIFETIME, MAX_LIFETIME);
        let skew = (lifetime / 10).clamp(MIN_SKEW, MAX_SKEW).min(lifetime / 4);
        let usable_for = lifetime - skew;
        let renew_after = (lifetime * 4 / 5).min(lifetime.saturating_sub(2 * skew)).max(lifetime / 2);
        Self { lifetime, renew_after, usable_for }
    }

    /// The plan as instants, for a token requested at `sent`.
    pub fn at(self, sent: Instant) -> (Instant, Instant) {
        (sent + self.renew_after, sent + self.usable_for)
    }
}

/// How long to wait after the `failures`-th failure in a row (1 for the
/// first): [`BACKOFF_BASE`] doubled per failure, at most [`BACKOFF_CAP`],
/// scaled by `jitter` (in `0.5..=1.0`) so that many gateways do not retry
/// in lockstep.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP);
    delay.mul_f64(jitter.clamp(0.5, 1.0))
}

/// A random jitter factor for [`backoff`].
pub fn jitter() -> f64 {
    rand::random_range(0.5..=1.0)
}
