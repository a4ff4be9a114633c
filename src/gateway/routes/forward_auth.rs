//! Forward-auth: an ingress asks whether a request it holds may pass, and
//! as whom. The same authentication chain as the proxy route decides.
//!
//! - `…/oauth2/auth` (nginx `auth_request`, oauth2-proxy compatible):
//!   202 with the identity headers, 401 without a session.
//! - `…/oauth2/verify` (Traefik `ForwardAuth`): 200 with the identity
//!   headers; a browser without a session gets 302 to sign in (Traefik
//!   relays any non-2xx answer to the client), an API client 401.
//! - `…/oauth2/ext_authz/<original path>` (Envoy `ext_authz` over HTTP):
//!   as `verify`, but 200 is the only allowing status Envoy knows, and the
//!   original path follows the prefix.
//!
//! A refused user never gets this far: sign-in itself answers 403. A
//! session refreshed during the check sends its `Set-Cookie` back, for the
//! ingress to relay to the browser.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::gateway::authn::MachineCaller;
use crate::gateway::authn::machine::token_in_query;
use crate::gateway::authn::{Authn, Caller, Rejection};
use crate::gateway::metrics::Outcome;
use crate::gateway::original_request::{self, Original, Refused};
use crate::gateway::refresh::{Renewal, renew};
use crate::gateway::revalidate::{self, Check};
use crate::gateway::routes::machine;
use crate::gateway::routes::proxy::{sign_in_required, store_unavailable};
use crate::gateway::server::Gateway;
use crate::gateway::session::{Present, SessionView, now};
use crate::gateway::upstream::identity::{UserToken, Who, add_identity};

/// `X-Auth-Request-Access-Token`, as oauth2-proxy names it.
static X_AUTH_REQUEST_ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-auth-request-access-token");

/// Which forward-auth contract a check follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contract {
    /// nginx `auth_request`: 202 / 401.
    AuthRequest,
    /// Traefik `ForwardAuth`: 200 / 302 for browsers / 401.
    Verify,
    /// Envoy `ext_authz`: as `Verify`, original path after the prefix.
    ExtAuthz,
}

pub(crate) async fn auth_request(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    check(&gw, peer, request.into_parts().0, Contract::AuthRequest).await
}

pub(crate) async fn verify(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    check(&gw, peer, request.into_parts().0, Contract::Verify).await
}

pub(crate) async fn ext_authz(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    check(&gw, peer, request.into_parts().0, Contract::ExtAuthz).await
}

async fn check(gw: &Gateway, peer: SocketAddr, request: Parts, contract: Contract) -> Response {
    let headers = &request.headers;
    let original = match original_of(gw, peer, &request, contract) {
        Ok(original) => original,
        Err(refused) => {
            gw.metrics.request(Outcome::ForwardAuthRefused);
            tracing::info!(peer = %peer.ip(), reason = %refused, "forward-auth request refused");
            let status = if refused == Refused::Malformed { StatusCode::BAD_REQUEST } else { StatusCode::FORBIDDEN };
            return (status, format!("{refused}\n")).into_response();
        }
    };
    if let Some(o) = &original
        && is_public(gw, &o.path_and_query)
    {
        // A public path passes as nobody: no identity headers to copy.
        gw.metrics.request(Outcome::ForwardAuthAllowed);
        let status = if contract == Contract::AuthRequest { StatusCode::ACCEPTED } else { StatusCode::OK };
        return status.into_response();
    }
    let now = now();
    let session = match gw.authenticate(headers, now).await {
        Authn::Caller(Caller::Session(session)) => session,
        Authn::Caller(Caller::Machine(caller)) => return allow_machine(gw, original.as_ref(), contract, &caller, now),
        Authn::Anonymous if original.as_ref().is_some_and(|o| token_in_query(query_of(&o.path_and_query))) => {
            return machine::invalid_token(gw, "token_in_query");
        }
        Authn::Anonymous => return deny(gw, headers, original.as_ref(), contract, Present::default()),
        Authn::Rejected(Rejection::SessionEnded(ours)) => return deny(gw, headers, original.as_ref(), contract, ours),
        Authn::Rejected(Rejection::StoreUnavailable) => return store_unavailable(gw, headers),
        Authn::Rejected(Rejection::InvalidToken(reason)) => return machine::invalid_token(gw, reason),
        Authn::Rejected(Rejection::IssuerUnavailable) => return machine::issuer_unavailable(gw),
    };
    gw.metrics.machine.authenticated(crate::access::Proof::SignIn);
    let (stored, present) = (session.view(), session.present);
    let mut out = HeaderMap::new();
    let refreshed: Vec<u8>;
    let view = match revalidate::check(gw, &stored, now) {
        Check::Current => stored,
        Check::Renew(due) => match renew(gw, &stored, due, present, now, &mut out).await {
            Renewal::Renewed(record) => {
                refreshed = record;
                SessionView::decode(&refreshed).expect("just encoded")
            }
            Renewal::KeepCurrent => stored,
            Renewal::SignInAgain => return deny(gw, headers, original.as_ref(), contract, present),
        },
        Check::SignOut => return deny(gw, headers, original.as_ref(), contract, present),
    };
    if view.access_expired(now) && gw.config.forward.access_token {
        return deny(gw, headers, original.as_ref(), contract, present);
    }
    let forward = &gw.config.forward;
    add_identity(
        &mut out,
        &gw.identity,
        &Who::session(&view),
        forward.identity_headers,
        UserToken::new(forward.id_token, forward.access_token).of(&view),
    );
    if forward.access_token
        && let Ok(mut token) = HeaderValue::from_str(view.access_token)
    {
        token.set_sensitive(true);
        out.insert(X_AUTH_REQUEST_ACCESS_TOKEN.clone(), token);
    }
    gw.metrics.request(Outcome::ForwardAuthAllowed);
    let status = if contract == Contract::AuthRequest { StatusCode::ACCEPTED } else { StatusCode::OK };
    let mut response = status.into_response();
    response.headers_mut().extend(out);
    response
}

