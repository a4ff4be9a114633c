//! Where pending device grants live: a small key-value store with
//! expiry, either this process's memory (bounded, kept across config
//! reloads) or the session store's Redis, so that with `store: Redis` a
//! code approved on one replica is redeemed on another.
//!
//! Both offer the same operations with the same atomicity: `take` is a
//! single `GETDEL` (or one removal under the mutex), so of many
//! concurrent polls of an approved code exactly one gets the record.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::gateway::session::redis::RedisBackend;

/// Most entries the in-memory store holds (grants, user codes, poll
/// marks and guess counters together). When full, expired entries are
/// dropped first; if it is still full new device codes are refused.
pub const MAX_MEMORY_ENTRIES: usize = 20_000;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be asked.
    #[error("device store unavailable: {0}")]
    Unavailable(String),
    /// The in-memory store is full.
    #[error("too many device authorizations in progress")]
    Full,
}

impl From<crate::gateway::session::redis::StoreError> for StoreError {
    fn from(e: crate::gateway::session::redis::StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// The in-memory store. Lives in the gateway's `Shared` state, so a
/// config reload keeps the codes in flight.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (Vec<u8>, u64)>>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, u64)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn room(map: &mut HashMap<String, (Vec<u8>, u64)>, now: u64) -> Result<(), StoreError> {
        if map.len() >= MAX_MEMORY_ENTRIES {
            map.retain(|_, (_, until)| *until > now);
        }
        if map.len() >= MAX_MEMORY_ENTRIES { Err(StoreError::Full) } else { Ok(()) }
    }
}

/// One of the two stores, with Redis keys under `prefix`.
pub enum Store<'a> {
    /// This process's memory.
    Memory(&'a MemoryStore),
    /// The session store's Redis.
    Redis {
        /// The connection.
        backend: &'a RedisBackend,
        /// Key prefix (the session store's, then `device:`).
        prefix: String,
    },
}

impl Store<'_> {
    fn key(&self, key: &str) -> String {
        match self {
            Self::Memory(_) => key.to_owned(),
            Self::Redis { prefix, .. } => format!("{prefix}device:{key}"),
        }
    }

    /// The value at `key`, if any and not expired.
    pub async fn get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => Ok(m.lock().get(&key).filter(|(_, until)| *until > now).map(|(v, _)| v.clone())),
            Self::Redis { backend, .. } => Ok(backend.get(&key).await?),
        }
    }

    /// Sets `key`, expiring after `ttl` seconds.
    pub async fn set(&self, key: &str, value: &[u8], ttl: u64, now: u64) -> Result<(), StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => {
                let mut map = m.lock();
                if !map.contains_key(&key) {
                    MemoryStore::room(&mut map, now)?;
                }
                map.insert(key, (value.to_vec(), now + ttl.max(1)));
                Ok(())
            }
            Self::Redis { backend, .. } => Ok(backend.set_ex(&key, value, ttl).await?),
        }
    }

    /// Sets `key` only if it is absent (or expired); whether it was set.
    pub async fn set_if_absent(&self, key: &str, value: &[u8], ttl: u64, now: u64) -> Result<bool, StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => {
                let mut map = m.lock();
                if map.get(&key).is_some_and(|(_, until)| *until > now) {
                    return Ok(false);
                }
                MemoryStore::room(&mut map, now)?;
                map.insert(key, (value.to_vec(), now + ttl.max(1)));
                Ok(true)
            }
            Self::Redis { backend, .. } => Ok(backend.set_if_absent(&key, value, ttl).await?),
        }
    }

    /// Removes `key` and returns what it held, atomically: of concurrent
    /// callers at most one gets the value.
    pub async fn take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => Ok(m.lock().remove(&key).filter(|(_, until)| *until > now).map(|(v, _)| v)),
            Self::Redis { backend, .. } => Ok(backend.run(redis::cmd("GETDEL").arg(&key).clone()).await?),
        }
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => {
                m.lock().remove(&key);
                Ok(())
            }
            Self::Redis { backend, .. } => {
                backend.delete(&key).await?;
                Ok(())
            }
        }
    }

    /// Adds one to the counter at `key` (a window of `window` seconds
    /// starting with its first count) and returns the new count.
    pub async fn count(&self, key: &str, window: u64, now: u64) -> Result<u64, StoreError> {
        let key = self.key(key);
        match self {
            Self::Memory(m) => {
                let mut map = m.lock();
                let live = map.get(&key).is_some_and(|(_, until)| *until > now);
                if !live {
                    MemoryStore::room(&mut map, now)?;
                    map.insert(key.clone(), (b"0".to_vec(), now + window.max(1)));
                }
                let entry = map.get_mut(&key).expect("just inserted");
                // Decimal, as Redis keeps counters, so readers see one format.
                let n = std::str::from_utf8(&entry.0).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) + 1;
                entry.0 = n.to_string().into_bytes();
                Ok(n)
            }
            Self::Redis { backend, .. } => {
                // One script, so the counter never lives without its expiry
                // (an INCR racing an expiry would make a permanent key).
                const SCRIPT: &str = "local n = redis.call('INCR', KEYS[1]) \
                    if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end \
                    return n";
                let n: u64 =
                    backend.run(redis::cmd("EVAL").arg(SCRIPT).arg(1).arg(&key).arg(window.max(1)).clone()).await?;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn take_hands_a_value_out_once_and_expiry_hides_it() {
        let m = MemoryStore::default();
        let s = Store::Memory(&m);
        s.set("a", b"1", 10, 100).await.unwrap();
        assert_eq!(s.get("a", 105).await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.get("a", 110).await.unwrap(), None, "expired");
        s.set("a", b"1", 10, 100).await.unwrap();
        assert_eq!(s.take("a", 101).await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.take("a", 101).await.unwrap(), None);
    }

    #[tokio::test]
    async fn counters_and_claims_follow_their_windows() {
        let m = MemoryStore::default();
        let s = Store::Memory(&m);
        assert_eq!(s.count("c", 60, 0).await.unwrap(), 1);
        assert_eq!(s.count("c", 60, 59).await.unwrap(), 2);
        assert_eq!(s.count("c", 60, 60).await.unwrap(), 1, "a new window");
        assert!(s.set_if_absent("p", b"", 5, 0).await.unwrap());
        assert!(!s.set_if_absent("p", b"", 5, 4).await.unwrap());
        assert!(s.set_if_absent("p", b"", 5, 5).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_memory_store_refuses_new_entries() {
        let m = MemoryStore::default();
        let s = Store::Memory(&m);
        for i in 0..MAX_MEMORY_ENTRIES {
            s.set(&i.to_string(), b"", 10, 0).await.unwrap();
        }
        assert!(matches!(s.set("new", b"", 10, 0).await, Err(StoreError::Full)));
        // Once the old ones expire there is room again.
        s.set("new", b"", 10, 10).await.unwrap();
    }
}
