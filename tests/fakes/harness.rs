//! Runs the real gateway binary, an echo upstream, and a cookie-keeping
//! HTTP client that walks the login redirects itself.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use authgate::api::AllowList;
use authgate::gateway::config::{
    Authentication, ForwardSettings, GatewayConfig, ProviderConfig, Redacted, SessionConfig,
};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

/// Cookie name used by every gateway these tests start.
pub const COOKIE_NAME: &str = "_authgate_test";

/// Installs the rustls provider reqwest needs. Idempotent.
pub fn init() {
    authgate::telemetry::install_crypto_provider();
}

/// Aborts a spawned server task when dropped.
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `router` on 127.0.0.1 at a free port.
pub async fn serve(router: Router) -> (SocketAddr, TaskGuard) {
    let (listener, addr) = bind().await;
    (addr, spawn_server(listener, router))
}

/// A listener on a free loopback port, for servers that must know their
/// own address before building their routes.
pub async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Serves `router` on `listener` until the guard is dropped.
pub fn spawn_server(listener: tokio::net::TcpListener, router: Router) -> TaskGuard {
    TaskGuard(tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake server");
    }))
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("addr").port()
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A cookie key as the controller writes it: base64 of 64 random bytes.
pub fn random_cookie_key() -> String {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// An upstream that answers every request with what it received, as JSON:
/// `{"method", "path", "query", "headers": {name: [values]}, "body"}`.
pub struct EchoUpstream {
    pub addr: SocketAddr,
    _task: TaskGuard,
}

impl EchoUpstream {
    pub async fn start() -> Self {
        async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, value) in &headers {
                map.entry(name.as_str().to_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            axum::Json(json!({
                "method": method.as_str(),
                "path": uri.path(),
                "query": uri.query(),
                "headers": map,
                "body": String::from_utf8_lossy(&body),
            }))
        }
        let (addr, task) = serve(Router::new().fallback(echo)).await;
        Self { addr, _task: task }
    }

    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("upstream url")
    }
}

/// Values of one header in an echo response (lower-case name).
pub fn echoed_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A gateway config for one provider, listening on `port` of loopback.
pub fn gateway_config(port: u16, upstream: Url, provider: ProviderConfig, access: AllowList) -> GatewayConfig {
    GatewayConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        external_url: Url::parse(&format!("http://127.0.0.1:{port}")).expect("external url"),
        upstream,
        authentication: Authentication::Enabled,
        providers: vec![provider],
        access,
        allow_all_users: false,
        session: SessionConfig {
            cookie_name: COOKIE_NAME.to_owned(),
            cookie_domain: None,
            ttl_seconds: 3600,
            keys: vec![Redacted::new(random_cookie_key())],
        },
        forward: ForwardSettings::default(),
        ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        timeouts: Default::default(),
    }
}

/// Why a gateway did not come up.
#[derive(Debug)]
pub struct StartError {
    pub exited: Option<ExitStatus>,
    pub logs: String,
}

/// The real `authgate gateway` process; killed when dropped.
pub struct Gateway {
    child: Child,
    pub base: Url,
    /// The operations port: `/healthz`, `/readyz`, `/metrics`.
    pub ops: Url,
    pub config: GatewayConfig,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Writes `config` as YAML, starts the binary and waits for `/healthz`.
    /// Panics with the gateway's logs if it does not come up.
    pub async fn start(config: GatewayConfig) -> Self {
        match Self::try_start(config, &[]).await {
            Ok(gw) => gw,
            Err(e) => panic!("gateway did not start (exit {:?}); logs:\n{}", e.exited, e.logs),
        }
    }

