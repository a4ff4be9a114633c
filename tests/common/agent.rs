//! An HTTP client with a cookie jar that behaves like a browser for the
//! sign-in flow (without running one): it follows the gateway and OP
//! redirects by hand and submits the OP's login form.
//!
//! Cookies are kept by name. The OP and the gateway both listen on
//! 127.0.0.1 (browsers do not separate cookies by port), but in production
//! they are different hosts; so a cookie is sent only to the port that set
//! it (or everywhere, if a test put it in the jar by hand). Otherwise a
//! large chunked session would be sent to the OP too.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use url::Url;

/// What the client says it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// A browser navigating.
    Html,
    /// An API client.
    Json,
}

impl Accept {
    fn value(self) -> &'static str {
        match self {
            Self::Html => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Self::Json => "application/json",
        }
    }
}

/// A response, read fully.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: String,
    /// The URL that was requested.
    pub url: Url,
}

impl Reply {
    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Url> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|l| self.url.join(l).ok())
    }

    /// The raw `Location` header.
    pub fn raw_location(&self) -> Option<String> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Parsed `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<cookie::Cookie<'static>> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie::Cookie::parse(v.to_owned()).ok())
            .collect()
    }

    /// `Set-Cookie` headers that establish (not clear) a session cookie of
    /// the test gateways ([`COOKIE_NAME`](super::gateway::COOKIE_NAME) or a
    /// chunk of it).
    pub fn session_cookies_set(&self) -> Vec<cookie::Cookie<'static>> {
        self.set_cookies()
            .into_iter()
            .filter(|c| is_session_cookie(c.name(), super::gateway::COOKIE_NAME) && !is_removal(c))
            .collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Status, URL, headers and the start of the body, for a failing
    /// test's message.
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

/// Whether `cookie` is the session cookie `name` itself or one of its
/// chunks (`NAME_0`, and also `NAME.1` or `NAME-2`, so that a test looking
/// for "no session" misses no spelling of a chunk).
pub fn is_session_cookie(cookie: &str, name: &str) -> bool {
    match cookie.strip_prefix(name) {
        Some("") => true,
        Some(rest) => {
            let digits = rest.trim_start_matches(['_', '.', '-']);
            rest.len() > digits.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Whether a `Set-Cookie` clears its cookie: an empty value, a
/// non-positive `Max-Age` or an `Expires` in the past.
pub fn is_removal(c: &cookie::Cookie<'_>) -> bool {
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

/// A client with a cookie jar.
pub struct Agent {
    http: reqwest::Client,
    /// Cookies by name.
    pub jar: BTreeMap<String, String>,
    /// Port of the server that set each cookie.
    origins: BTreeMap<String, u16>,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent {
    /// A client that does not follow redirects.
    pub fn new() -> Self {
        super::init();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { http, jar: BTreeMap::new(), origins: BTreeMap::new() }
    }

    /// The underlying client (no cookies are sent by it on its own).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The `Cookie` header value for the jar, if any.
    pub fn cookie_header(&self) -> Option<String> {
        self.cookie_header_for(None)
    }

    /// The `Cookie` header value for a request to `port`.
    pub fn cookie_header_for(&self, port: Option<u16>) -> Option<String> {
        let pairs: Vec<String> = self
            .jar
            .iter()
            .filter(|(k, _)| port.is_none() || self.origins.get(*k).is_none_or(|o| Some(*o) == port))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The jar: cookie name → value.
    pub fn cookies(&self) -> &BTreeMap<String, String> {
        &self.jar
    }

    /// Names of the gateway's session cookies in the jar (see
    /// [`is_session_cookie`]).
    pub fn session_cookies(&self, name: &str) -> Vec<String> {
        self.jar.keys().filter(|k| is_session_cookie(k, name)).cloned().collect()
    }

    /// Whether the jar holds a session cookie (or chunk) of the test
    /// gateways' [`COOKIE_NAME`](super::gateway::COOKIE_NAME).
    pub fn has_session_cookie(&self) -> bool {
        !self.session_cookies(super::gateway::COOKIE_NAME).is_empty()
    }

    /// Sends a request with the jar's cookies plus `headers`; stores the
    /// cookies the response sets.
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        accept: Accept,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let url = Url::parse(url).expect("absolute URL");
        let mut req = self.http.request(method, url.clone()).header("accept", accept.value());
        if let Some(c) = self.cookie_header_for(url.port()) {
            req = req.header(COOKIE, c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        let reply = Reply { status, headers, body, url };
        self.store(&reply);
        reply
    }

    /// GET with the jar.
    pub async fn get(&mut self, url: &str, accept: Accept) -> Reply {
        self.send(Method::GET, url, accept, &[], None).await
    }

    fn store(&mut self, reply: &Reply) {
        for c in reply.set_cookies() {
            if is_removal(&c) {
                self.jar.remove(c.name());
                self.origins.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
                if let Some(port) = reply.url.port() {
                    self.origins.insert(c.name().to_owned(), port);
                }
            }
        }
    }

    /// From a URL that leads (via redirects) to the OP, through the login
    /// form (signing in as `user` if the OP asks), up to the redirect back
    /// to a gateway callback. Returns the callback URL, not yet requested.
    pub async fn follow_to_callback(&mut self, start: &str, user: &str) -> Url {
        let mut url = Url::parse(start).unwrap();
        for _ in 0..12 {
            if url.path().ends_with("/oauth2/callback") {
                return url;
            }
            let reply = self.get(url.as_str(), Accept::Html).await;
            if reply.status.is_redirection() {
                url = reply.location().expect("redirect with Location");
                continue;
            }
            assert_eq!(reply.status, StatusCode::OK, "unexpected reply from {}: {}", reply.url, reply.body);
            let action =
                form_action(&reply.body).unwrap_or_else(|| panic!("no login form at {}: {}", reply.url, reply.body));
            let action = reply.url.join(&action).unwrap();
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in hidden_inputs(&reply.body) {
                form.append_pair(&name, &value);
            }
            form.append_pair("login", user).append_pair("password", "anything");
            let form = form.finish();
            let posted = self
                .send(
                    Method::POST,
                    action.as_str(),
                    Accept::Html,
                    &[("content-type", "application/x-www-form-urlencoded")],
                    Some(form.into_bytes()),
                )
                .await;
            assert!(posted.status.is_redirection(), "login form post: {} {}", posted.status, posted.body);
            url = posted.location().unwrap();
        }
        panic!("no callback reached from {start}");
    }

    /// Signs in through the gateway: `/oauth2/start?rd=…`, the OP, the
    /// callback. Returns the callback's reply (a redirect to `rd` on
    /// success).
    pub async fn sign_in(&mut self, gateway: &super::Gateway, user: &str, rd: &str) -> Reply {
        let mut start = Url::parse(&gateway.url("/oauth2/start")).unwrap();
        start.query_pairs_mut().append_pair("rd", rd);
        let callback = self.follow_to_callback(start.as_str(), user).await;
        self.get(callback.as_str(), Accept::Html).await
    }
}

/// `(name, value)` of the hidden inputs of the first form in a page.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let Some(start) = html.find("<form") else {
        return Vec::new();
    };
    let form = &html[start..html[start..].find("</form>").map_or(html.len(), |e| start + e)];
    form.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let attr = |name: &str| {
                let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
                Some(tag[at..at + tag[at..].find('"')?].replace("&amp;", "&"))
            };
            (attr("type").as_deref() == Some("hidden"))
                .then(|| Some((attr("name")?, attr("value").unwrap_or_default())))
                .flatten()
        })
        .collect()
}

/// The `action` of the first form in a page.
pub fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + 8;
    let end = form[start..].find('"')?;
    Some(form[start..start + end].replace("&amp;", "&"))
}
