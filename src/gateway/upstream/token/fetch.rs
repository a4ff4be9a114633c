//! One `client_credentials` request (RFC 6749 §4.4) and what its answer
//! means. Nothing here logs: errors carry no body, no secret, no URL query.

use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use url::Url;

use super::TokenError;
use crate::contract::routes::TokenAuthConfig;
use crate::gateway::providers::http::read_limited;

/// Overall time one token request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Form parameters the grant sets itself; `params` cannot replace them.
const RESERVED: [&str; 6] = ["grant_type", "client_id", "client_secret", "scope", "audience", "resource"];

/// A token endpoint and the request to send it, prepared once.
pub(super) struct Endpoint {
    http: reqwest::Client,
    url: Url,
    /// `Basic …` of the form-urlencoded client ID and secret, marked
    /// sensitive.
    basic: HeaderValue,
    form: String,
    /// `host[:port]` of the token URL: how logs and metrics name it.
    pub(super) host: String,
}

/// A token the endpoint issued.
pub(super) struct Fetched {
    /// `Bearer <token>`, marked sensitive.
    pub(super) value: HeaderValue,
    /// `expires_in`, when the endpoint sent a usable one.
    pub(super) expires_in: Option<u64>,
}

impl Endpoint {
    /// Checks `config` and prepares the request. Does no I/O.
    pub(super) fn new(config: &TokenAuthConfig) -> Result<Self, TokenError> {
        let config_error = |m: String| TokenError::Config(m);
        let url = config.token_url.clone();
        if !crate::idp::is_secure_url(url.as_str()) {
            return Err(config_error("tokenUrl must be https:// (http:// only to a loopback host)".into()));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(config_error("tokenUrl has no host".into())),
        };
        if let Some(name) = config.params.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(config_error(format!("params cannot set {name:?}; the grant sets it")));
        }
        let tls = config.tls.clone().unwrap_or_default();
        if tls.client_cert_pem.is_some() || tls.client_key_pem.is_some() || tls.insecure_skip_verify {
            return Err(config_error(
                "TLS towards a token endpoint takes a CA bundle only (no client certificate, no insecureSkipVerify)"
                    .into(),
            ));
        }
        crate::telemetry::install_crypto_provider();
        let http = crate::idp::client_with_ca(REQUEST_TIMEOUT, tls.ca_pem.as_deref())
            .map_err(|e| config_error(format!("HTTP client for the token endpoint: {}", e.without_url())))?;
        Ok(Self { http, url, basic: basic(&config.client_id, config.client_secret.expose()), form: form(config), host })
    }

    /// Asks for a token. Redirects are not followed (the client refuses
    /// them), bodies are read up to a bound.
    pub(super) async fn fetch(&self) -> Result<Fetched, TokenError> {
        let response = self
            .http
            .post(self.url.clone())
            .header(http::header::AUTHORIZATION, self.basic.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.form.clone())
            .send()
            .await
            .map_err(|e| TokenError::Unreachable(chain(&e.without_url())))?;
        let status = response.status();
        let body = read_limited(response).await.map_err(|e| TokenError::Unreachable(e.to_string()))?;
        parse(status, &body)
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`: RFC 6749 §2.3.1
/// encodes both before HTTP Basic does, which plain Basic auth does not.
fn basic(client_id: &str, secret: &str) -> HeaderValue {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut value = HeaderValue::try_from(format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// The form body: the grant, the space-joined scopes, `audience`,
/// `resource` and the extra parameters, each only when set.
fn form(config: &TokenAuthConfig) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !config.scopes.is_empty() {
        form.append_pair("scope", &config.scopes.join(" "));
    }
    if let Some(audience) = &config.audience {
        form.append_pair("audience", audience);
    }
    if let Some(resource) = &config.resource {
        form.append_pair("resource", resource);
    }
    for (name, value) in &config.params {
        form.append_pair(name, value);
    }
    form.finish()
}

/// A transport error with its causes (`connection refused`, a TLS
/// reason…), which the top-level message of reqwest leaves out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Failure {
    error: String,
}

/// What an answer means. Error messages never quote the body: a broken
/// endpoint may echo the client secret, and a good one holds the token.
pub(super) fn parse(status: StatusCode, body: &[u8]) -> Result<Fetched, TokenError> {
    if !status.is_success() {
        let fallback = if status.is_redirection() { "redirect, not followed" } else { "no OAuth error code" };
        let code = serde_json::from_slice::<Failure>(body).ok().map(|f| f.error).filter(|c| is_error_code(c));
        let code = code.unwrap_or_else(|| fallback.to_owned());
        return Err(TokenError::Refused { status: status.as_u16(), code });
    }
    let Ok(success) = serde_json::from_slice::<Success>(body) else {
        return Err(TokenError::BadResponse("not a JSON object with an access_token"));
    };
    if success.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err(TokenError::BadResponse("token_type is not Bearer"));
    }
    let token = success.access_token;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::BadResponse("access_token is empty or not printable ASCII"));
    }
    let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("Bearer {token}")))
        .map_err(|_| TokenError::BadResponse("access_token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(Fetched { value, expires_in: success.expires_in.as_ref().and_then(seconds) })
}

/// `expires_in` as a number of seconds, or as a string of digits (Azure
/// AD's v1 endpoint sends those). Anything else counts as absent.
fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An OAuth error code as RFC 6749 §5.2 allows them, short: safe to log.
fn is_error_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}
