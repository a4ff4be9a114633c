//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4,
//! §2.6), validated as strictly as ID tokens: a JWS with an asymmetric
//! algorithm (never `none`, never HMAC) under a key of the issuer's JWKS,
//! `typ` `logout+jwt` when present, `iss` the provider's issuer, `aud`
//! naming the client, `iat` present and not in the future, `exp` when
//! present, the back-channel logout event, `sub` and/or `sid`, no `nonce`,
//! and a `jti` never seen before ([`ReplayCache`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use openidconnect::JsonWebKey;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::oidc::{ALLOWED_ALGS, OidcProvider};
use crate::idp::jws::{Jws, usable};

/// The event a logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Tolerated clock skew, seconds.
pub const LEEWAY_SECONDS: u64 = 120;

/// How old (by `iat`) a logout token may be. A logout token is sent the
/// moment the session ends, so this is short; it also bounds how long a
/// `jti` must be remembered to refuse its replay.
pub const MAX_AGE_SECONDS: u64 = 300;

/// Why a logout token was refused. Texts are safe to log: no token, no
/// claim values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// Not a JWS in compact form, or its parts are not JSON.
    #[error("the logout token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not an allowed asymmetric algorithm.
    #[error("the logout token's algorithm is not allowed")]
    Algorithm,
    /// `typ` is present and not `logout+jwt`.
    #[error("the logout token's typ is not logout+jwt")]
    Type,
    /// No key of the issuer verifies the signature.
    #[error("the logout token's signature does not verify with the issuer's keys")]
    Signature,
    /// The issuer's keys could not be had.
    #[error("the issuer's keys are unavailable")]
    Keys,
    /// `iss` is no configured issuer.
    #[error("the logout token's issuer is not a configured provider")]
    Issuer,
    /// `aud` does not name this client.
    #[error("the logout token is not addressed to this client")]
    Audience,
    /// `iat` missing, in the future, or too old; or `exp` passed.
    #[error("the logout token is not fresh: {0}")]
    Time(&'static str),
    /// `events` lacks the back-channel logout event (as an object).
    #[error("the logout token carries no back-channel logout event")]
    Event,
    /// Neither `sub` nor `sid`.
    #[error("the logout token names neither sub nor sid")]
    NoSubject,
    /// A `nonce`: this is an ID token, not a logout token.
    #[error("the logout token has a nonce")]
    Nonce,
    /// No `jti`.
    #[error("the logout token has no jti")]
    NoJti,
    /// The `jti` was seen before.
    #[error("the logout token was replayed")]
    Replayed,
}

/// Whom a valid logout token logs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// `sub`, when present.
    pub subject: Option<String>,
    /// `sid`, when present.
    pub sid: Option<String>,
    /// `jti`.
    pub jti: String,
    /// `iat`.
    pub issued_at: u64,
}

/// The unverified `iss` of a token, to pick the provider whose keys must
/// then verify it.
pub fn unverified_issuer(token: &str) -> Option<String> {
    split(token).ok()?.claims.get("iss").and_then(Value::as_str).map(str::to_owned)
}

/// Verifies `token` as a logout token of `provider` at `now`. Does not
/// consult the replay cache (see [`ReplayCache::first_use`]).
pub async fn verify(provider: &OidcProvider, token: &str, now: u64) -> Result<LogoutClaims, LogoutTokenError> {
    let Jws { header, claims, message, signature } = split(token)?;
    let alg: CoreJwsSigningAlgorithm = header
        .get("alg")
        .cloned()
        .and_then(|a| serde_json::from_value(a).ok())
        .filter(|a| ALLOWED_ALGS.contains(a))
        .ok_or(LogoutTokenError::Algorithm)?;
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().ok_or(LogoutTokenError::Type)?.to_ascii_lowercase();
        if typ != "logout+jwt" && typ != "application/logout+jwt" {
            return Err(LogoutTokenError::Type);
        }
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = provider.signing_keys(kid).await.map_err(|_| LogoutTokenError::Keys)?;
    let verified = keys
        .keys()
        .iter()
        .filter(|k| usable(k, kid, &alg))
        .any(|k| k.verify_signature(&alg, message.as_bytes(), &signature).is_ok());
    if !verified {
        return Err(LogoutTokenError::Signature);
    }
    check_claims(provider, &claims, now)
}

