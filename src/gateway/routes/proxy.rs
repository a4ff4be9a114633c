//! Every request that is not the gateway's own: authenticate (a session
//! cookie, refreshed when due, or a machine credential), then forward.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::gateway::authn::machine::token_in_query;
use crate::gateway::authn::{Authn, Caller, MachineCaller, Rejection};
use crate::gateway::config::Authentication;
use crate::gateway::metrics::Outcome;
use crate::gateway::pages;
use crate::gateway::refresh::{Renewal, renew};
use crate::gateway::request_target;
use crate::gateway::revalidate::{self, Check, Due};
use crate::gateway::routes::machine;
use crate::gateway::server::{Gateway, Worker, found};
use crate::gateway::session::{Present, SessionView, now};
use crate::gateway::upstream::{Forwarded, Proxy, ProxyError};

/// Whether the client is a browser navigating (gets a redirect to sign in)
/// rather than an API or XHR client (gets 401).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    if headers.get("x-requested-with").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest")) {
        return false;
    }
    headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

pub(crate) async fn proxy_request(
    State(worker): State<Worker>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let gw = &*worker.gw;
    if let Err(refused) = request_target::check(request.method(), request.uri()) {
        gw.metrics.request(Outcome::BadRequest);
        return (refused.status(), format!("{refused}\n")).into_response();
    }
    if let Some(merged) = request_target::merged(request.uri()) {
        *request.uri_mut() = merged;
    }
    // A preflight is routed by the method it asks about.
    let method = match request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        Some(asked) if request.method() == Method::OPTIONS => Method::from_bytes(asked.as_bytes()).ok(),
        _ => None,
    };
    let Some((route, proxy)) =
        worker.upstreams.select(method.as_ref().unwrap_or(request.method()), request.uri().path())
    else {
        gw.metrics.request(Outcome::BadRequest);
        return (StatusCode::NOT_FOUND, "no route of this gateway serves this request\n").into_response();
    };
    let Some(cors) = &route.cors else { return authenticate_and_forward(gw, proxy, request, peer).await };
    if let Some((status, headers)) = cors.preflight(request.method(), request.headers()) {
        gw.metrics.request(Outcome::PassedThrough);
        return (status, headers).into_response();
    }
    let origin = cors.allowed_origin(request.headers()).cloned();
    let mut response = authenticate_and_forward(gw, proxy, request, peer).await;
    if let Some(origin) = origin {
        cors.decorate(origin, response.headers_mut());
    }
    response
}

/// Public paths and `authentication: Disabled` go through as they are;
/// everything else needs a live session, refreshed when due.
async fn authenticate_and_forward(gw: &Gateway, proxy: &Proxy, request: Request, peer: SocketAddr) -> Response {
    if gw.config.authentication == Authentication::Disabled || gw.is_public(request.uri().path()) {
        return forward(gw, proxy, request, peer, None, Outcome::PassedThrough).await;
    }
    let now = now();
    let session = match gw.authenticate(request.headers(), now).await {
        Authn::Caller(Caller::Session(session)) => session,
        Authn::Caller(Caller::Machine(caller)) => return forward_machine(gw, proxy, request, peer, &caller, now).await,
        // A token where tokens are never read is refused, not ignored.
        Authn::Anonymous if token_in_query(request.uri().query()) => {
            return machine::invalid_token(gw, "token_in_query");
        }
        // A cookie that did not open may be another gateway's of the same
        // name (a shared cookie domain): never delete what is not ours.
        Authn::Anonymous => return unauthenticated(gw, &request, Present::default()),
        Authn::Rejected(Rejection::SessionEnded(ours)) => return unauthenticated(gw, &request, ours),
        Authn::Rejected(Rejection::StoreUnavailable) => return store_unavailable(gw, request.headers()),
        Authn::Rejected(Rejection::InvalidToken(reason)) => return machine::invalid_token(gw, reason),
        Authn::Rejected(Rejection::IssuerUnavailable) => return machine::issuer_unavailable(gw),
    };
    gw.metrics.machine.authenticated(crate::access::Proof::SignIn);
    let (view, present) = (session.view(), session.present);
    match revalidate::check(gw, &view, now) {
        Check::Current => {}
        Check::Renew(due) => return refresh_and_forward(gw, proxy, request, peer, &view, due, present, now).await,
        Check::SignOut => return unauthenticated(gw, &request, present),
    }
    if view.access_expired(now) && gw.config.forward.access_token {
        return unauthenticated(gw, &request, present);
    }
    forward(gw, proxy, request, peer, Some(Forwarded::Session(&view)), Outcome::Proxied).await
}