/// A machine caller passes when [`machine::admit`] lets it make the
/// original request; the identity headers go back to the ingress.
fn allow_machine(
    gw: &Gateway,
    original: Option<&Original>,
    contract: Contract,
    caller: &MachineCaller,
    now: u64,
) -> Response {
    // Without an original request (nginx's plain `auth_request` with no
    // X-Original-URL), scopes are checked against `/` with GET: a scoped
    // token is then admitted only if it could read the root.
    let (method, path) = original.map_or(("GET", "/"), |o| (o.method.as_str(), path_of(&o.path_and_query)));
    if let Err(refusal) = machine::admit(gw, caller, method, &crate::access::merge_slashes(path), now) {
        return machine::refused(gw, &refusal);
    }
    gw.metrics.machine.authenticated(caller.principal.proof);
    let mut out = HeaderMap::new();
    let forward = &gw.config.forward;
    let token = caller.upstream_token.as_deref().filter(|_| forward.access_token);
    add_identity(&mut out, &gw.identity, &Who::identity(&caller.principal.identity), forward.identity_headers, token);
    gw.metrics.request(Outcome::ForwardAuthAllowed);
    let status = if contract == Contract::AuthRequest { StatusCode::ACCEPTED } else { StatusCode::OK };
    let mut response = status.into_response();
    response.headers_mut().extend(out);
    response
}

fn path_of(path_and_query: &str) -> &str {
    path_and_query.split(['?', '#']).next().unwrap_or_default()
}

fn query_of(path_and_query: &str) -> Option<&str> {
    path_and_query.split('#').next().and_then(|pq| pq.split_once('?')).map(|(_, q)| q)
}

/// Whether the original request's path (never its query) is public,
/// after the same normalization the proxy applies.
fn is_public(gw: &Gateway, path_and_query: &str) -> bool {
    gw.is_public(&crate::access::merge_slashes(path_of(path_and_query)))
}

/// The peer must be trusted before any header it sends is read.
fn original_of(
    gw: &Gateway,
    peer: SocketAddr,
    request: &Parts,
    contract: Contract,
) -> Result<Option<Original>, Refused> {
    let trusted = gw.forward_auth.as_deref().unwrap_or_default();
    if !trusted.iter().any(|net| net.contains(&peer.ip())) {
        return Err(Refused::UntrustedPeer);
    }
    let external = &gw.config.external_url;
    match contract {
        Contract::ExtAuthz => {
            let target = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
            original_request::from_ext_authz(&request.method, target, &gw.paths.ext_authz, &request.headers, external)
                .map(Some)
        }
        Contract::AuthRequest | Contract::Verify => original_request::from_headers(&request.headers, external),
    }
}

/// No session (or an ended one): 401, or for a browser under the
/// redirecting contracts 302 to sign in and come back to the original URL.
fn deny(gw: &Gateway, headers: &HeaderMap, original: Option<&Original>, contract: Contract, ours: Present) -> Response {
    let back = original.map(|o| o.path_and_query.as_str());
    sign_in_required(gw, headers, back, contract != Contract::AuthRequest, ours)
}
