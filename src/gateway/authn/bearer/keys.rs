//! One issuer's signing keys: the JWKS the controller embedded, or the one
//! at its `jwksUrl`, fetched on first use and again (at most once per
//! [`REFETCH_INTERVAL`]) when a token names a `kid` the set lacks.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::JsonWebKey as _;
use openidconnect::JsonWebKeySetUrl;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet};
use tokio::sync::Mutex;
use url::Url;

use crate::gateway::providers::HttpClient;

/// Least time between two JWKS fetches of one issuer, so tokens with
/// made-up `kid`s cannot make the gateway hammer the issuer.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why no key could be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The JWKS could not be fetched (or parsed): the token may be good.
    #[error("the issuer's keys cannot be fetched")]
    Unavailable,
}

/// An issuer's keys.
pub struct KeySet {
    url: Option<(JsonWebKeySetUrl, HttpClient)>,
    current: RwLock<Arc<CoreJsonWebKeySet>>,
    /// When the keys were last fetched; `None`: not yet.
    last_fetch: Mutex<Option<Instant>>,
}

impl KeySet {
    /// Keys from an embedded JWKS document (`jwks`) and/or a URL to fetch
    /// them from. No I/O.
    pub fn new(jwks: Option<&str>, url: Option<&Url>, http: Option<HttpClient>) -> Result<Self, String> {
        let embedded = match jwks {
            Some(text) => serde_json::from_str::<CoreJsonWebKeySet>(text).map_err(|e| format!("jwks: {e}"))?,
            None => CoreJsonWebKeySet::new(Vec::new()),
        };
        let url = match (url, http) {
            (Some(url), Some(http)) => Some((JsonWebKeySetUrl::from_url(url.clone()), http)),
            (None, _) if jwks.is_some() => None,
            _ => return Err("an issuer needs jwks or a jwksUrl".into()),
        };
        Ok(Self { url, current: RwLock::new(Arc::new(embedded)), last_fetch: Mutex::new(None) })
    }

    fn snapshot(&self) -> Arc<CoreJsonWebKeySet> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The keys to try for a token naming `kid`: the current set when it
    /// has that `kid` (or, without one, any key); otherwise the set fetched
    /// again, when the rate limit allows. `Ok` may still lack the key.
    pub async fn for_kid(&self, kid: Option<&str>) -> Result<Arc<CoreJsonWebKeySet>, KeyError> {
        let keys = self.snapshot();
        if has(&keys, kid) {
            return Ok(keys);
        }
        let Some((url, http)) = &self.url else { return Ok(keys) };
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        let keys = self.snapshot();
        if has(&keys, kid) || last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(keys);
        }
        *last = Some(Instant::now());
        let fetched = CoreJsonWebKeySet::fetch_async(url, http).await.map_err(|e| {
            tracing::warn!(error = %e, "could not fetch a bearer issuer's keys");
            KeyError::Unavailable
        })?;
        let fetched = Arc::new(fetched);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fetched.clone();
        tracing::info!(keys = fetched.keys().len(), "fetched a bearer issuer's signing keys");
        Ok(fetched)
    }
}

fn has(keys: &CoreJsonWebKeySet, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => keys.keys().iter().any(|k: &CoreJsonWebKey| k.key_id().is_some_and(|id| id.as_str() == kid)),
        None => !keys.keys().is_empty(),
    }
}
