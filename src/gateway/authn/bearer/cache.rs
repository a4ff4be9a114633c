//! Verified bearer JWTs by the SHA-256 of the token, so a client that
//! sends the same token again costs one hash and one map lookup. An entry
//! lives until the token expires or [`MAX_AGE_SECONDS`], whichever comes
//! first (so a key the issuer withdraws stops working within that bound).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::gateway::authn::MachineCaller;

/// Longest time a verification is reused, seconds.
pub const MAX_AGE_SECONDS: u64 = 300;

/// Most tokens remembered. When full, expired entries go; when all are
/// live, everything goes (a flood of distinct valid tokens only costs
/// verifications, never a wrong answer).
pub const MAX_ENTRIES: usize = 10_000;

/// The cache key of a token.
pub fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A verification: live until (Unix seconds), and its caller.
type Entry = (u64, Arc<MachineCaller>);

/// See the module docs.
#[derive(Default)]
pub struct VerifiedCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl VerifiedCache {
    /// The caller a token verified as, while the entry is live at `now`.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Arc<MachineCaller>> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|(until, _)| *until > now).map(|(_, c)| c.clone())
    }

    /// Remembers a verification until min(the caller's expiry, now +
    /// [`MAX_AGE_SECONDS`]).
    pub fn put(&self, key: [u8; 32], caller: Arc<MachineCaller>, now: u64) {
        let until = caller.expires_at.min(now + MAX_AGE_SECONDS);
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (u, _)| *u > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (until, caller));
    }

    /// How many entries there are (for tests).
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
