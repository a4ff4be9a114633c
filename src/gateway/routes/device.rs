//! The device flow's endpoints (RFC 8628), under the external URL's path,
//! served only when `machine.deviceFlow` is set:
//!
//! - `POST …/oauth2/device/code`: a device asks for a code pair.
//! - `GET …/oauth2/device`: the approval page (a live session required;
//!   otherwise sign in and come back). It shows what asked (client id,
//!   IP address, User-Agent, time) and asks the person to type or confirm
//!   the code.
//! - `POST …/oauth2/device`: approve or deny, with the session and a CSRF
//!   token bound to it. A wrong code counts against the guess limits.
//! - `POST …/oauth2/token` (`grant_type=urn:ietf:params:oauth:grant-type:device_code`):
//!   the device's polls, answered with RFC 8628 §3.5's errors.
//! - `GET …/.well-known/oauth-authorization-server`: RFC 8414 metadata.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::device_page as page;
use crate::contract::machine::DeviceFlowConfig;
use crate::contract::session::StoreConfig;
use crate::gateway::authn::device::mint;
use crate::gateway::authn::{Authn, Caller, Rejection};
use crate::gateway::device::{self, Approval, Poll, State as GrantState, Store, StoreError};
use crate::gateway::server::{Gateway, found};
use crate::gateway::session::now;

/// The grant type of a device's polls.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a CSRF token of the approval page stays good, in seconds.
const CSRF_TTL: u64 = 3600;

/// The device flow's paths under `base` (the external URL's path without
/// its trailing slash).
pub struct DevicePaths {
    /// `…/oauth2/device/code`.
    pub code: String,
    /// `…/oauth2/device`: the approval page.
    pub approve: String,
    /// `…/oauth2/token`.
    pub token: String,
    /// `…/.well-known/oauth-authorization-server`.
    pub metadata: String,
}

impl DevicePaths {
    /// The paths of `gw`.
    pub fn of(gw: &Gateway) -> Self {
        let base = gw.config.external_url.path().trim_end_matches('/');
        Self {
            code: format!("{base}/oauth2/device/code"),
            approve: format!("{base}/oauth2/device"),
            token: format!("{base}/oauth2/token"),
            metadata: format!("{base}/.well-known/oauth-authorization-server"),
        }
    }
}

fn absolute(gw: &Gateway, path: &str) -> String {
    let mut url = gw.config.external_url.clone();
    url.set_path(path);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

fn settings(gw: &Gateway) -> &DeviceFlowConfig {
    gw.config.machine.device_flow.as_ref().expect("routes are registered only with a device flow")
}

/// Where this gateway keeps grants: Redis with `store: Redis`, else memory.
fn store(gw: &Gateway) -> Store<'_> {
    match (&gw.redis, &gw.config.session.store) {
        (Some(redis), StoreConfig::Redis(settings)) => Store::Redis {
            backend: redis.backend(),
            prefix: crate::gateway::session::redis_store::key_prefix(&gw.config.session, settings),
        },
        _ => Store::Memory(&gw.device),
    }
}

/// An RFC 6749 §5.2 error: JSON, 400 unless said otherwise, never cached.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    no_store((status, Json(json!({"error": error, "error_description": description}))).into_response())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn unavailable(gw: &Gateway, e: &StoreError) -> Response {
    tracing::warn!(error = %e, "device flow store");
    gw.metrics.machine.device("unavailable");
    let status = match e {
        StoreError::Full => StatusCode::TOO_MANY_REQUESTS,
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    oauth_error(status, "temporarily_unavailable", "try again later")
}

/// The requesting client's address: the connection's peer, or the
/// client a trusted proxy (`forward.trustedProxies`) vouches for, by the
/// same rule as the `X-Real-IP` the upstream gets. Guess limits count per
/// this address and the approval page shows it.
fn client_ip(gw: &Gateway, headers: &HeaderMap, peer: SocketAddr) -> String {
    use crate::gateway::upstream::headers::Forwarding;
    let peer_ip = peer.ip().to_canonical();
    let Ok(forwarding) = Forwarding::new(&gw.config.external_url, &gw.config.forward.trusted_proxies) else {
        return peer_ip.to_string();
    };
    let mut scratch = HeaderMap::new();
    forwarding.apply(&mut scratch, peer_ip, forwarding.trusted_chain(headers, peer_ip));
    scratch.get("x-real-ip").and_then(|v| v.to_str().ok()).map_or_else(|| peer_ip.to_string(), str::to_owned)
}

