//! What the proxy and forward-auth do with a machine caller, and the
//! answers machine clients get: RFC 6750 `WWW-Authenticate` challenges, in
//! JSON, never a redirect to sign in.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::{self, Denial, Proof};
use crate::gateway::authn::MachineCaller;
use crate::gateway::metrics::Outcome;
use crate::gateway::server::Gateway;

/// Why a machine caller with a good credential may not make a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its credential expired (checked here too, not only where it was
    /// verified, so a cached verification never outlives it).
    Expired,
    /// The policy's (and provider's) access rules refuse its identity.
    Denied(Denial),
    /// The request is outside the credential's scopes.
    OutOfScope,
}

/// Whether `caller` may make a `method` request for the normalized `path`
/// at `now`: not expired, the access rules, then its scopes.
///
/// Bearer and device identities pass the same rules as a browser session
/// (the provider's filters when a provider vouched for them, and the
/// policy's). An ApiToken is an access grant the policy's owners made, by
/// name, so user filters (which look at emails and groups the token does
/// not have) are not asked; its scopes are.
pub(crate) fn admit(gw: &Gateway, caller: &MachineCaller, method: &str, path: &str, now: u64) -> Result<(), Refusal> {
    if now >= caller.expires_at {
        return Err(Refusal::Expired);
    }
    let principal = &caller.principal;
    if principal.proof != Proof::ApiToken {
        let provider = gw.provider(&principal.provider).map(|p| &p.config().filters);
        access::authorize(principal, provider.into_iter().chain([&gw.config.access])).map_err(Refusal::Denied)?;
    }
    if !access::permits(&gw.config.machine.scopes, &caller.grant, method, path) {
        return Err(Refusal::OutOfScope);
    }
    Ok(())
}

/// 401 for a machine credential that does not verify (or one sent where
/// tokens are never read, the query string). `reason` is counted, and
/// named in `error_description`: it is ours, never part of the token.
pub(crate) fn invalid_token(gw: &Gateway, reason: &'static str) -> Response {
    gw.metrics.request(Outcome::Unauthorized);
    gw.metrics.machine.bearer_failure(reason);
    tracing::debug!(reason, "machine credential refused");
    challenge(StatusCode::UNAUTHORIZED, "invalid_token", reason)
}

/// 503: the issuer's keys cannot be had, so a good token cannot be told
/// from a bad one.
pub(crate) fn issuer_unavailable(gw: &Gateway) -> Response {
    gw.metrics.request(Outcome::StoreUnavailable);
    gw.metrics.machine.bearer_failure("issuer_unavailable");
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"error": "temporarily_unavailable", "message": "the token's issuer cannot be reached; try again"})),
    )
        .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// The answer to a refused machine caller: 401 for an expired
/// credential, 403 for the rest.
pub(crate) fn refused(gw: &Gateway, refusal: &Refusal) -> Response {
    match refusal {
        Refusal::Expired => invalid_token(gw, "expired"),
        Refusal::Denied(denial) => {
            gw.metrics.request(Outcome::Forbidden);
            tracing::info!(reason = denial.reason(), "machine caller denied by the access rules");
            challenge(StatusCode::FORBIDDEN, "access_denied", denial.reason())
        }
        Refusal::OutOfScope => {
            gw.metrics.request(Outcome::Forbidden);
            challenge(StatusCode::FORBIDDEN, "insufficient_scope", "the request is outside the token's scopes")
        }
    }
}

fn challenge(status: StatusCode, error: &'static str, description: &str) -> Response {
    let mut r =
        (status, axum::Json(serde_json::json!({"error": error, "error_description": description}))).into_response();
    let value = format!("Bearer error=\"{error}\", error_description=\"{}\"", description.replace('"', "'"));
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
