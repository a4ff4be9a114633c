//! Bearer JWTs of trusted issuers (`machine.bearer` of gateway.yaml).
//!
//! A token is checked in this order, each step refusing with a reason that
//! is counted (`bearer_failures{reason}`) and never includes the token:
//!
//! 1. `malformed`: not a compact JWS of JSON objects (a JWT is recognised
//!    by its two dots; other bearer tokens are `NotMine`).
//! 2. `key_header`: the header names or carries a key (`jku`, `x5u`,
//!    `jwk`, `x5c`). Keys come only from the issuer's configured JWKS.
//! 3. `algorithm`: `alg` is `none`, HMAC or off the issuer's allowlist.
//! 4. `unknown_issuer`: the unverified `iss` is no configured issuer. The
//!    issuer is chosen here, before any key is tried, and only its keys
//!    verify: a token from issuer A signed with B's key is refused.
//! 5. `unknown_kid`: the `kid` is not in the issuer's JWKS, even after one
//!    refetch (rate limited per issuer, [`keys::REFETCH_INTERVAL`]).
//! 6. `signature`: no key of the issuer verifies it.
//! 7. `expired`, `not_yet_valid`, `audience`, `id_token` ([`claims`]).
//! 8. `claims`: a mapped value is not fit for a header; `api_key`: the
//!    API-key claim names no ApiToken in force.
//!
//! Verified tokens are cached by their hash ([`cache`]).

pub mod cache;
pub mod claims;
pub mod keys;
pub mod verify;

use std::sync::Arc;

use http::HeaderMap;

use super::machine::{BearerToken, bearer_token};
use super::{Authenticator, Caller, MachineCaller, Rejection, Verdict};
use crate::access::{Grant, Principal, Proof};
use crate::contract::machine::{ApiTokenEntry, BearerIssuerConfig};
use crate::gateway::providers::HttpClient;

/// Why a bearer JWT was refused; [`BearerError::reason`] is the metrics
/// label.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum BearerError {
    /// Not a well-formed JWS.
    #[error("malformed")]
    Malformed,
    /// `alg` not allowed.
    #[error("algorithm")]
    Algorithm,
    /// A key named or carried in the header.
    #[error("key_header")]
    KeyHeader,
    /// `iss` is no configured issuer.
    #[error("unknown_issuer")]
    UnknownIssuer,
    /// `kid` unknown even after a refetch.
    #[error("unknown_kid")]
    UnknownKid,
    /// The signature does not verify.
    #[error("signature")]
    Signature,
    /// `aud` names no configured audience (or is missing).
    #[error("audience")]
    Audience,
    /// An ID token offered as an access token.
    #[error("id_token")]
    IdToken,
    /// `exp` passed or missing.
    #[error("expired")]
    Expired,
    /// `nbf` in the future.
    #[error("not_yet_valid")]
    NotYetValid,
    /// A claim value unfit for identity headers.
    #[error("claims")]
    Claims,
    /// The API-key claim names no ApiToken in force.
    #[error("api_key")]
    ApiKey,
    /// The issuer's keys cannot be had right now.
    #[error("issuer_unavailable")]
    Unavailable,
}

impl BearerError {
    /// The metrics label and log word.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::KeyHeader => "key_header",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnknownKid => "unknown_kid",
            Self::Signature => "signature",
            Self::Audience => "audience",
            Self::IdToken => "id_token",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Claims => "claims",
            Self::ApiKey => "api_key",
            Self::Unavailable => "issuer_unavailable",
        }
    }
}

struct Issuer {
    config: BearerIssuerConfig,
    keys: keys::KeySet,
}

/// Verifies `Authorization: Bearer <JWT>` against the configured issuers.
pub struct BearerAuthenticator {
    issuers: Vec<Issuer>,
    api_tokens: Vec<ApiTokenEntry>,
    cache: cache::VerifiedCache,
}

