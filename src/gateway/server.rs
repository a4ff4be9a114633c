//! The gateway's HTTP server: routes, shared state and handlers.
//!
//! `/oauth2/*` (under the external URL's path) runs the login flow and the
//! session endpoints, and every other request is proxied — with a valid
//! session, or without one when authentication is disabled. `/healthz`,
//! `/readyz` and `/metrics` are served by [`Gateway::ops_router`] on a port
//! of their own, so the public port never shows metrics and never shadows
//! the upstream's paths of those names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, FromRef, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::config::{Authentication, GatewayConfig};
use super::error::Error;
use super::headers::forwardable_groups;
use super::metrics::{Metrics, Outcome};
use super::pages;
use super::providers::{HttpClient, Profile, Provider, ProviderError};
use super::proxy::{Forwarded, Proxy};
use super::request_target;
use super::session::cookies::Present;
use super::session::flow::{FLOW_TTL, LoginFlow};
use super::session::{CookieSettings, Keyring, Session, SessionView, now};
use crate::access::{authorize, is_valid_domain_pattern, safe_redirect};

/// Most login attempts (flow cookies) a browser may have open at once, for
/// several tabs signing in together; starting another drops the oldest.
pub const MAX_FLOWS: usize = 4;

/// Paths of the gateway's own endpoints, under the external URL's path.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `…/oauth2/start`.
    pub start: String,
    /// `…/oauth2/callback`.
    pub callback: String,
    /// `…/oauth2/sign_out`.
    pub sign_out: String,
    /// `…/oauth2/userinfo`.
    pub userinfo: String,
    /// The external URL's path, with a trailing slash: the default `rd`.
    pub home: String,
}

impl Paths {
    fn new(external: &Url) -> Self {
        let base = external.path().trim_end_matches('/');
        Self {
            start: format!("{base}/oauth2/start"),
            callback: format!("{base}/oauth2/callback"),
            sign_out: format!("{base}/oauth2/sign_out"),
            userinfo: format!("{base}/oauth2/userinfo"),
            home: format!("{base}/"),
        }
    }
}

/// Everything the handlers share. Built once; read-only afterwards except
/// for atomics (metrics) and the refresh coalescer, which only the refresh
/// path touches.
pub struct Gateway {
    config: GatewayConfig,
    paths: Paths,
    keyring: Option<Keyring>,
    cookies: CookieSettings,
    providers: Vec<Provider>,
    metrics: Metrics,
    refreshes: RefreshCoalescer,
}