    /// Like [`Gateway::start`] with extra environment, returning failures.
    pub async fn try_start(config: GatewayConfig, env: &[(&str, &str)]) -> Result<Self, StartError> {
        init();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, config.to_yaml().expect("render gateway.yaml")).expect("write config");
        let log_path = dir.path().join("gateway.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let ops_port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
        cmd.arg("gateway")
            .arg("--config")
            .arg(&config_path)
            .arg("--ops-listen")
            .arg(format!("127.0.0.1:{ops_port}"))
            .env("AUTHGATE_LOG_FORMAT", "text")
            .env("RUST_LOG", std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "debug".to_owned()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn authgate gateway");
        let base = Url::parse(&format!("http://{}/", config.listen)).expect("gateway base");
        let ops = Url::parse(&format!("http://127.0.0.1:{ops_port}/")).expect("ops base");
        let mut gw = Self { child, base, ops, config, log_path, _dir: dir };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(StartError { exited: Some(status), logs: gw.logs() });
            }
            if let Ok(resp) = client.get(gw.ops.join("healthz").expect("ops url")).send().await
                && resp.status().is_success()
            {
                return Ok(gw);
            }
            if Instant::now() > deadline {
                return Err(StartError { exited: None, logs: gw.logs() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An absolute URL on the gateway.
    pub fn url(&self, path_and_query: &str) -> String {
        self.base.join(path_and_query).expect("gateway url").to_string()
    }

    /// The callback URL registered with providers.
    pub fn callback_url(&self) -> String {
        self.config.callback_url().to_string()
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response, read fully.
#[derive(Debug, Clone)]
pub struct Resp {
    pub url: String,
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> Option<String> {
        self.headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Absolute redirect target, resolved against the request URL.
    pub fn location_url(&self) -> Option<Url> {
        let loc = self.location()?;
        Url::parse(&self.url).ok()?.join(&loc).ok()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    /// Set-Cookie headers that establish (not clear) a session cookie.
    pub fn session_cookies_set(&self) -> Vec<String> {
        self.set_cookies()
            .into_iter()
            .filter(|raw| match cookie::Cookie::parse(raw.clone()) {
                Ok(c) => is_session_cookie_name(c.name()) && !is_removal(&c),
                Err(_) => false,
            })
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn describe(&self) -> String {
        let mut s = format!("{} {}\n", self.status, self.url);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("<binary>")));
        }
        let body: String = self.body.chars().take(2000).collect();
        s.push('\n');
        s.push_str(&body);
        s
    }
}

/// The session cookie itself or one of its chunks (`NAME`, `NAME_0`, `NAME.1`, `NAME-2`).
pub fn is_session_cookie_name(name: &str) -> bool {
    match name.strip_prefix(COOKIE_NAME) {
        Some("") => true,
        Some(rest) => {
            let digits = rest.trim_start_matches(['_', '.', '-']);
            rest.len() > digits.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn is_removal(c: &cookie::Cookie<'_>) -> bool {
    if c.value().is_empty() {
        return true;
    }
    if let Some(age) = c.max_age()
        && age.whole_seconds() <= 0
    {
        return true;
    }
    if let Some(exp) = c.expires_datetime()
        && exp <= cookie::time::OffsetDateTime::now_utc()
    {
        return true;
    }
    false
}

/// What a browser would send in `Accept`.
#[derive(Clone, Copy, Debug)]
pub enum Accept {
    Html,
    Json,
}

/// A browser without a browser: keeps the gateway's cookies, never follows
/// redirects by itself, sends cookies only to the gateway's origin.
pub struct Browser {
    client: reqwest::Client,
    origin: String,
    jar: BTreeMap<String, String>,
}

/// Every hop of one login attempt.
#[derive(Debug)]
pub struct Login {
    pub start: Resp,
    pub authorize: Option<Resp>,
    pub callback: Option<Resp>,
}

impl Login {
    /// The last response of the flow.
    pub fn last(&self) -> &Resp {
        self.callback.as_ref().or(self.authorize.as_ref()).unwrap_or(&self.start)
    }

    pub fn describe(&self) -> String {
        let mut s = format!("--- start\n{}\n", self.start.describe());
        if let Some(a) = &self.authorize {
            s.push_str(&format!("--- authorize\n{}\n", a.describe()));
        }
        if let Some(c) = &self.callback {
            s.push_str(&format!("--- callback\n{}\n", c.describe()));
        }
        s
    }
}

impl Browser {
    pub fn new(gw: &Gateway) -> Self {
        init();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { client, origin: gw.base.origin().ascii_serialization(), jar: BTreeMap::new() }
    }

    pub fn cookies(&self) -> &BTreeMap<String, String> {
        &self.jar
    }

    pub fn has_session_cookie(&self) -> bool {
        self.jar.keys().any(|name| is_session_cookie_name(name))
    }

    /// GET `url`, keeping cookies when it is on the gateway.
    pub async fn get(&mut self, url: &str, accept: Accept) -> Resp {
        self.get_with(url, accept, &[]).await
    }

    /// GET with extra request headers.
    pub async fn get_with(&mut self, url: &str, accept: Accept, extra: &[(&str, &str)]) -> Resp {
        let parsed = Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
        let same_origin = parsed.origin().ascii_serialization() == self.origin;
        let mut req = self.client.get(parsed.clone()).header(
            reqwest::header::ACCEPT,
            match accept {
                Accept::Html => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Accept::Json => "application/json",
            },
        );
        if same_origin && !self.jar.is_empty() {
            let cookie = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req = req.header(reqwest::header::COOKIE, cookie);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let resp = Resp {
            url: url.to_owned(),
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap_or_default(),
        };
        if same_origin {
            for raw in resp.set_cookies() {
                if let Ok(c) = cookie::Cookie::parse(raw) {
                    if is_removal(&c) {
                        self.jar.remove(c.name());
                    } else {
                        self.jar.insert(c.name().to_owned(), c.value().to_owned());
                    }
                }
            }
        }
        resp
    }

    /// `/oauth2/start` → provider's authorize endpoint → `/oauth2/callback`.
    /// Stops at the first hop that is not a redirect.
    pub async fn login(&mut self, gw: &Gateway, provider: &str, rd: &str) -> Login {
        let mut start_url = Url::parse(&gw.url("/oauth2/start")).expect("start url");
        start_url.query_pairs_mut().append_pair("provider", provider).append_pair("rd", rd);
        let start = self.get(start_url.as_str(), Accept::Html).await;
        let Some(authorize_url) = start.location_url().filter(|_| start.status.is_redirection()) else {
            return Login { start, authorize: None, callback: None };
        };
        let authorize = self.get(authorize_url.as_str(), Accept::Html).await;
        let Some(callback_url) = authorize.location_url().filter(|_| authorize.status.is_redirection()) else {
            return Login { start, authorize: Some(authorize), callback: None };
        };
        let callback = self.get(callback_url.as_str(), Accept::Html).await;
        Login { start, authorize: Some(authorize), callback: Some(callback) }
    }
}

/// Query parameters of a URL as a map (last value wins).
pub fn query_map(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Asserts that a login ended without a session: an error status on the
/// callback, no session cookie, and the protected URL still guarded.
pub async fn assert_no_session(gw: &Gateway, browser: &mut Browser, login: &Login, protected: &str) {
    let last = login.last();
    assert!(
        last.status.is_client_error() || last.status.is_server_error(),
        "login must end in an error status, got {}\n{}\nGATEWAY LOGS:\n{}",
        last.status,
        login.describe(),
        gw.logs()
    );
    for hop in [Some(&login.start), login.authorize.as_ref(), login.callback.as_ref()].into_iter().flatten() {
        assert!(
            hop.session_cookies_set().is_empty(),
            "a session cookie was set: {:?}\n{}",
            hop.session_cookies_set(),
            login.describe()
        );
    }
    assert!(!browser.has_session_cookie(), "browser holds a session cookie: {:?}", browser.cookies());
    assert_guarded(gw, browser, protected).await;
}

/// The protected URL answers 401 to an API client and redirects a browser
/// to sign in: the upstream is never reached.
pub async fn assert_guarded(gw: &Gateway, browser: &mut Browser, protected: &str) {
    let api = browser.get(&gw.url(protected), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "API client without session:\n{}", api.describe());
    let page = browser.get(&gw.url(protected), Accept::Html).await;
    assert!(page.status.is_redirection(), "browser without session must be redirected:\n{}", page.describe());
    let to = page.location_url().expect("redirect target");
    assert!(to.path().starts_with("/oauth2/"), "browser without session must be sent to sign in, went to {to}");
}

/// Asserts a login succeeded: the callback redirects to `rd` and sets a
/// session cookie; then fetches `rd` through the gateway and returns the
/// upstream's echo.
pub async fn assert_logged_in(gw: &Gateway, browser: &mut Browser, login: &Login, rd: &str) -> Value {
    let callback = login
        .callback
        .as_ref()
        .unwrap_or_else(|| panic!("login stopped early\n{}\nGATEWAY LOGS:\n{}", login.describe(), gw.logs()));
    assert!(
        callback.status.is_redirection(),
        "callback must redirect to rd\n{}\nGATEWAY LOGS:\n{}",
        login.describe(),
        gw.logs()
    );
    let to = callback.location_url().expect("callback redirect");
    assert_eq!(to.as_str(), gw.url(rd), "callback must land on rd\n{}\nGATEWAY LOGS:\n{}", login.describe(), gw.logs());
    assert!(
        browser.has_session_cookie(),
        "no session cookie after login: {:?}\n{}",
        browser.cookies(),
        login.describe()
    );
    let page = browser.get(&gw.url(rd), Accept::Html).await;
    assert_eq!(page.status, StatusCode::OK, "upstream via session:\n{}\nGATEWAY LOGS:\n{}", page.describe(), gw.logs());
    let echo = page.json();
    assert_eq!(echo["path"], Url::parse(&gw.url(rd)).unwrap().path(), "upstream saw another path");
    echo
}

/// Provider config shared by the tests; URLs are filled in by callers.
#[allow(clippy::too_many_arguments)]
pub fn provider(
    name: &str,
    provider_type: authgate::gateway::config::ProviderType,
    client_id: &str,
    client_secret: &str,
    authorize_url: Url,
    token_url: Url,
    scopes: &[&str],
    filters: AllowList,
) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        provider_type,
        client_id: client_id.to_owned(),
        client_secret: Redacted::new(client_secret),
        issuer_url: None,
        authorize_url,
        token_url,
        userinfo_url: None,
        jwks_url: None,
        api_url: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        claims: Default::default(),
        filters,
    }
}
