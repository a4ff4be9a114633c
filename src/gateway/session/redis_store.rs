//! Sessions kept in Redis: the browser holds only a sealed ticket, the
//! record lives server-side under a TTL, and ending a session deletes it
//! for every replica.
//!
//! Keys, each under the prefix (by default the cookie name and a colon):
//!
//! - `s:<id>`: a hash, `t` = SHA-256 of the ticket's secret, `r` = the
//!   record sealed with the keyring (the key's name as associated data, so
//!   a record copied to another key does not open). Expires when the
//!   session does.
//! - `e:<id>`: a tombstone left by sign-out or [`SessionStore::end_user`],
//!   so a refresh racing the end cannot write the session back.
//! - `u:<hash of provider, subject>` and `sid:<hash of provider, sid>`:
//!   sets of session ids, for ending every session of a user or of one
//!   provider session (back-channel logout). Subjects and sids appear only
//!   hashed in key names.
//!
//! The cookie is `seal(cookie name, id ‖ secret)`: 16 bytes of session id
//! and 32 random bytes. Loading a session is one `HMGET`.

use std::future::Future;

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cookies::{CookieSettings, Present};
use super::redis::{RedisBackend, StoreError};
use super::store::{Loaded, SessionStore, Ticket};
use super::{Keyring, SESSION_ID_BYTES, Session, now};
use crate::contract::session::{RedisConfig, SessionConfig};
use crate::gateway::error::Error;
use crate::gateway::metrics::Metrics;

/// A record key's `t` and `r` fields, as `HMGET` returns them.
type HashAndRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

pub use super::store::TICKET_SECRET_BYTES;

/// Creates or updates a session. Refused (-1) after a tombstone; otherwise
/// 1 when the record is new (its ticket hash was set), 0 when it existed.
const SAVE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local created = redis.call('HSETNX', KEYS[1], 't', ARGV[1])
redis.call('HSET', KEYS[1], 'r', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[5])
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
return created
";

/// Ends every session listed in the index sets `KEYS`; how many existed.
const END_INDEXED: &str = r"
local ended = 0
for _, index in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', index)) do
    ended = ended + redis.call('DEL', ARGV[1] .. 's:' .. id)
    redis.call('SET', ARGV[1] .. 'e:' .. id, '1', 'EX', ARGV[2])
  end
  redis.call('DEL', index)
end
return ended
";

/// A gateway's Redis session settings and connection, built once per
/// config without I/O.
#[derive(Debug)]
pub struct RedisSessions {
    backend: RedisBackend,
    prefix: String,
    /// Longest a session lives: the TTL of indexes and tombstones.
    max_ttl: u64,
}

impl RedisSessions {
    /// For a `session` config whose store is `redis`.
    pub fn new(session: &SessionConfig, redis: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            backend: RedisBackend::new(redis)?,
            prefix: key_prefix(session, redis),
            max_ttl: session.ttl_seconds.max(1),
        })
    }

    /// The connection, for other shared state (device flows) to use.
    pub fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    fn record_key(&self, id: &[u8]) -> String {
        format!("{}s:{}", self.prefix, hex(id))
    }

    fn tombstone_key(&self, id: &[u8]) -> String {
        format!("{}e:{}", self.prefix, hex(id))
    }

    fn user_key(&self, provider: &str, subject: &str) -> String {
        format!("{}u:{}", self.prefix, hashed(provider, subject))
    }

    fn sid_key(&self, provider: &str, sid: &str) -> String {
        format!("{}sid:{}", self.prefix, hashed(provider, sid))
    }
}

/// The prefix a config's keys get: its own, or the cookie name and a colon.
pub fn key_prefix(session: &SessionConfig, redis: &RedisConfig) -> String {
    redis.key_prefix.clone().unwrap_or_else(|| format!("{}:", session.cookie_name))
}

/// The Redis store over one gateway's sessions, keyring and cookies.
pub struct RedisStore<'g> {
    /// Keys and connection.
    pub sessions: &'g RedisSessions,
    /// Seals tickets and records.
    pub keyring: &'g Keyring,
    /// The ticket's cookie.
    pub cookies: &'g CookieSettings,
    /// Where store errors are counted.
    pub metrics: &'g Metrics,
}

