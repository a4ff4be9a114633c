//! The session endpoints: `/oauth2/sign_out`, the page it ends on
//! (`/oauth2/signed_out`) and `/oauth2/userinfo`.
//!
//! Signing out ends the session here and, as far as the provider allows,
//! there too: the refresh token is revoked (RFC 7009) and, when the
//! provider has an end-session endpoint, the browser is sent there (OpenID
//! Connect RP-Initiated Logout) to come back to `/oauth2/signed_out`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use url::Url;

use crate::access::safe_redirect;
use crate::gateway::authn::{Authn, Caller};
use crate::gateway::pages;
use crate::gateway::providers::Provider;
use crate::gateway::providers::logout::{self, TokenKind};
use crate::gateway::server::{Gateway, found};
use crate::gateway::session::{Session, SessionStore, SessionView, now};

/// Query of `/oauth2/sign_out`.
#[derive(Deserialize)]
pub struct SignOutQuery {
    rd: Option<String>,
}

/// A path next to `/oauth2/sign_out` (same base path): `signed_out`,
/// `backchannel_logout`.
pub(crate) fn sibling_path(sign_out: &str, name: &str) -> String {
    format!("{}{name}", sign_out.strip_suffix("sign_out").unwrap_or("/oauth2/"))
}

/// The absolute URL of the signed-out page: the `post_logout_redirect_uri`
/// to register at providers with an end-session endpoint.
pub(crate) fn signed_out_url(gw: &Gateway) -> Url {
    let mut url = gw.config.external_url.clone();
    url.set_path(&sibling_path(&gw.paths.sign_out, "signed_out"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

pub(crate) async fn sign_out(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<SignOutQuery>,
    headers: HeaderMap,
) -> Response {
    // Only a cookie this gateway can open is its own to delete.
    let loaded = gw.sessions().load(&headers).await;
    if loaded.unavailable {
        // Not signed out server-side: say so rather than pretend.
        return crate::gateway::routes::proxy::store_unavailable(&gw, &headers);
    }
    let rd = q.rd.as_deref().and_then(|rd| safe_redirect(rd, &gw.config.external_url));
    let session = loaded.record.as_deref().and_then(|r| SessionView::decode(r).ok()).map(|v| v.to_session());
    let provider = session.as_ref().and_then(|s| gw.provider(&s.provider).map(|p| (s, p)));
    let mut end_session = None;
    if let Some((session, provider)) = provider {
        revoke_tokens(provider, session).await;
        end_session = provider.config().end_session_url.as_ref().map(|endpoint| {
            logout::end_session_url(
                endpoint,
                &provider.config().client_id,
                session.id_token.as_deref(),
                signed_out_url(&gw).as_str(),
                rd.as_deref(),
            )
        });
    }
    let mut response = match (end_session, rd) {
        (Some(url), _) => found(url.as_str()),
        (None, Some(target)) => found(&target),
        (None, None) => pages::signed_out(&gw.look(), &gw.start_href(None, None, Some("login"))),
    };
    if loaded.record.is_some() || loaded.ticket.is_some() {
        gw.sessions().end(&loaded, response.headers_mut()).await;
    }
    pages::harden(response)
}

/// Revokes the session's refresh token (else its access token) at the
/// provider, best effort: whatever the provider does, the local session
/// ends.
async fn revoke_tokens(provider: &Provider, session: &Session) {
    let Provider::Oidc(oidc) = provider else {
        return;
    };
    let (token, kind) = match &session.refresh_token {
        Some(refresh) => (refresh.as_str(), TokenKind::Refresh),
        None => (session.access_token.as_str(), TokenKind::Access),
    };
    if token.is_empty() {
        return;
    }
    let outcome = logout::revoke(oidc.http(), provider.config(), token, kind).await;
    match outcome {
        logout::Revocation::Revoked | logout::Revocation::Unsupported => {
            tracing::debug!(provider = provider.name(), outcome = outcome.label(), "token revocation at sign-out")
        }
        logout::Revocation::Refused(status) => {
            tracing::warn!(provider = provider.name(), status, "the provider refused to revoke the token at sign-out")
        }
        logout::Revocation::Unreachable => {
            tracing::warn!(provider = provider.name(), "token revocation at sign-out failed: provider unreachable")
        }
    }
}

/// Query of `/oauth2/signed_out`: `state` is the `rd` sign-out passed
/// through the provider's end-session endpoint.
#[derive(Deserialize)]
pub struct SignedOutQuery {
    state: Option<String>,
}

/// Where the provider sends the browser back after ending its session:
/// the signed-out page, or the `rd` given at sign-out if it is one of this
/// gateway's own (checked again here: the query is the browser's).
pub(crate) async fn signed_out(State(gw): State<Arc<Gateway>>, Query(q): Query<SignedOutQuery>) -> Response {
    let response = match q.state.as_deref().and_then(|rd| safe_redirect(rd, &gw.config.external_url)) {
        Some(target) => found(&target),
        None => pages::signed_out(&gw.look(), &gw.start_href(None, None, Some("login"))),
    };
    pages::harden(response)
}

pub(crate) async fn userinfo(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let Authn::Caller(Caller::Session(session)) = gw.authenticate(&headers, now()).await else {
        return pages::unauthorized_json();
    };
    let view = session.view();
    let mut r = Json(serde_json::json!({
        "user": view.user,
        "email": view.email,
        "groups": view.groups().collect::<Vec<_>>(),
        "provider": view.provider,
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