impl Gateway {
    /// Validates the config and prepares keys, providers and the upstream
    /// client. Does no network I/O (see [`Gateway::warm_up`]).
    pub fn new(config: GatewayConfig) -> Result<Self, Error> {
        let enabled = config.authentication == Authentication::Enabled;
        let keyring = match (enabled, config.session.keys.is_empty()) {
            (true, _) | (false, false) => Some(Keyring::new(&config.session.keys)?),
            (false, true) => None,
        };
        if config.session.cookie_name.is_empty()
            || !config
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(Error::Config(format!(
                "cookie name {:?} must be non-empty [A-Za-z0-9_.-]",
                config.session.cookie_name
            )));
        }
        if config.session.ttl_seconds == 0 {
            return Err(Error::Config("the session lifetime (ttlSeconds) must be at least 1 second".into()));
        }
        if let Some(domain) = &config.session.cookie_domain
            && !is_valid_domain_pattern(domain)
        {
            // The value itself may be what breaks a header or a log line.
            return Err(Error::Config(
                "the cookie domain must be a bare hostname such as example.com or .example.com".into(),
            ));
        }
        if enabled {
            if config.providers.is_empty() {
                return Err(Error::Config("authentication is enabled but no provider is configured".into()));
            }
            if !config.allow_all_users {
                for p in &config.providers {
                    if super::providers::is_public(p) && p.filters.is_empty() && config.access.is_empty() {
                        return Err(Error::Config(format!(
                            "provider {:?} ({}) is open to anyone with an account and neither it nor the policy restricts access; \
                             restrict access or set allowAllUsers explicitly",
                            p.name, p.provider_type
                        )));
                    }
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for p in &config.providers {
            if !names.insert(p.name.as_str()) {
                return Err(Error::Config(format!("provider name {:?} is used twice", p.name)));
            }
        }
        let external = &config.external_url;
        if !matches!(external.scheme(), "http" | "https") {
            return Err(Error::Config("externalUrl must be http:// or https://".into()));
        }
        let secure = !(external.scheme() == "http" && crate::idp::is_loopback(external));
        if external.scheme() == "http" && secure {
            tracing::warn!(
                "externalUrl is plain http on a non-loopback host; cookies are marked Secure and browsers will not send them"
            );
        }
        let name = &config.session.cookie_name;
        if (name.starts_with("__Host-") || name.starts_with("__Secure-")) && external.scheme() != "https" {
            return Err(Error::Config(format!("a cookie name starting with {name:.7}… needs an https:// externalUrl")));
        }
        if name.starts_with("__Host-") && config.session.cookie_domain.is_some() {
            return Err(Error::Config("a __Host- cookie cannot have a cookie domain".into()));
        }
        let cookies = CookieSettings::new(
            &config.session.cookie_name,
            config.session.cookie_domain.as_deref(),
            secure,
            external.path(),
            config.session.ttl_seconds,
        );
        let http = HttpClient::new().map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let redirect = config.callback_url();
        let providers = config
            .providers
            .iter()
            .map(|p| {
                Provider::new(p.clone(), &redirect, &http)
                    .map_err(|source| Error::ProviderSetup { name: p.name.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Validates the upstream URL, trusted proxies (and TLS roots for
        // https) up front.
        Proxy::new(&config.upstream, external, config.forward.clone(), config.timeouts)
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            paths: Paths::new(external),
            keyring,
            cookies,
            providers,
            metrics: Metrics::default(),
            refreshes: RefreshCoalescer::default(),
            config,
        })
    }

    /// Fetches provider keys ahead of the first login.
    pub async fn warm_up(&self) {
        futures::future::join_all(self.providers.iter().map(Provider::warm_up)).await;
    }

    /// A connection pool to the upstream. Each serving thread gets its own,
    /// so a request and its upstream connection stay on one thread.
    pub fn new_proxy(&self) -> std::io::Result<Proxy> {
        Proxy::new(&self.config.upstream, &self.config.external_url, self.config.forward.clone(), self.config.timeouts)
    }

    /// The operations router: `/healthz`, `/readyz` and `/metrics`.
    pub fn ops_router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .with_state(self)
    }

    /// The public router, forwarding through `proxy`.
    pub fn router(self: Arc<Self>, proxy: Proxy) -> Router {
        let enabled = self.config.authentication == Authentication::Enabled;
        let paths = self.paths.clone();
        let mut router = Router::new();
        if enabled {
            router = router
                .route(&paths.start, get(start))
                .route(&paths.callback, get(callback))
                .route(&paths.sign_out, get(sign_out).post(sign_out))
                .route(&paths.userinfo, get(userinfo));
        }
        router.fallback(proxy_request).with_state(Worker { gw: self, proxy: Arc::new(proxy) })
    }

    fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    fn keyring(&self) -> &Keyring {
        self.keyring.as_ref().expect("authentication enabled implies a keyring")
    }

    /// The decrypted session payload, if the request carries one that
    /// authenticates, plus which session cookies it carried.
    fn open_session(&self, headers: &HeaderMap) -> (Option<Vec<u8>>, Present) {
        let (sealed, present) = self.cookies.read_session(headers);
        let plaintext = sealed.and_then(|s| self.keyring().open(self.cookies.name().as_bytes(), &s));
        (plaintext, present)
    }

    fn seal_session(&self, session: &Session, present: Present, out: &mut HeaderMap) -> Result<(), Error> {
        let sealed = self.keyring().seal(self.cookies.name().as_bytes(), &session.encode());
        self.cookies.write_session(&sealed, present, out)?;
        Ok(())
    }

    fn start_href(&self, provider: Option<&str>, rd: Option<&str>, prompt: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = provider {
            q.append_pair("provider", p);
        }
        if let Some(rd) = rd {
            q.append_pair("rd", rd);
        }
        if let Some(prompt) = prompt {
            q.append_pair("prompt", prompt);
        }
        let q = q.finish();
        if q.is_empty() { self.paths.start.clone() } else { format!("{}?{q}", self.paths.start) }
    }

    /// `rd` if it is a safe post-login target, else the external URL's path.
    fn validated_rd(&self, rd: Option<&str>) -> String {
        rd.and_then(|rd| safe_redirect(rd, &self.config.external_url)).unwrap_or_else(|| self.paths.home.clone())
    }

    fn error_page(&self, e: &Error) -> Response {
        let retry = self.start_href(None, None, None);
        match e {
            Error::Denied(_) | Error::SignIn(ProviderError::Denied { .. }) => {
                pages::denied(&e.user_message(), &self.start_href(None, None, Some("login")))
            }
            _ => pages::error(e.status(), &e.user_message(), &retry),
        }
    }
}

/// Decodes a session payload, if it is well-formed and still live.
fn live(plaintext: Option<&[u8]>, now: u64) -> Option<SessionView<'_>> {
    plaintext.and_then(|p| SessionView::decode(p).ok()).filter(|v| v.is_live(now))
}

/// A `302 Found` to `location` (non-ASCII characters percent-encoded).
fn found(location: &str) -> Response {
    let encoded = percent_encoding::utf8_percent_encode(location, percent_encoding::CONTROLS).to_string();
    match HeaderValue::try_from(encoded) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect target\n").into_response(),
    }
}

/// Router state: the shared gateway plus this thread's upstream pool.
#[derive(Clone)]
pub struct Worker {
    gw: Arc<Gateway>,
    proxy: Arc<Proxy>,
}

impl FromRef<Worker> for Arc<Gateway> {
    fn from_ref(worker: &Worker) -> Self {
        worker.gw.clone()
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut r = gw.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// Query of `/oauth2/start`.
#[derive(Deserialize)]
pub struct StartQuery {
    provider: Option<String>,
    rd: Option<String>,
    prompt: Option<String>,
}

/// Prompts passed through to the provider.
fn allowed_prompt(prompt: Option<&str>) -> Option<&str> {
    prompt.filter(|p| matches!(*p, "login" | "select_account" | "consent"))
}

async fn start(State(gw): State<Arc<Gateway>>, Query(q): Query<StartQuery>, headers: HeaderMap) -> Response {
    let rd = gw.validated_rd(q.rd.as_deref());
    let prompt = allowed_prompt(q.prompt.as_deref());
    let provider = match q.provider.as_deref().filter(|p| !p.is_empty()) {
        Some(name) => match gw.provider(name) {
            Some(p) => p,
            None => {
                gw.metrics.login("unknown", Error::UnknownProvider.reason());
                return gw.error_page(&Error::UnknownProvider);
            }
        },
        None if gw.providers.len() == 1 => &gw.providers[0],
        None => {
            let links = gw
                .providers
                .iter()
                .map(|p| (p.name().to_owned(), gw.start_href(Some(p.name()), Some(&rd), prompt)))
                .collect::<Vec<_>>();
            return pages::chooser(&links);
        }
    };
    let mut flow = LoginFlow::new(provider.name(), rd, provider.uses_nonce(), now());
    let mut response = Response::new(axum::body::Body::empty());
    let flow_cookie = gw.cookies.flow_name(&flow.state);
    let sealed = gw.keyring().seal(flow_cookie.as_bytes(), &flow.encode());
    if gw.cookies.write_flow(&flow_cookie, &sealed, FLOW_TTL, response.headers_mut()).is_err() {
        // A deep link too long for the flow cookie would make this login
        // impossible to finish: land on the home page instead.
        tracing::info!(rd_len = flow.rd.len(), "post-login target too long for the flow cookie; using the base path");
        flow.rd = gw.paths.home.clone();
        let sealed = gw.keyring().seal(flow_cookie.as_bytes(), &flow.encode());
        if let Err(e) = gw.cookies.write_flow(&flow_cookie, &sealed, FLOW_TTL, response.headers_mut()) {
            return gw.error_page(&Error::from(e));
        }
    }
    expire_old_flows(&gw, &headers, response.headers_mut());
    let location = provider.authorization_url(&flow, prompt, &gw.config.access);
    let mut redirect = found(location.as_str());
    for v in response.headers().get_all(header::SET_COOKIE) {
        redirect.headers_mut().append(header::SET_COOKIE, v.clone());
    }
    tracing::debug!(provider = provider.name(), "login started");
    pages::harden(redirect)
}

/// Keeps at most [`MAX_FLOWS`] login attempts per browser: expires the
/// oldest of the flow cookies the request carried (and expired ones), so
/// repeated visits to `/oauth2/start` cannot pile cookies up until the
/// browser's header limit locks the user out. Cookies this gateway cannot
/// decrypt are not its own and are left alone.
fn expire_old_flows(gw: &Gateway, headers: &HeaderMap, out: &mut HeaderMap) {
    let now = now();
    let mut open: Vec<(u64, &str)> = Vec::new();
    for (name, sealed) in gw.cookies.flows(headers) {
        let Some(flow) = gw.keyring().open(name.as_bytes(), sealed).and_then(|p| LoginFlow::decode(&p).ok()) else {
            continue;
        };
        if flow.is_fresh(now) {
            open.push((flow.created_at, name));
        } else {
            gw.cookies.clear_flow(name, out);
        }
    }
    if open.len() >= MAX_FLOWS {
        open.sort_unstable();
        for (_, name) in &open[..=open.len() - MAX_FLOWS] {
            gw.cookies.clear_flow(name, out);
        }
    }
}

/// Query of `/oauth2/callback`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

async fn callback(State(gw): State<Arc<Gateway>>, Query(q): Query<CallbackQuery>, headers: HeaderMap) -> Response {
    let Some(state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        gw.metrics.login("unknown", Error::FlowMissing.reason());
        return gw.error_page(&Error::FlowMissing);
    };
    let flow_cookie = gw.cookies.flow_name(state);
    let (provider_label, result) = match load_flow(&gw, &headers, &flow_cookie, state) {
        Err(e) => ("unknown".to_owned(), Err(e)),
        Ok(flow) => (flow.provider.clone(), finish_login(&gw, &flow, &q, &headers).await),
    };
    let mut response = match result {
        Ok(response) => {
            gw.metrics.login(&provider_label, "success");
            response
        }
        Err(e) => {
            gw.metrics.login(&provider_label, e.reason());
            match &e {
                Error::Denied(_) | Error::SignIn(ProviderError::Denied { .. }) => {
                    tracing::info!(provider = %provider_label, reason = e.reason(), "sign-in denied")
                }
                Error::SignIn(inner) => {
                    tracing::warn!(provider = %provider_label, error = %inner, "sign-in failed")
                }
                _ => tracing::info!(provider = %provider_label, error = %e, "sign-in refused"),
            }
            gw.error_page(&e)
        }
    };
    if CookieSettings::read(&headers, &flow_cookie).is_some() {
        gw.cookies.clear_flow(&flow_cookie, response.headers_mut());
    }
    pages::harden(response)
}

fn load_flow(gw: &Gateway, headers: &HeaderMap, flow_cookie: &str, state: &str) -> Result<LoginFlow, Error> {
    let sealed = CookieSettings::read(headers, flow_cookie).ok_or(Error::FlowMissing)?;
    let plaintext = gw.keyring().open(flow_cookie.as_bytes(), sealed).ok_or(Error::FlowMissing)?;
    let flow = LoginFlow::decode(&plaintext).map_err(|_| Error::FlowMissing)?;
    if !flow.state_matches(state) {
        return Err(Error::StateMismatch);
    }
    if !flow.is_fresh(now()) {
        return Err(Error::FlowExpired);
    }
    Ok(flow)
}

async fn finish_login(
    gw: &Gateway,
    flow: &LoginFlow,
    q: &CallbackQuery,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let provider = gw.provider(&flow.provider).ok_or(Error::UnknownProvider)?;
    if let Some(error) = &q.error {
        // Only the standard code, and only if it looks like one.
        let code: String = error.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').take(64).collect();
        return Err(Error::ProviderReturned(if code.is_empty() { "error".into() } else { code }));
    }
    if !provider.accepts_issuer_param(q.iss.as_deref()) {
        return Err(Error::IssuerMismatch);
    }
    let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or(Error::MissingCode)?;
    let signed_in = provider.sign_in(code, flow, &gw.config.access).await?;
    let identity = &signed_in.profile.identity;
    authorize(identity, [&provider.config().filters, &gw.config.access]).inspect_err(|d| {
        tracing::info!(provider = provider.name(), user = %identity.user, reason = d.reason(), "access denied");
    })?;
    let now = now();
    let session = new_session(provider.name(), signed_in.profile, signed_in.tokens, now, gw.config.session.ttl_seconds);
    tracing::info!(provider = provider.name(), user = %session.user, "signed in");
    let (_, present) = gw.cookies.read_session(headers);
    let target = gw.validated_rd(Some(&flow.rd));
    let mut response = found(&target);
    gw.seal_session(&session, present, response.headers_mut())?;
    Ok(response)
}

fn new_session(provider: &str, profile: Profile, tokens: super::providers::Tokens, now: u64, ttl: u64) -> Session {
    let identity = profile.identity;
    Session {
        provider: provider.to_owned(),
        // The canonical form the filters matched, never the raw claim.
        email: identity.verified_email().ok().map(|e| e.to_string()),
        groups: forwardable_groups(profile.groups, &identity.user),
        subject: identity.subject,
        user: identity.user,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_issued_at: now,
        access_expires_at: tokens.expires_in.map_or(0, |s| now.saturating_add(s)),
        expires_at: now.saturating_add(ttl),
    }
}

/// Query of `/oauth2/sign_out`.
#[derive(Deserialize)]
pub struct SignOutQuery {
    rd: Option<String>,
}

async fn sign_out(State(gw): State<Arc<Gateway>>, Query(q): Query<SignOutQuery>, headers: HeaderMap) -> Response {
    // Only a cookie this gateway can open is its own to delete.
    let (plaintext, present) = gw.open_session(&headers);
    let mut response = match q.rd.as_deref().and_then(|rd| safe_redirect(rd, &gw.config.external_url)) {
        Some(target) => found(&target),
        None => pages::signed_out(&gw.start_href(None, None, Some("login"))),
    };
    if plaintext.is_some() {
        gw.cookies.clear_session(present, response.headers_mut());
    }
    pages::harden(response)
}

async fn userinfo(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let (plaintext, _) = gw.open_session(&headers);
    let Some(view) = live(plaintext.as_deref(), now()) else {
        return unauthorized_json();
    };
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

fn unauthorized_json() -> Response {
    let mut r =
        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "unauthorized", "message": "sign-in required"})))
            .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether the client is a browser navigating (gets a redirect to sign in)
/// rather than an API or XHR client (gets 401).
fn wants_html(headers: &HeaderMap) -> bool {
    if headers.get("x-requested-with").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest")) {
        return false;
    }
    headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

async fn proxy_request(
    State(worker): State<Worker>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (gw, proxy) = (&*worker.gw, &*worker.proxy);
    if let Err(refused) = request_target::check(request.method(), request.uri()) {
        gw.metrics.request(Outcome::BadRequest);
        return (refused.status(), format!("{refused}\n")).into_response();
    }
    if gw.config.authentication == Authentication::Disabled {
        return forward(gw, proxy, request, peer, None, Outcome::PassedThrough).await;
    }
    let now = now();
    let (plaintext, present) = gw.open_session(request.headers());
    let Some(view) = live(plaintext.as_deref(), now) else {
        // A cookie that did not decrypt may be another gateway's of the same
        // name (a shared cookie domain): never delete what is not ours.
        let ours = if plaintext.is_some() { present } else { Present::default() };
        return unauthenticated(gw, &request, ours);
    };
    if view.refresh_due(now) && view.refresh_token.is_some() {
        return refresh_and_forward(gw, proxy, request, peer, &view, present, now).await;
    }
    if view.access_expired(now) && gw.config.forward.access_token {
        return unauthenticated(gw, &request, present);
    }
    forward(gw, proxy, request, peer, Some(&view), Outcome::Proxied).await
}

async fn forward(
    gw: &Gateway,
    proxy: &Proxy,
    request: Request,
    peer: SocketAddr,
    session: Option<&SessionView<'_>>,
    outcome: Outcome,
) -> Response {
    let user = session.map(|session| Forwarded { session });
    match proxy.forward(request, peer.ip(), user, &gw.cookies).await {
        Ok((response, elapsed)) => {
            gw.metrics.request(outcome);
            gw.metrics.upstream_latency(elapsed);
            response
        }
        Err(e @ super::proxy::ProxyError::ClientBody) => {
            gw.metrics.request(Outcome::BadRequest);
            tracing::debug!(error = %e, "client request refused");
            (e.status(), "the request body could not be read\n").into_response()
        }
        Err(e) => {
            gw.metrics.request(Outcome::UpstreamError);
            tracing::warn!(error = %e, "upstream unavailable");
            (e.status(), "upstream unavailable\n").into_response()
        }
    }
}

fn unauthenticated(gw: &Gateway, request: &Request, present: Present) -> Response {
    let mut response = if wants_html(request.headers()) {
        gw.metrics.request(Outcome::LoginRedirect);
        let original = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        pages::harden(found(&gw.start_href(None, Some(original), None)))
    } else {
        gw.metrics.request(Outcome::Unauthorized);
        unauthorized_json()
    };
    if present != Present::default() {
        // A stale, foreign or tampered cookie: drop it.
        gw.cookies.clear_session(present, response.headers_mut());
    }
    response
}

async fn refresh_and_forward(
    gw: &Gateway,
    proxy: &Proxy,
    request: Request,
    peer: SocketAddr,
    view: &SessionView<'_>,
    present: Present,
    now: u64,
) -> Response {
    match refresh(gw, view).await {
        Ok(session) => {
            let buf = session.encode();
            let fresh = SessionView::decode(&buf).expect("just encoded");
            let mut cookies = HeaderMap::new();
            if let Err(e) = gw.seal_session(&session, present, &mut cookies) {
                tracing::warn!(error = %e, "refreshed session not stored");
            }
            let mut response = forward(gw, proxy, request, peer, Some(&fresh), Outcome::Proxied).await;
            for value in cookies.get_all(header::SET_COOKIE) {
                response.headers_mut().append(header::SET_COOKIE, value.clone());
            }
            response
        }
        Err(RefreshFailure::Transient) if !view.access_expired(now) => {
            forward(gw, proxy, request, peer, Some(view), Outcome::Proxied).await
        }
        Err(_) => unauthenticated(gw, &request, present),
    }
}

/// Why a refresh did not produce a new session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefreshFailure {
    /// The provider refused (expired or revoked grant) or the user no
    /// longer passes the filters: sign in again.
    Rejected,
    /// Network trouble or the like: try again later.
    Transient,
}

async fn refresh(gw: &Gateway, view: &SessionView<'_>) -> Result<Session, RefreshFailure> {
    let Some(refresh_token) = view.refresh_token else {
        return Err(RefreshFailure::Rejected);
    };
    // Keyed by the tokens being replaced: requests carrying the same cookie
    // share one refresh; the next refresh (new access token) is a new key.
    let mut hash = Sha256::new();
    hash.update(refresh_token.as_bytes());
    hash.update([0]);
    hash.update(view.access_token.as_bytes());
    let key: [u8; 32] = hash.finalize().into();
    let current = view.to_session();
    gw.refreshes.run(key, || refresh_once(gw, current)).await
}

async fn refresh_once(gw: &Gateway, mut session: Session) -> Result<Session, RefreshFailure> {
    let Some(provider) = gw.provider(&session.provider) else {
        return Err(RefreshFailure::Rejected);
    };
    let refresh_token = session.refresh_token.clone().unwrap_or_default();
    match provider.refresh(&refresh_token, &session.subject, &gw.config.access).await {
        Ok(refreshed) => {
            if let Some(profile) = refreshed.profile {
                if let Err(d) = authorize(&profile.identity, [&provider.config().filters, &gw.config.access]) {
                    tracing::info!(provider = provider.name(), user = %session.user, reason = d.reason(), "access revoked at refresh");
                    gw.metrics.refresh("denied");
                    return Err(RefreshFailure::Rejected);
                }
                let identity = profile.identity;
                session.email = identity.verified_email().ok().map(|e| e.to_string());
                session.groups = forwardable_groups(profile.groups, &identity.user);
                session.user = identity.user;
            }
            let now = now();
            session.access_token = refreshed.tokens.access_token;
            if let Some(rt) = refreshed.tokens.refresh_token {
                session.refresh_token = Some(rt);
            }
            session.access_issued_at = now;
            session.access_expires_at = refreshed.tokens.expires_in.map_or(0, |s| now.saturating_add(s));
            gw.metrics.refresh("success");
            tracing::debug!(provider = provider.name(), user = %session.user, "access token refreshed");
            Ok(session)
        }
        Err(e @ (ProviderError::Rejected { .. } | ProviderError::InvalidIdToken(_) | ProviderError::Denied { .. })) => {
            tracing::info!(provider = provider.name(), user = %session.user, error = %e, "refresh refused; sign-in required");
            gw.metrics.refresh("rejected");
            Err(RefreshFailure::Rejected)
        }
        Err(e) => {
            tracing::warn!(provider = provider.name(), error = %e, "refresh failed");
            gw.metrics.refresh("error");
            Err(RefreshFailure::Transient)
        }
    }
}

type Flight = Arc<tokio::sync::OnceCell<Result<Session, RefreshFailure>>>;

/// Makes concurrent requests of one session share a single refresh (a
/// provider that rotates refresh tokens would reject all but the first),
/// and lets a successful result serve requests that arrive shortly after
/// with the same old cookie. Failures are not kept.
#[derive(Default)]
struct RefreshCoalescer {
    flights: Mutex<HashMap<[u8; 32], (Instant, Flight)>>,
}

impl RefreshCoalescer {
    const KEEP: Duration = Duration::from_secs(10);

