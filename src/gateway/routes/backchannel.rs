//! `POST …/oauth2/backchannel_logout`: OpenID Connect Back-Channel Logout
//! 1.0. A provider posts a logout token (`logout_token=`, form-encoded)
//! when a user's session ends there; the gateway ends the sessions it
//! names. The provider is the OIDC provider whose issuer is the token's
//! `iss`; the token is validated by
//! [`crate::gateway::providers::logout_token`].
//!
//! A store that can find sessions by user ends them at once
//! ([`SessionStore::end_user`]); otherwise (cookies) the logout is
//! remembered in [`Gateway::logouts`] for one session lifetime, and the
//! authenticator refuses the sessions it names as they come.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};

use crate::gateway::providers::Provider;
use crate::gateway::providers::logout_token::{
    self, LogoutClaims, LogoutTokenError, MemoryReplayCache, ReplayCache, remember_until, replay_key,
};
use crate::gateway::providers::oidc::OidcProvider;
use crate::gateway::server::Gateway;
use crate::gateway::session::revocations::Logout;
use crate::gateway::session::{SessionStore, now};

/// The `jti`s of the logout tokens accepted by this process. Process-wide,
/// so a config reload does not forget them.
fn replay_cache() -> &'static MemoryReplayCache {
    static CACHE: OnceLock<MemoryReplayCache> = OnceLock::new();
    CACHE.get_or_init(MemoryReplayCache::default)
}

pub(crate) async fn backchannel_logout(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return refused(&gw, "the request must be application/x-www-form-urlencoded");
    }
    let mut tokens = url::form_urlencoded::parse(&body).filter(|(k, _)| k == "logout_token").map(|(_, v)| v);
    let (Some(token), None) = (tokens.next(), tokens.next()) else {
        return refused(&gw, "exactly one logout_token is required");
    };
    let now = now();
    match verify(&gw, &token, now).await {
        Ok((provider, claims)) => accept(&gw, provider, claims, now).await,
        Err(e) => {
            tracing::info!(error = %e, "back-channel logout refused");
            refused(&gw, &e.to_string())
        }
    }
}

/// The logout token's provider and claims: the first OIDC provider whose
/// issuer is the token's `iss` and whose keys and client it satisfies,
/// and a `jti` not seen before.
async fn verify<'g>(
    gw: &'g Gateway,
    token: &str,
    now: u64,
) -> Result<(&'g OidcProvider, LogoutClaims), LogoutTokenError> {
    let iss = logout_token::unverified_issuer(token).ok_or(LogoutTokenError::Issuer)?;
    let mut error = LogoutTokenError::Issuer;
    let candidates = gw.providers.iter().filter_map(|p| match p {
        Provider::Oidc(o) if o.is_issuer(&iss) => Some(o.as_ref()),
        _ => None,
    });
    for provider in candidates {
        match logout_token::verify(provider, token, now).await {
            Ok(claims) => {
                let first = replay_cache().first_use(replay_key(&iss, &claims.jti), remember_until(&claims), now).await;
                return if first { Ok((provider, claims)) } else { Err(LogoutTokenError::Replayed) };
            }
            Err(e) => error = e,
        }
    }
    Err(error)
}

async fn accept(gw: &Gateway, provider: &OidcProvider, claims: LogoutClaims, now: u64) -> Response {
    let name = provider.config().name.clone();
    let ended = gw.sessions().end_user(&name, claims.subject.as_deref(), claims.sid.as_deref()).await;
    let stored = match ended {
        Ok(ended) => ended,
        Err(e) => {
            // Fail closed: this replica at least refuses those sessions.
            tracing::warn!(provider = %name, error = %e, "the session store could not end the logged-out sessions");
            gw.metrics.store_error("end_user");
            false
        }
    };
    if !stored {
        // Sessions issued in the same second as the logout end too: the
        // one being logged out may have been signed in a moment ago.
        let before = now + 1;
        gw.logouts.add(
            Logout {
                provider: name.clone(),
                subject: claims.subject.clone(),
                sid: claims.sid.clone(),
                before,
                until: before.saturating_add(gw.config.session.ttl_seconds),
            },
            now,
        );
    }
    tracing::info!(
        provider = %name,
        by_subject = claims.subject.is_some(),
        by_sid = claims.sid.is_some(),
        "back-channel logout accepted"
    );
    gw.metrics.backchannel_logout("accepted");
    no_store(StatusCode::OK.into_response())
}

fn refused(gw: &Gateway, description: &str) -> Response {
    gw.metrics.backchannel_logout("refused");
    let body = serde_json::json!({"error": "invalid_request", "error_description": description});
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