fn check_claims(
    provider: &OidcProvider,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<LogoutClaims, LogoutTokenError> {
    let iss = claims.get("iss").and_then(Value::as_str).ok_or(LogoutTokenError::Issuer)?;
    if !provider.is_issuer(iss) {
        return Err(LogoutTokenError::Issuer);
    }
    let client_id = provider.config().client_id.as_str();
    let addressed = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !addressed {
        return Err(LogoutTokenError::Audience);
    }
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or(LogoutTokenError::Time("no iat"))?;
    if iat > now + LEEWAY_SECONDS {
        return Err(LogoutTokenError::Time("issued in the future"));
    }
    if iat + MAX_AGE_SECONDS + LEEWAY_SECONDS < now {
        return Err(LogoutTokenError::Time("issued too long ago"));
    }
    if let Some(exp) = claims.get("exp") {
        let exp = exp.as_u64().ok_or(LogoutTokenError::Time("exp is not a number"))?;
        if exp + LEEWAY_SECONDS <= now {
            return Err(LogoutTokenError::Time("expired"));
        }
    }
    let event = claims.get("events").and_then(Value::as_object).and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(LogoutTokenError::Event);
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let (subject, sid) = (text("sub"), text("sid"));
    if subject.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    let jti = text("jti").ok_or(LogoutTokenError::NoJti)?;
    Ok(LogoutClaims { subject, sid, jti, issued_at: iat })
}

fn split(token: &str) -> Result<Jws<'_>, LogoutTokenError> {
    crate::idp::jws::split(token).ok_or(LogoutTokenError::Malformed)
}

/// Remembers which logout tokens were used, so that each is accepted once.
/// The in-memory [`MemoryReplayCache`] serves one replica; a shared store
/// (Redis: `SET key 1 NX EXAT until`) serves them all.
pub trait ReplayCache: Sync {
    /// Records `key` until `until` (Unix seconds). True if it was not
    /// recorded yet: the token's first use.
    fn first_use(&self, key: [u8; 32], until: u64, now: u64) -> impl Future<Output = bool> + Send;
}

/// The replay cache key of a token: its issuer and `jti`, hashed.
pub fn replay_key(issuer: &str, jti: &str) -> [u8; 32] {
    Sha256::new().chain_update(issuer).chain_update([0]).chain_update(jti).finalize().into()
}

/// Until when a token's `jti` must be remembered: after that, its `iat`
/// makes it too old to be accepted anyway.
pub fn remember_until(claims: &LogoutClaims) -> u64 {
    claims.issued_at + MAX_AGE_SECONDS + LEEWAY_SECONDS + 1
}

/// Most `jti`s remembered at once. Only correctly signed tokens get this
/// far; when it is full of live entries, tokens are refused (fail closed)
/// rather than forgetting one that could then be replayed.
pub const MAX_REMEMBERED: usize = 8192;

/// [`ReplayCache`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl MemoryReplayCache {
    fn record(&self, key: [u8; 32], until: u64, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.get(&key).is_some_and(|&u| u > now) {
            return false;
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, u| *u > now);
            if seen.len() >= MAX_REMEMBERED {
                tracing::warn!("too many recent logout tokens remembered; refusing more until some expire");
                return false;
            }
        }
        seen.insert(key, until);
        true
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, key: [u8; 32], until: u64, now: u64) -> impl Future<Output = bool> + Send {
        std::future::ready(self.record(key, until, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_cache_accepts_once_until_expiry_and_fails_closed_when_full() {
        let cache = MemoryReplayCache::default();
        let k = replay_key("https://id", "j1");
        assert!(cache.first_use(k, 100, 10).await);
        assert!(!cache.first_use(k, 100, 50).await, "replay");
        assert!(cache.first_use(k, 200, 100).await, "remembered only until then");
        assert_ne!(replay_key("https://id", "j1"), replay_key("https://other", "j1"));
        for i in 0..MAX_REMEMBERED - 1 {
            assert!(cache.record(replay_key("i", &i.to_string()), 1000, 100));
        }
        assert!(!cache.record(replay_key("i", "full"), 1000, 100), "full of live entries");
        assert!(cache.record(replay_key("i", "later"), 2000, 1000), "expired entries make room");
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_key_lookup() {
        assert_eq!(split("a.b").err(), Some(LogoutTokenError::Malformed));
        assert_eq!(split("a.b.c.d").err(), Some(LogoutTokenError::Malformed));
        assert_eq!(unverified_issuer("e30.eyJpc3MiOiJodHRwczovL2lkIn0.").as_deref(), Some("https://id"));
    }
}
