//! A fake of GitHub's OAuth app web flow and the REST endpoints the gateway
//! reads, following GitHub's documentation:
//!
//! - `GET /login/oauth/authorize` ("Authorizing OAuth apps", web application
//!   flow): no sign-in page; it redirects straight back with `code` and
//!   `state` for the user the test chose with [`FakeGithub::login_as`].
//!   PKCE `code_challenge` is accepted with `code_challenge_method=S256` only.
//! - `POST /login/oauth/access_token`: `client_id`, `client_secret`, `code`,
//!   `redirect_uri`, `code_verifier`. The answer is form-encoded unless the
//!   request asks for `Accept: application/json`. Errors come back as
//!   HTTP 200 with `error`, `error_description`, `error_uri` ("Troubleshooting
//!   OAuth app access token request errors").
//! - REST under `/api/v3` (the GitHub Enterprise Server layout, so `apiUrl`
//!   must be honoured as a base with a path): `GET /user`, `/user/emails`,
//!   `/user/orgs`, `/user/teams`. `Authorization: Bearer` or `token`;
//!   `User-Agent` is required; lists paginate with `per_page` (default 30,
//!   max 100) and `page`, with a `Link` header (`prev`, `next`, `last`,
//!   `first`) omitted when everything fits on one page ("Using pagination in
//!   the REST API").

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::random_token;
use crate::common::serve::{TaskGuard, bind, spawn_server};

/// Prefix of the REST API, as on GitHub Enterprise Server.
pub const API_PREFIX: &str = "/api/v3";

const DOCS: &str = "https://docs.github.com";

/// A REST endpoint of the fake, for failure injection and request logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    User,
    Emails,
    Orgs,
    Teams,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::User => "/user",
            Self::Emails => "/user/emails",
            Self::Orgs => "/user/orgs",
            Self::Teams => "/user/teams",
        }
    }
}

/// An injected failure: `status` on every page, or only on `page`.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    pub status: u16,
    pub page: Option<u32>,
}

/// One entry of `GET /user/emails`.
#[derive(Clone, Debug)]
pub struct Email {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
    /// `public`, `private`, or none.
    pub visibility: Option<String>,
}

/// One team membership: organization login, team slug and display name.
#[derive(Clone, Debug)]
pub struct Team {
    pub org: String,
    pub slug: String,
    pub name: String,
}

/// A GitHub account as the test wants it.
#[derive(Clone, Debug)]
pub struct User {
    pub login: String,
    pub id: u64,
    pub name: Option<String>,
    /// The profile's public email (`email` of `GET /user`); often null.
    pub public_email: Option<String>,
    pub emails: Vec<Email>,
    pub orgs: Vec<String>,
    pub teams: Vec<Team>,
    pub failures: BTreeMap<Endpoint, Failure>,
}

impl User {
    pub fn new(login: &str) -> Self {
        let id = login.bytes().fold(1000u64, |acc, b| acc.wrapping_mul(31).wrapping_add(u64::from(b))) % 90_000_000;
        Self {
            login: login.to_owned(),
            id: id + 1,
            name: Some(format!("The {login}")),
            public_email: None,
            emails: vec![],
            orgs: vec![],
            teams: vec![],
            failures: BTreeMap::new(),
        }
    }

    /// Adds an address to `GET /user/emails`.
    pub fn email(mut self, email: &str, primary: bool, verified: bool) -> Self {
        self.emails.push(Email {
            email: email.to_owned(),
            primary,
            verified,
            visibility: Some(if primary { "public" } else { "private" }.to_owned()),
        });
        self
    }

    /// Sets the profile's public `email`.
    pub fn public_email(mut self, email: &str) -> Self {
        self.public_email = Some(email.to_owned());
        self
    }

    pub fn org(mut self, login: &str) -> Self {
        self.orgs.push(login.to_owned());
        self
    }

    pub fn orgs<I: IntoIterator<Item = String>>(mut self, logins: I) -> Self {
        self.orgs.extend(logins);
        self
    }

