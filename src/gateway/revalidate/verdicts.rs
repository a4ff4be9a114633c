//! The verdicts a config has passed on sessions validated before it took
//! effect, so each is judged once per config, not on every request.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::gateway::session::{SESSION_ID_BYTES, SessionView, now};

/// What the session's stored identity is worth under the current policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// It passes.
    Pass,
    /// It is refused.
    Deny(&'static str),
    /// The policy needs data the session does not keep.
    Unknown,
}

/// Most cached verdicts before the cache starts over.
const MAX_VERDICTS: usize = 100_000;

/// Verdicts on stored identities under one config, by session id (and the
/// re-validation they come from). Built with each config's `Gateway`.
pub(crate) struct Verdicts {
    /// When this config took effect (Unix seconds): a session validated
    /// later was judged by it.
    pub(super) since: u64,
    pub(super) cache: RwLock<HashMap<[u8; SESSION_ID_BYTES], (u64, Stored)>>,
}

impl Default for Verdicts {
    fn default() -> Self {
        Self::since(now())
    }
}

impl Verdicts {
    /// Verdicts for a config in effect since `since`.
    pub(crate) fn since(since: u64) -> Self {
        Self { since, cache: RwLock::default() }
    }

    /// The verdict on the session's stored identity under this config:
    /// `judge` works it out when none is remembered.
    pub(crate) fn judge(&self, view: &SessionView<'_>, judge: impl FnOnce() -> Stored) -> Stored {
        if view.validated_at > self.since {
            return Stored::Pass;
        }
        // Version-1 records have no id: judged every time, until their
        // re-validation gives them one.
        let cacheable = view.id != [0; SESSION_ID_BYTES];
        if cacheable {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&(validated_at, verdict)) = cache.get(&view.id)
                && validated_at == view.validated_at
            {
                return verdict;
            }
        }
        let verdict = judge();
        if cacheable {
            self.remember(view.id, view.validated_at, verdict);
        }
        verdict
    }

    /// Records that session `id` passed a re-validation at `validated_at`
    /// under this config: needed only within the second the config took
    /// effect, which `judge` cannot tell from before it.
    pub(crate) fn passed(&self, id: [u8; SESSION_ID_BYTES], validated_at: u64) {
        if validated_at <= self.since && id != [0; SESSION_ID_BYTES] {
            self.remember(id, validated_at, Stored::Pass);
        }
    }

    fn remember(&self, id: [u8; SESSION_ID_BYTES], validated_at: u64, verdict: Stored) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_VERDICTS {
            cache.clear();
        }
        cache.insert(id, (validated_at, verdict));
    }
}