    async fn run<F, Fut>(&self, key: [u8; 32], refresh: F) -> Result<Session, RefreshFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, RefreshFailure>>,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            flights.retain(|_, (at, _)| at.elapsed() < Self::KEEP);
            flights.entry(key).or_insert_with(|| (Instant::now(), Flight::default())).1.clone()
        };
        let result = flight.get_or_init(refresh).await.clone();
        if result.is_err() {
            let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if flights.get(&key).is_some_and(|(_, f)| Arc::ptr_eq(f, &flight)) {
                flights.remove(&key);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn paths_follow_the_external_url() {
        let p = Paths::new(&Url::parse("https://x.example.com/app/").unwrap());
        assert_eq!(p.callback, "/app/oauth2/callback");
        assert_eq!(p.home, "/app/");
        let root = Paths::new(&Url::parse("https://x.example.com").unwrap());
        assert_eq!(root.start, "/oauth2/start");
        assert_eq!(root.home, "/");
    }

    #[test]
    fn redirects_are_302_and_ascii() {
        let r = found("/ü?x=1");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "/%C3%BC?x=1");
    }

    #[test]
    fn prompts_are_allow_listed() {
        assert_eq!(allowed_prompt(Some("login")), Some("login"));
        assert_eq!(allowed_prompt(Some("none")), None);
        assert_eq!(allowed_prompt(Some("login&x=y")), None);
    }

    #[tokio::test]
    async fn coalescer_runs_one_refresh_for_concurrent_callers() {
        let c = RefreshCoalescer::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let run = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(RefreshFailure::Transient)
        };
        let (a, b) = tokio::join!(c.run([1; 32], run), c.run([1; 32], run));
        assert_eq!((a, b), (Err(RefreshFailure::Transient), Err(RefreshFailure::Transient)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A failure is not kept: the next caller tries again.
        let _ = c.run([1; 32], run).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