/// `GET …/.well-known/oauth-authorization-server`.
pub(crate) async fn metadata(State(gw): State<Arc<Gateway>>) -> Response {
    let paths = DevicePaths::of(&gw);
    no_store(
        Json(json!({
            "issuer": gw.config.external_url.as_str().trim_end_matches('/'),
            "device_authorization_endpoint": absolute(&gw, &paths.code),
            "token_endpoint": absolute(&gw, &paths.token),
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": [],
        }))
        .into_response(),
    )
}

/// Form of `POST …/oauth2/device/code`.
#[derive(Deserialize)]
pub struct CodeForm {
    client_id: Option<String>,
}

fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// `POST …/oauth2/device/code`: a new grant.
pub(crate) async fn device_code(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(client_id) = form.client_id.filter(|c| valid_client_id(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "client_id is required (letters, digits, -._)");
    };
    let cfg = settings(&gw);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (store, ip, now) = (store(&gw), client_ip(&gw, &headers, peer), now());
    match device::may_authorize(&store, &ip, now).await {
        Ok(true) => {}
        Ok(false) => {
            gw.metrics.machine.device("rate_limited");
            return oauth_error(StatusCode::TOO_MANY_REQUESTS, "slow_down", "too many device authorizations; wait");
        }
        Err(e) => return unavailable(&gw, &e),
    }
    let codes = match device::authorize(&store, &client_id, &ip, ua, cfg.code_ttl_seconds, now).await {
        Ok(codes) => codes,
        Err(e) => return unavailable(&gw, &e),
    };
    gw.metrics.machine.device("authorized");
    let verification = absolute(&gw, &DevicePaths::of(&gw).approve);
    let complete = format!("{verification}?user_code={}", codes.user_code);
    no_store(
        Json(json!({
            "device_code": codes.device_code,
            "user_code": codes.user_code,
            "verification_uri": verification,
            "verification_uri_complete": complete,
            "expires_in": cfg.code_ttl_seconds,
            "interval": cfg.interval_seconds,
        }))
        .into_response(),
    )
}

/// Form of `POST …/oauth2/token`.
#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    device_code: Option<String>,
    client_id: Option<String>,
}

/// `POST …/oauth2/token`: one poll of a device.
pub(crate) async fn token(State(gw): State<Arc<Gateway>>, Form(form): Form<TokenForm>) -> Response {
    if form.grant_type.as_deref() != Some(GRANT_TYPE) {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only the device code grant is served");
    }
    let (Some(code), Some(client_id)) = (form.device_code, form.client_id) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "device_code and client_id are required");
    };
    let cfg = settings(&gw);
    let now = now();
    let outcome = match device::poll(&store(&gw), &code, &client_id, cfg.interval_seconds, now).await {
        Ok(outcome) => outcome,
        Err(e) => return unavailable(&gw, &e),
    };
    let (error, description) = match outcome {
        Poll::Issued(approval) => {
            gw.metrics.machine.device("issued");
            tracing::info!(user = approval.user, provider = approval.provider, client_id, "device token issued");
            let token = mint(gw.keyring(), &approval, cfg.token_ttl_seconds, now);
            return no_store(
                Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": cfg.token_ttl_seconds}))
                    .into_response(),
            );
        }
        Poll::Pending => ("authorization_pending", "the code has not been approved yet"),
        Poll::SlowDown => ("slow_down", "polled sooner than the interval"),
        Poll::Expired => ("expired_token", "the device code expired; start again"),
        Poll::Denied => ("access_denied", "the request was denied"),
        Poll::Invalid => ("invalid_grant", "unknown or already used device code"),
    };
    gw.metrics.machine.device(match error {
        "authorization_pending" => "pending",
        "expired_token" => "expired",
        "access_denied" => "denied_poll",
        "invalid_grant" => "invalid_grant",
        other => other,
    });
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// Query of `GET …/oauth2/device`.
#[derive(Deserialize)]
pub struct ApproveQuery {
    user_code: Option<String>,
}

/// The approving session, or the answer to give instead: a redirect to
/// sign in and back to `back`.
async fn session_or_sign_in(
    gw: &Gateway,
    headers: &HeaderMap,
    back: &str,
) -> Result<crate::gateway::authn::SessionCaller, Response> {
    match gw.authenticate(headers, now()).await {
        Authn::Caller(Caller::Session(session)) => Ok(session),
        Authn::Rejected(Rejection::StoreUnavailable) => Err(crate::gateway::pages::store_unavailable(&gw.look())),
        _ => Err(found(&gw.start_href(None, Some(back), None))),
    }
}