impl BearerAuthenticator {
    /// The authenticator for `issuers`, with the policy's ApiTokens for the
    /// API-key claim (no I/O).
    pub fn new(issuers: &[BearerIssuerConfig], api_tokens: &[ApiTokenEntry]) -> Result<Self, String> {
        let mut http: Option<HttpClient> = None;
        let mut built = Vec::with_capacity(issuers.len());
        for config in issuers {
            let problem = |e: String| format!("issuer {}: {e}", config.name);
            if config.audiences.is_empty() {
                return Err(problem("at least one audience is required".into()));
            }
            if config.algorithms.is_empty() {
                return Err(problem("at least one algorithm is required".into()));
            }
            let client = match &config.jwks_url {
                None => None,
                Some(_) => {
                    let base = match &http {
                        Some(h) => h.clone(),
                        None => HttpClient::new().map_err(|e| problem(e.without_url().to_string()))?,
                    };
                    http = Some(base.clone());
                    Some(base.trusting(config.ca_pem.as_deref()).map_err(problem)?)
                }
            };
            let keys = keys::KeySet::new(config.jwks.as_deref(), config.jwks_url.as_ref(), client).map_err(problem)?;
            built.push(Issuer { config: config.clone(), keys });
        }
        Ok(Self { issuers: built, api_tokens: api_tokens.to_vec(), cache: cache::VerifiedCache::default() })
    }

    /// Verifies `token` at `now` (no cache).
    pub async fn verify(&self, token: &str, now: u64) -> Result<MachineCaller, BearerError> {
        let jws = verify::split(token)?;
        let alg = verify::check_header(&jws.header)?;
        let iss = jws.claims.get("iss").and_then(serde_json::Value::as_str).ok_or(BearerError::UnknownIssuer)?;
        let issuer = self.issuers.iter().find(|i| i.config.issuer == iss).ok_or(BearerError::UnknownIssuer)?;
        if !verify::allowed(&alg, &issuer.config.algorithms) {
            return Err(BearerError::Algorithm);
        }
        let kid = jws.header.get("kid").and_then(serde_json::Value::as_str);
        let keys = issuer.keys.for_kid(kid).await.map_err(|_| BearerError::Unavailable)?;
        if !verify::has_kid(&keys, kid) {
            return Err(BearerError::UnknownKid);
        }
        if !verify::signature_verifies(&keys, &jws, &alg) {
            return Err(BearerError::Signature);
        }
        let mut expires_at = claims::check(&issuer.config, &jws.header, &jws.claims, now)?;
        let identity = claims::identity(&jws.claims, &issuer.config.claims)?;
        let grant = match claims::api_key(&jws.claims, &issuer.config.claims)? {
            None => Grant::Full,
            Some(name) => {
                let token =
                    self.api_tokens.iter().find(|t| t.name == name && t.expires_at > now).ok_or(BearerError::ApiKey)?;
                expires_at = expires_at.min(token.expires_at);
                Grant::Scopes(token.scopes.clone())
            }
        };
        Ok(MachineCaller {
            principal: Principal { identity, provider: issuer.config.name.clone(), proof: Proof::Bearer },
            grant,
            expires_at,
            upstream_token: Some(Arc::from(token)),
        })
    }

    async fn check(&self, headers: &HeaderMap, now: u64) -> Verdict {
        if self.issuers.is_empty() {
            return Verdict::NotMine;
        }
        let token = match bearer_token(headers) {
            BearerToken::Present(t) if t.bytes().filter(|b| *b == b'.').count() == 2 => t,
            _ => return Verdict::NotMine,
        };
        let key = cache::key(token);
        if let Some(caller) = self.cache.get(&key, now) {
            return Verdict::Caller(Caller::Machine(caller));
        }
        match self.verify(token, now).await {
            Ok(caller) => {
                let caller = Arc::new(caller);
                self.cache.put(key, caller.clone(), now);
                Verdict::Caller(Caller::Machine(caller))
            }
            Err(BearerError::Unavailable) => Verdict::Reject(Rejection::IssuerUnavailable),
            Err(e) => Verdict::Reject(Rejection::InvalidToken(e.reason())),
        }
    }
}

impl Authenticator for BearerAuthenticator {
    fn authenticate(&self, headers: &HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send {
        self.check(headers, now)
    }
}

#[cfg(test)]
mod tests;
