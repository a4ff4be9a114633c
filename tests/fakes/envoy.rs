//! Envoy's HTTP `ext_authz` filter, as its documentation describes it, in
//! front of an upstream. (No Envoy build is available here.)
//!
//! For each client request the filter sends the authorization service a
//! check request:
//! - to `path_prefix` + the original path and query, with the original
//!   method and the original `:authority` as `Host`;
//! - with no body (`with_request_body` unset, so `Content-Length: 0`);
//! - with the headers `allowed_headers` matches, plus `Authorization`,
//!   which is always sent. `Cookie` is not sent unless allowed: Envoy
//!   Gateway's `headersToExtAuth` must name it.
//!
//! A `200 OK` allows the request: the headers `allowed_upstream_headers`
//! names are copied (replacing) onto the request sent upstream, and those
//! of `allowed_client_headers_on_success` onto the response. Any other
//! status denies: the client gets that status and body, with the headers
//! `allowed_client_headers` names.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::common::serve::{TaskGuard, bind, spawn_server};

/// What the filter is configured with.
pub struct Config {
    /// `http_service.server_uri`: where the authorization service is.
    pub authz: String,
    /// `http_service.path_prefix`.
    pub path_prefix: String,
    /// Where allowed requests go.
    pub upstream: String,
    /// `authorization_request.allowed_headers` (exact, lower case).
    pub allowed_headers: Vec<&'static str>,
    /// `authorization_response.allowed_upstream_headers`.
    pub allowed_upstream_headers: Vec<&'static str>,
    /// `authorization_response.allowed_client_headers` (on denial).
    pub allowed_client_headers: Vec<&'static str>,
    /// `authorization_response.allowed_client_headers_on_success`.
    pub allowed_client_headers_on_success: Vec<&'static str>,
}

/// The filter, listening on a loopback port.
pub struct ExtAuthz {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _server: TaskGuard,
}

struct Filter {
    config: Config,
    http: reqwest::Client,
}

impl ExtAuthz {
    /// Binds first, so `configure` can name the filter's own address (the
    /// gateway's external URL).
    pub async fn start(configure: impl FnOnce(&str) -> Config) -> Self {
        let (listener, addr) = bind().await;
        let base = format!("http://{addr}");
        let config = configure(&base);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let filter = Arc::new(Filter { config, http });
        let router = Router::new().fallback(handle).with_state(filter);
        Self { base, _server: spawn_server(listener, router) }
    }

    /// An absolute URL on the filter.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }
}

fn pick(from: &HeaderMap, names: &[&str], into: &mut HeaderMap) {
    for name in names {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        if from.contains_key(&name) {
            into.remove(&name);
            for v in from.get_all(&name) {
                into.append(name.clone(), v.clone());
            }
        }
    }
}

async fn handle(State(filter): State<Arc<Filter>>, request: Request) -> Response {
    let c = &filter.config;
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    let mut check_headers = HeaderMap::new();
    let mut always = vec!["authorization"];
    always.extend(&c.allowed_headers);
    pick(&parts.headers, &always, &mut check_headers);
    check_headers.insert(header::HOST, parts.headers.get(header::HOST).cloned().unwrap());
    check_headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    let check = filter
        .http
        .request(parts.method.clone(), format!("{}{}{target}", c.authz, c.path_prefix))
        .headers(check_headers)
        .send()
        .await;
    let Ok(check) = check else {
        // `failure_mode_allow` unset: an unreachable service denies.
        return StatusCode::FORBIDDEN.into_response();
    };
    if check.status() != StatusCode::OK {
        let status = check.status();
        let mut headers = HeaderMap::new();
        pick(check.headers(), &c.allowed_client_headers, &mut headers);
        let body = check.bytes().await.unwrap_or_default();
        return (status, headers, body).into_response();
    }
    let mut upstream_headers = parts.headers.clone();
    pick(check.headers(), &c.allowed_upstream_headers, &mut upstream_headers);
    let mut on_success = HeaderMap::new();
    pick(check.headers(), &c.allowed_client_headers_on_success, &mut on_success);
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let upstream = filter
        .http
        .request(parts.method, format!("{}{target}", c.upstream.trim_end_matches('/')))
        .headers(upstream_headers)
        .body(body)
        .send()
        .await
        .expect("upstream");
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONTENT_LENGTH);
    for (k, v) in &on_success {
        headers.append(k.clone(), v.clone());
    }
    let body = upstream.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