fn back_to(paths: &DevicePaths, user_code: Option<&str>) -> String {
    match user_code {
        Some(code) => format!(
            "{}?{}",
            paths.approve,
            url::form_urlencoded::Serializer::new(String::new()).append_pair("user_code", code).finish()
        ),
        None => paths.approve.clone(),
    }
}

fn csrf_aad(session_id: &[u8]) -> Vec<u8> {
    [b"authgate device csrf:".as_slice(), session_id].concat()
}

/// A CSRF token for the session `session_id`: its id and the time, sealed.
fn csrf_token(gw: &Gateway, session_id: &[u8], now: u64) -> String {
    gw.keyring().seal(&csrf_aad(session_id), &now.to_be_bytes())
}

fn csrf_ok(gw: &Gateway, session_id: &[u8], token: &str, now: u64) -> bool {
    gw.keyring()
        .open(&csrf_aad(session_id), token)
        .and_then(|t| <[u8; 8]>::try_from(t.as_slice()).ok())
        .map(u64::from_be_bytes)
        .is_some_and(|issued| issued <= now && now - issued < CSRF_TTL)
}

/// Looks up a typed code for `ip`, counting a wrong one; `Err` is the
/// answer to give (rate limited, not found, store down).
async fn lookup(gw: &Gateway, ip: &str, typed: &str, now: u64) -> Result<(String, device::Grant), Response> {
    let store = store(gw);
    match device::may_guess(&store, ip, now).await {
        Ok(true) => {}
        Ok(false) => {
            gw.metrics.machine.device("rate_limited");
            tracing::warn!(ip, "device flow: too many wrong user codes");
            return Err(page::rate_limited(&gw.look()));
        }
        Err(e) => return Err(unavailable(gw, &e)),
    }
    let found = match device::normalize_user_code(typed) {
        Some(code) => device::find(&store, &code, now).await.map_err(|e| unavailable(gw, &e))?,
        None => None,
    };
    match found {
        Some(found) => Ok(found),
        None => {
            gw.metrics.machine.device("wrong_code");
            device::wrong_guess(&store, ip, now).await.map_err(|e| unavailable(gw, &e))?;
            Err(page::unknown_code(&gw.look(), &DevicePaths::of(gw).approve))
        }
    }
}

/// `GET …/oauth2/device`.
pub(crate) async fn approval_page(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<ApproveQuery>,
    headers: HeaderMap,
) -> Response {
    let paths = DevicePaths::of(&gw);
    let typed = q.user_code.as_deref().filter(|c| !c.trim().is_empty());
    let session = match session_or_sign_in(&gw, &headers, &back_to(&paths, typed)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(typed) = typed else { return page::enter_code(&gw.look(), &paths.approve) };
    let now = now();
    let (_, grant) = match lookup(&gw, &client_ip(&gw, &headers, peer), typed, now).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let view = session.view();
    page::confirm(&gw.look(), &paths.approve, &grant, view.user, &csrf_token(&gw, &view.id, now))
}

/// Form of `POST …/oauth2/device`.
#[derive(Deserialize)]
pub struct DecideForm {
    user_code: Option<String>,
    csrf: Option<String>,
    action: Option<String>,
}

/// `POST …/oauth2/device`: approve or deny.
pub(crate) async fn decide(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let paths = DevicePaths::of(&gw);
    let session = match session_or_sign_in(&gw, &headers, &back_to(&paths, form.user_code.as_deref())).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let view = session.view();
    let now = now();
    if !form.csrf.as_deref().is_some_and(|t| csrf_ok(&gw, &view.id, t, now)) {
        gw.metrics.machine.device("csrf");
        return page::forbidden(&gw.look());
    }
    let approve = match form.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => return page::enter_code(&gw.look(), &paths.approve),
    };
    let (hash, grant) =
        match lookup(&gw, &client_ip(&gw, &headers, peer), form.user_code.as_deref().unwrap_or(""), now).await {
            Ok(found) => found,
            Err(r) => return r,
        };
    let state = if approve {
        GrantState::Approved(Approval {
            subject: view.subject.to_owned(),
            user: view.user.to_owned(),
            email: view.email.map(str::to_owned),
            groups: view.groups().map(str::to_owned).collect(),
            provider: view.provider.to_owned(),
        })
    } else {
        GrantState::Denied
    };
    let client_id = grant.client_id.clone();
    if let Err(e) = device::decide(&store(&gw), &hash, grant, state, now).await {
        return unavailable(&gw, &e);
    }
    gw.metrics.machine.device(if approve { "approved" } else { "denied" });
    tracing::info!(user = view.user, client_id, approved = approve, "device authorization decided");
    page::decided(&gw.look(), approve)
}