impl RedisStore<'_> {
    fn failed(&self, operation: &'static str, e: &StoreError) {
        self.metrics.store_error(operation);
        tracing::warn!(operation, error = %e, "session store unavailable");
    }

    /// The ticket a request's cookie carries, if it opens as one of ours.
    fn ticket(&self, headers: &HeaderMap) -> (Option<Ticket>, Present) {
        let (sealed, present) = self.cookies.read_session(headers);
        let ticket = sealed
            .and_then(|s| self.keyring.open(self.cookies.name().as_bytes(), &s))
            .and_then(|raw| Ticket::from_bytes(&raw));
        (ticket, present)
    }

    async fn load(&self, headers: &HeaderMap) -> Loaded {
        let (ticket, present) = self.ticket(headers);
        let Some(ticket) = ticket else {
            return Loaded { present, ..Loaded::default() };
        };
        let key = self.sessions.record_key(&ticket.id);
        let fields: Result<HashAndRecord, _> =
            self.sessions.backend.run(redis::cmd("HMGET").arg(&key).arg("t").arg("r").clone()).await;
        let record = match fields {
            Ok((Some(hash), Some(sealed))) if bool::from(hash.ct_eq(&ticket.secret_hash())) => {
                std::str::from_utf8(&sealed).ok().and_then(|s| self.keyring.open(key.as_bytes(), s))
            }
            Ok(_) => None,
            Err(e) => {
                self.failed("load", &e);
                return Loaded { present, ticket: Some(ticket), unavailable: true, record: None };
            }
        };
        Loaded { record, present, ticket: Some(ticket), unavailable: false }
    }

    async fn save(&self, session: &Session, present: Present, out: &mut HeaderMap) -> Result<(), Error> {
        let ttl = session.expires_at.saturating_sub(now());
        if ttl == 0 {
            return Ok(());
        }
        let ticket = Ticket::new(session.id);
        let key = self.sessions.record_key(&session.id);
        let sealed = self.keyring.seal(key.as_bytes(), &session.encode());
        let mut script = redis::cmd("EVAL");
        let mut keys = vec![key, self.sessions.tombstone_key(&session.id)];
        keys.push(self.sessions.user_key(&session.provider, &session.subject));
        if let Some(sid) = &session.idp_sid {
            keys.push(self.sessions.sid_key(&session.provider, sid));
        }
        script.arg(SAVE).arg(keys.len()).arg(&keys);
        script.arg(&ticket.secret_hash()[..]).arg(sealed).arg(ttl).arg(self.sessions.max_ttl).arg(hex(&session.id));
        match self.sessions.backend.run::<i64>(script).await {
            // New: hand the browser its ticket.
            Ok(1) => {
                let sealed = self.keyring.seal(self.cookies.name().as_bytes(), &ticket.to_bytes());
                self.cookies.write_session(&sealed, present, out)?;
                Ok(())
            }
            // Updated in place (a refresh): the cookie stays as it is.
            Ok(0) => Ok(()),
            // Ended meanwhile: not written back.
            Ok(_) => Ok(()),
            Err(e) => {
                self.failed("save", &e);
                Err(Error::StoreUnavailable)
            }
        }
    }

    async fn end(&self, loaded: &Loaded, out: &mut HeaderMap) {
        if let Some(ticket) = &loaded.ticket {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("DEL")
                .arg(self.sessions.record_key(&ticket.id))
                .cmd("SET")
                .arg(self.sessions.tombstone_key(&ticket.id))
                .arg("1")
                .arg("EX")
                .arg(self.sessions.max_ttl)
                .ignore();
            match self.sessions.backend.run::<(u64,)>(pipe).await {
                Ok((1,)) => self.metrics.session_revoked("sign_out"),
                Ok(_) => {}
                Err(e) => self.failed("end", &e),
            }
        }
        self.cookies.clear_session(loaded.present, out);
    }

    async fn end_user(&self, provider: &str, subject: Option<&str>, sid: Option<&str>) -> Result<bool, Error> {
        let mut keys = Vec::new();
        keys.extend(subject.map(|s| self.sessions.user_key(provider, s)));
        keys.extend(sid.map(|s| self.sessions.sid_key(provider, s)));
        if keys.is_empty() {
            return Ok(true);
        }
        let mut script = redis::cmd("EVAL");
        script.arg(END_INDEXED).arg(keys.len()).arg(&keys).arg(&self.sessions.prefix).arg(self.sessions.max_ttl);
        match self.sessions.backend.run::<u64>(script).await {
            Ok(ended) => {
                tracing::info!(provider, sessions = ended, "sessions of a user ended");
                Ok(true)
            }
            Err(e) => {
                self.failed("end_user", &e);
                Err(Error::StoreUnavailable)
            }
        }
    }
}

impl SessionStore for RedisStore<'_> {
    fn load(&self, headers: &HeaderMap) -> impl Future<Output = Loaded> + Send {
        RedisStore::load(self, headers)
    }

    fn save(
        &self,
        session: &Session,
        present: Present,
        out: &mut HeaderMap,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        RedisStore::save(self, session, present, out)
    }

    fn end(&self, loaded: &Loaded, out: &mut HeaderMap) -> impl Future<Output = ()> + Send {
        RedisStore::end(self, loaded, out)
    }

    fn end_user(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        RedisStore::end_user(self, provider, subject, sid)
    }
}

impl Ticket {
    /// A fresh ticket for session `id`.
    fn new(id: [u8; SESSION_ID_BYTES]) -> Self {
        let mut secret = [0u8; TICKET_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        Self { id, secret }
    }

    fn to_bytes(&self) -> Vec<u8> {
        [&self.id[..], &self.secret[..]].concat()
    }

    fn from_bytes(raw: &[u8]) -> Option<Self> {
        if raw.len() != SESSION_ID_BYTES + TICKET_SECRET_BYTES {
            return None;
        }
        let (id, secret) = raw.split_at(SESSION_ID_BYTES);
        Some(Self { id: id.try_into().ok()?, secret: secret.try_into().ok()? })
    }

    fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.secret).into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key-name-safe digest of `provider` and a user-controlled name.
fn hashed(provider: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(provider.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    hex(&h.finalize()[..20])
}

#[cfg(test)]
#[path = "redis_store_tests.rs"]
mod tests;