    /// A team in `org` whose slug is `slug`; its display name differs from
    /// the slug on purpose, as on GitHub ("Platform Team" / `platform-team`).
    pub fn team(mut self, org: &str, slug: &str) -> Self {
        self.teams.push(Team {
            org: org.to_owned(),
            slug: slug.to_owned(),
            name: format!("Team {slug} (display name)"),
        });
        self
    }

    /// `endpoint` answers `status` on every page.
    pub fn fail(mut self, endpoint: Endpoint, status: u16) -> Self {
        self.failures.insert(endpoint, Failure { status, page: None });
        self
    }

    /// Every REST endpoint answers `status`, as GitHub in an outage.
    pub fn fail_everything(mut self, status: u16) -> Self {
        for endpoint in [Endpoint::User, Endpoint::Emails, Endpoint::Orgs, Endpoint::Teams] {
            self.failures.insert(endpoint, Failure { status, page: None });
        }
        self
    }

    /// `endpoint` answers `status` on `page` only.
    pub fn fail_page(mut self, endpoint: Endpoint, status: u16, page: u32) -> Self {
        self.failures.insert(endpoint, Failure { status, page: Some(page) });
        self
    }
}

/// What the authorize endpoint received.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    pub params: BTreeMap<String, String>,
}

/// One REST request the fake served.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub endpoint: Option<Endpoint>,
    pub path_and_query: String,
    pub status: u16,
    pub page: u32,
    pub per_page: usize,
}

struct Grant {
    login: String,
    client_id: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    code_challenge: Option<String>,
}

struct Issued {
    login: String,
    scopes: Vec<String>,
}

struct Inner {
    client_id: String,
    client_secret: String,
    registered_callback: Option<String>,
    users: HashMap<String, User>,
    current: Option<String>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Issued>,
    issued: Vec<String>,
    forced_token_error: Option<String>,
    authorize_requests: Vec<AuthorizeRequest>,
    token_requests: Vec<BTreeMap<String, String>>,
    api_requests: Vec<ApiRequest>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    base: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake GitHub, serving until dropped.
pub struct FakeGithub {
    shared: Shared,
    pub addr: SocketAddr,
    _task: TaskGuard,
}

impl FakeGithub {
    /// Starts a fake with one registered OAuth app.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let (listener, addr) = bind().await;
        let inner = Arc::new(Mutex::new(Inner {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            registered_callback: None,
            users: HashMap::new(),
            current: None,
            grants: HashMap::new(),
            tokens: HashMap::new(),
            issued: vec![],
            forced_token_error: None,
            authorize_requests: vec![],
            token_requests: vec![],
            api_requests: vec![],
        }));
        let shared = Shared { inner, base: format!("http://{addr}") };
        let task = spawn_server(listener, router(shared.clone()));
        Self { shared, addr, _task: task }
    }

    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn authorize_url(&self) -> Url {
        Url::parse(&format!("{}/login/oauth/authorize", self.shared.base)).expect("url")
    }

    pub fn token_url(&self) -> Url {
        Url::parse(&format!("{}/login/oauth/access_token", self.shared.base)).expect("url")
    }

    /// REST base, like `https://HOST/api/v3` on GitHub Enterprise Server.
    pub fn api_url(&self) -> Url {
        Url::parse(&format!("{}{API_PREFIX}", self.shared.base)).expect("url")
    }

    /// The OAuth app's registered callback URL; `redirect_uri` must match it.
    pub fn register_callback(&self, url: &str) {
        self.shared.lock().registered_callback = Some(url.to_owned());
    }

    pub fn add_user(&self, user: User) {
        self.shared.lock().users.insert(user.login.to_lowercase(), user);
    }

    /// Changes `login`'s account while the test runs (its orgs, teams,
    /// emails, injected failures): every later API call sees the change,
    /// whatever token it carries.
    pub fn update_user(&self, login: &str, change: impl FnOnce(&mut User)) {
        let mut inner = self.shared.lock();
        let user = inner.users.get_mut(&login.to_lowercase()).expect("a user the test added");
        change(user);
    }

    /// The account "signed in" at the fake: the next authorize request
    /// grants a code for it.
    pub fn login_as(&self, login: &str) {
        self.shared.lock().current = Some(login.to_lowercase());
    }