/// A machine caller: admitted by its expiry, the access rules and its
/// scopes, then forwarded with its identity. Never sent to sign in.
async fn forward_machine(
    gw: &Gateway,
    proxy: &Proxy,
    request: Request,
    peer: SocketAddr,
    caller: &MachineCaller,
    now: u64,
) -> Response {
    if let Err(refusal) = machine::admit(gw, caller, request.method().as_str(), request.uri().path(), now) {
        return machine::refused(gw, &refusal);
    }
    gw.metrics.machine.authenticated(caller.principal.proof);
    forward(gw, proxy, request, peer, Some(Forwarded::Machine(caller)), Outcome::Proxied).await
}

pub(crate) async fn forward(
    gw: &Gateway,
    proxy: &Proxy,
    request: Request,
    peer: SocketAddr,
    user: Option<Forwarded<'_>>,
    outcome: Outcome,
) -> Response {
    match proxy.forward(request, peer.ip(), user, &gw.cookies).await {
        Ok((response, elapsed)) => {
            gw.metrics.request(outcome);
            gw.metrics.upstream_latency(elapsed);
            response
        }
        Err(e) => proxy_error(gw, e),
    }
}

/// The answer when forwarding failed.
fn proxy_error(gw: &Gateway, e: ProxyError) -> Response {
    match e {
        e @ ProxyError::ClientBody => {
            gw.metrics.request(Outcome::BadRequest);
            tracing::debug!(error = %e, "client request refused");
            (e.status(), "the request body could not be read\n").into_response()
        }
        e @ ProxyError::Token(_) => {
            // The token source logs each failed fetch once; one line per
            // refused request would flood the log during an outage.
            gw.metrics.request(Outcome::UpstreamError);
            tracing::debug!(error = %e, "no token for the route's upstream");
            (e.status(), "upstream unavailable\n").into_response()
        }
        e => {
            gw.metrics.request(Outcome::UpstreamError);
            tracing::warn!(error = %e.detail(), "upstream unavailable");
            (e.status(), "upstream unavailable\n").into_response()
        }
    }
}

pub(crate) fn unauthenticated(gw: &Gateway, request: &Request, present: Present) -> Response {
    let original = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    sign_in_required(gw, request.headers(), Some(original), true, present)
}

/// The session store is down: 503, a page for browsers and JSON for the
/// rest, counted; the cookies stay, so the session works again once the
/// store is back.
pub(crate) fn store_unavailable(gw: &Gateway, headers: &HeaderMap) -> Response {
    gw.metrics.request(Outcome::StoreUnavailable);
    if wants_html(headers) { pages::store_unavailable(&gw.look()) } else { pages::store_unavailable_json() }
}

/// No session: a browser (when `redirect_browsers`) is sent to sign in and
/// back to `back`; anything else gets 401. `present` cookies of ours that
/// no longer open a live session are dropped.
pub(crate) fn sign_in_required(
    gw: &Gateway,
    headers: &HeaderMap,
    back: Option<&str>,
    redirect_browsers: bool,
    present: Present,
) -> Response {
    let mut response = if redirect_browsers && wants_html(headers) {
        gw.metrics.request(Outcome::LoginRedirect);
        pages::harden(found(&gw.start_href(None, back, None)))
    } else {
        gw.metrics.request(Outcome::Unauthorized);
        pages::unauthorized_json()
    };
    if present != Present::default() {
        // A stale, foreign or tampered cookie: drop it.
        gw.cookies.clear_session(present, response.headers_mut());
    }
    response
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn refresh_and_forward(
    gw: &Gateway,
    proxy: &Proxy,
    request: Request,
    peer: SocketAddr,
    view: &SessionView<'_>,
    due: Due,
    present: Present,
    now: u64,
) -> Response {
    let mut cookies = HeaderMap::new();
    match renew(gw, view, due, present, now, &mut cookies).await {
        Renewal::Renewed(record) => {
            let fresh = SessionView::decode(&record).expect("just encoded");
            let mut response =
                forward(gw, proxy, request, peer, Some(Forwarded::Session(&fresh)), Outcome::Proxied).await;
            for value in cookies.get_all(header::SET_COOKIE) {
                response.headers_mut().append(header::SET_COOKIE, value.clone());
            }
            response
        }
        Renewal::KeepCurrent => {
            forward(gw, proxy, request, peer, Some(Forwarded::Session(view)), Outcome::Proxied).await
        }
        Renewal::SignInAgain => unauthenticated(gw, &request, present),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn html_detection() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(wants_html(&h));
        h.insert("x-requested-with", HeaderValue::from_static("XMLHttpRequest"));
        assert!(!wants_html(&h));
        let mut j = HeaderMap::new();
        j.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&j));
    }
}