    /// Makes every token request answer this GitHub error (HTTP 200), e.g.
    /// `bad_verification_code`.
    pub fn force_token_error(&self, error: Option<&str>) {
        self.shared.lock().forced_token_error = error.map(str::to_owned);
    }

    /// Access tokens issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.shared.lock().authorize_requests.clone()
    }

    /// Token request form fields, secrets included (tests only).
    pub fn token_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.lock().token_requests.clone()
    }

    pub fn api_requests(&self) -> Vec<ApiRequest> {
        self.shared.lock().api_requests.clone()
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route(&format!("{API_PREFIX}/user"), get(api_user))
        .route(&format!("{API_PREFIX}/user/emails"), get(api_emails))
        .route(&format!("{API_PREFIX}/user/orgs"), get(api_orgs))
        .route(&format!("{API_PREFIX}/user/teams"), get(api_teams))
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> Response {
    not_found_sync()
}

fn github_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp.headers_mut().insert("x-github-media-type", HeaderValue::from_static("github.v3; format=json"));
    resp
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut().insert(header::LOCATION, HeaderValue::from_str(location).expect("location"));
    resp
}

/// `redirect_uri` is allowed when host and port equal the registered
/// callback's and its path is the same or below it.
fn redirect_uri_allowed(registered: &str, given: &str) -> bool {
    let (Ok(r), Ok(g)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    r.scheme() == g.scheme()
        && r.host_str() == g.host_str()
        && r.port_or_known_default() == g.port_or_known_default()
        && (g.path() == r.path() || g.path().starts_with(&format!("{}/", r.path().trim_end_matches('/'))))
}

async fn authorize(State(s): State<Shared>, Query(params): Query<BTreeMap<String, String>>) -> Response {
    let mut inner = s.lock();
    inner.authorize_requests.push(AuthorizeRequest { params: params.clone() });
    if params.get("client_id") != Some(&inner.client_id) {
        return (StatusCode::NOT_FOUND, "<html><body>404 Not Found: unknown client_id</body></html>").into_response();
    }
    let state = params.get("state").cloned();
    let target = match (params.get("redirect_uri"), &inner.registered_callback) {
        (Some(given), Some(registered)) if !redirect_uri_allowed(registered, given) => {
            let mut url = Url::parse(registered).expect("registered callback");
            url.query_pairs_mut()
                .append_pair("error", "redirect_uri_mismatch")
                .append_pair("error_description", "The redirect_uri MUST match the registered callback URL for this application.")
                .append_pair(
                    "error_uri",
                    &format!("{DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"),
                );
            if let Some(state) = &state {
                url.query_pairs_mut().append_pair("state", state);
            }
            return redirect(url.as_str());
        }
        (Some(given), _) => given.clone(),
        (None, Some(registered)) => registered.clone(),
        (None, None) => {
            return (StatusCode::BAD_REQUEST, "no redirect_uri and no registered callback").into_response();
        }
    };
    let Ok(mut back) = Url::parse(&target) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let challenge = params.get("code_challenge").cloned();
    if challenge.is_some() && params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        back.query_pairs_mut()
            .append_pair("error", "invalid_request")
            .append_pair("error_description", "code_challenge_method must be S256");
        if let Some(state) = &state {
            back.query_pairs_mut().append_pair("state", state);
        }
        return redirect(back.as_str());
    }
    let Some(login) = inner.current.clone() else {
        return (StatusCode::OK, "<html><body>Sign in to GitHub (no user chosen by the test)</body></html>")
            .into_response();
    };
    let code = hex_token(10);
    let scopes = params
        .get("scope")
        .map(|s| s.split([' ', ',']).filter(|x| !x.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let client_id = inner.client_id.clone();
    inner.grants.insert(
        code.clone(),
        Grant {
            login,
            client_id,
            redirect_uri: params.get("redirect_uri").cloned(),
            scopes,
            code_challenge: challenge,
        },
    );
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &state {
        back.query_pairs_mut().append_pair("state", state);
    }
    redirect(back.as_str())
}

fn hex_token(bytes: usize) -> String {
    let raw = URL_SAFE_NO_PAD.decode(random_token(bytes)).expect("b64");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_error(error: &str, accept_json: bool) -> Response {
    let (description, anchor) = match error {
        "incorrect_client_credentials" => {
            ("The client_id and/or client_secret passed are incorrect.", "incorrect-client-credentials")
        }
        "redirect_uri_mismatch" => {
            ("The redirect_uri MUST match the registered callback URL for this application.", "redirect-uri-mismatch2")
        }
        "unverified_user_email" => ("The user must have a verified primary email.", "unverified-user-email"),
        _ => ("The code passed is incorrect or expired.", "bad-verification-code"),
    };
    let uri =
        format!("{DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{anchor}");
    token_answer(&[("error", error), ("error_description", description), ("error_uri", &uri)], accept_json)
}

/// GitHub answers JSON only when asked; form encoding is the default.
fn token_answer(fields: &[(&str, &str)], accept_json: bool) -> Response {
    if accept_json {
        let map: serde_json::Map<String, Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
        github_json(StatusCode::OK, Value::Object(map))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut resp = (StatusCode::OK, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        resp
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

async fn access_token(State(s): State<Shared>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let accept_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("application/json"));
    // GitHub reads the parameters from the body or the query string.
    let mut form: BTreeMap<String, String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend(url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    let mut inner = s.lock();
    inner.token_requests.push(form.clone());
    if let Some(error) = inner.forced_token_error.clone() {
        return token_error(&error, accept_json);
    }
    // The documented way is `client_id`/`client_secret` parameters; GitHub
    // also accepts HTTP Basic (RFC 6749 §2.3.1), which OAuth libraries use.
    let (client_id, client_secret) = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => basic_credentials(&headers).unwrap_or_default(),
    };
    if client_id != inner.client_id || client_secret != inner.client_secret {
        return token_error("incorrect_client_credentials", accept_json);
    }
    let Some(grant) = form.get("code").and_then(|code| inner.grants.remove(code)) else {
        return token_error("bad_verification_code", accept_json);
    };
    if grant.client_id != client_id {
        return token_error("bad_verification_code", accept_json);
    }
    if let Some(given) = form.get("redirect_uri")
        && grant.redirect_uri.as_deref().is_some_and(|r| r != given)
    {
        return token_error("redirect_uri_mismatch", accept_json);
    }
    if let Some(challenge) = &grant.code_challenge {
        let ok = form
            .get("code_verifier")
            .is_some_and(|verifier| URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge);
        if !ok {
            return token_error("bad_verification_code", accept_json);
        }
    }
    let token = format!("gho_{}", random_token(27).replace(['-', '_'], "x"));
    let scope = grant.scopes.join(",");
    inner.tokens.insert(token.clone(), Issued { login: grant.login, scopes: grant.scopes });
    inner.issued.push(token.clone());
    token_answer(&[("access_token", &token), ("scope", &scope), ("token_type", "bearer")], accept_json)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")).then(|| token.trim().to_owned())
}

fn has_scope(scopes: &[String], any_of: &[&str]) -> bool {
    scopes.iter().any(|s| any_of.contains(&s.as_str()))
}

fn failure_body(status: u16) -> Value {
    let message = match status {
        401 => "Bad credentials",
        403 => "Resource not accessible by integration",
        404 => "Not Found",
        429 => "API rate limit exceeded",
        502 => "Server Error",
        503 => "Service Unavailable",
        _ => "Server Error",
    };
    json!({"message": message, "documentation_url": format!("{DOCS}/rest"), "status": status.to_string()})
}

async fn api_user(State(s): State<Shared>, headers: HeaderMap, query: RawQuery) -> Response {
    api(&s, &headers, query, Endpoint::User)
}

async fn api_emails(State(s): State<Shared>, headers: HeaderMap, query: RawQuery) -> Response {
    api(&s, &headers, query, Endpoint::Emails)
}

async fn api_orgs(State(s): State<Shared>, headers: HeaderMap, query: RawQuery) -> Response {
    api(&s, &headers, query, Endpoint::Orgs)
}

async fn api_teams(State(s): State<Shared>, headers: HeaderMap, query: RawQuery) -> Response {
    api(&s, &headers, query, Endpoint::Teams)
}

fn api(s: &Shared, headers: &HeaderMap, RawQuery(query): RawQuery, endpoint: Endpoint) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.clone().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let per_page = get("per_page").and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(30).min(100);
    let page = get("page").and_then(|v| v.parse::<u32>().ok()).filter(|n| *n > 0).unwrap_or(1);
    let path_and_query = match &query {
        Some(q) => format!("{API_PREFIX}{}?{q}", endpoint.path()),
        None => format!("{API_PREFIX}{}", endpoint.path()),
    };
    let mut inner = s.lock();
    let mut record = ApiRequest { endpoint: Some(endpoint), path_and_query, status: 200, page, per_page };
    let resp = api_inner(s, &mut inner, headers, &pairs, endpoint, page, per_page);
    record.status = resp.status().as_u16();
    inner.api_requests.push(record);
    resp
}

#[allow(clippy::too_many_arguments)]
fn api_inner(
    s: &Shared,
    inner: &mut Inner,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    endpoint: Endpoint,
    page: u32,
    per_page: usize,
) -> Response {
    if headers.get(header::USER_AGENT).is_none_or(|v| v.as_bytes().is_empty()) {
        // "All API requests must include a valid User-Agent header."
        let body = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header \
                    (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
                    Check https://developer.github.com for other possible causes.";
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    let Some(token) = bearer(headers) else {
        return github_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication", "documentation_url": format!("{DOCS}/rest/users/users#get-the-authenticated-user"), "status": "401"}),
        );
    };
    let Some(issued) = inner.tokens.get(&token) else {
        return github_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": format!("{DOCS}/rest"), "status": "401"}),
        );
    };
    let scopes = issued.scopes.clone();
    let Some(user) = inner.users.get(&issued.login).cloned() else {
        return not_found_sync();
    };
    let accepted: &[&str] = match endpoint {
        Endpoint::User => &[],
        Endpoint::Emails => &["user", "user:email"],
        Endpoint::Orgs | Endpoint::Teams => &["user", "read:org", "write:org", "admin:org", "repo"],
    };
    let scope_headers = |mut resp: Response| {
        let h = resp.headers_mut();
        h.insert("x-oauth-scopes", HeaderValue::from_str(&scopes.join(", ")).expect("scopes"));
        h.insert("x-accepted-oauth-scopes", HeaderValue::from_str(&accepted.join(", ")).expect("scopes"));
        resp
    };
    if !accepted.is_empty() && !has_scope(&scopes, accepted) {
        // Endpoints that need a scope the token lacks answer 403 (orgs,
        // teams) or 404 (emails, which hides the resource).
        let status = if endpoint == Endpoint::Emails { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN };
        return scope_headers(github_json(status, failure_body(status.as_u16())));
    }
    if let Some(failure) = user.failures.get(&endpoint)
        && failure.page.is_none_or(|p| p == page)
    {
        let status = StatusCode::from_u16(failure.status).expect("status");
        return scope_headers(github_json(status, failure_body(failure.status)));
    }
    let base = &s.base;
    let items: Vec<Value> = match endpoint {
        Endpoint::User => return scope_headers(github_json(StatusCode::OK, user_json(base, &user))),
        Endpoint::Emails => user
            .emails
            .iter()
            .map(
                |e| json!({"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}),
            )
            .collect(),
        Endpoint::Orgs => user.orgs.iter().map(|o| org_json(base, o)).collect(),
        Endpoint::Teams => user.teams.iter().enumerate().map(|(i, t)| team_json(base, i, t)).collect(),
    };
    scope_headers(paginate(base, endpoint, pairs, items, page, per_page))
}

fn not_found_sync() -> Response {
    github_json(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": format!("{DOCS}/rest"), "status": "404"}),
    )
}

/// One page of `items` with GitHub's `Link` header.
fn paginate(
    base: &str,
    endpoint: Endpoint,
    pairs: &[(String, String)],
    items: Vec<Value>,
    page: u32,
    per_page: usize,
) -> Response {
    let total = items.len();
    let last = total.div_ceil(per_page).max(1) as u32;
    let start = (page as usize - 1).saturating_mul(per_page);
    let slice: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let mut resp = github_json(StatusCode::OK, Value::Array(slice));
    if last > 1 || page > 1 {
        let link_to = |p: u32| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs.iter().filter(|(k, _)| k != "page") {
                q.append_pair(k, v);
            }
            q.append_pair("page", &p.to_string());
            format!("<{base}{API_PREFIX}{}?{}>", endpoint.path(), q.finish())
        };
        let mut links = vec![];
        if page > 1 {
            links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
            links.push(format!("{}; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("{}; rel=\"first\"", link_to(1)));
        }
        resp.headers_mut().insert(header::LINK, HeaderValue::from_str(&links.join(", ")).expect("link"));
    }
    resp
}

fn user_json(base: &str, u: &User) -> Value {
    let api = format!("{base}{API_PREFIX}");
    json!({
        "login": u.login,
        "id": u.id,
        "node_id": format!("MDQ6VXNlcj{}", u.id),
        "avatar_url": format!("{base}/avatars/u/{}?v=4", u.id),
        "gravatar_id": "",
        "url": format!("{api}/users/{}", u.login),
        "html_url": format!("{base}/{}", u.login),
        "followers_url": format!("{api}/users/{}/followers", u.login),
        "organizations_url": format!("{api}/users/{}/orgs", u.login),
        "repos_url": format!("{api}/users/{}/repos", u.login),
        "type": "User",
        "site_admin": false,
        "name": u.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": u.public_email,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 2,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2024-01-22T12:00:00Z",
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "two_factor_authentication": true
    })
}

fn org_id(login: &str) -> u64 {
    login.bytes().fold(7u64, |acc, b| acc.wrapping_mul(131).wrapping_add(u64::from(b))) % 100_000_000 + 1
}

fn org_json(base: &str, login: &str) -> Value {
    let api = format!("{base}{API_PREFIX}");
    json!({
        "login": login,
        "id": org_id(login),
        "node_id": format!("MDEyOk9yZ2FuaXphdGlvbj{}", org_id(login)),
        "url": format!("{api}/orgs/{login}"),
        "repos_url": format!("{api}/orgs/{login}/repos"),
        "events_url": format!("{api}/orgs/{login}/events"),
        "hooks_url": format!("{api}/orgs/{login}/hooks"),
        "issues_url": format!("{api}/orgs/{login}/issues"),
        "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{api}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": format!("{base}/avatars/o/{}?v=4", org_id(login)),
        "description": format!("The {login} organization")
    })
}

fn team_json(base: &str, index: usize, t: &Team) -> Value {
    let api = format!("{base}{API_PREFIX}");
    let id = org_id(&t.org) * 1000 + index as u64;
    let mut org = org_json(base, &t.org);
    let extra = json!({
        "name": format!("{} Inc.", t.org),
        "company": null,
        "blog": "",
        "location": null,
        "email": null,
        "is_verified": false,
        "has_organization_projects": true,
        "has_repository_projects": true,
        "public_repos": 1,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": format!("{base}/{}", t.org),
        "created_at": "2012-02-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "type": "Organization"
    });
    if let (Some(o), Some(e)) = (org.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({
        "id": id,
        "node_id": format!("MDQ6VGVhbT{id}"),
        "url": format!("{api}/teams/{id}"),
        "html_url": format!("{base}/orgs/{}/teams/{}", t.org, t.slug),
        "name": t.name,
        "slug": t.slug,
        "description": "A team",
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": format!("{api}/teams/{id}/members{{/member}}"),
        "repositories_url": format!("{api}/teams/{id}/repos"),
        "parent": null,
        "members_count": 3,
        "repos_count": 10,
        "created_at": "2017-07-14T16:53:42Z",
        "updated_at": "2017-08-17T12:37:15Z",
        "organization": org
    })
}

/// Parses an RFC 8288 (RFC 5988) `Link` header into `rel → URL`.
pub fn parse_link_header(value: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let Some(url) =
            pieces.next().map(str::trim).and_then(|u| u.strip_prefix('<')).and_then(|u| u.strip_suffix('>'))
        else {
            continue;
        };
        for p in pieces {
            if let Some(rel) = p.trim().strip_prefix("rel=") {
                out.insert(rel.trim_matches('"').to_owned(), url.to_owned());
            }
        }
    }
    out
}
