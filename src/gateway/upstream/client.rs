//! Forwarding to the upstream: a pooled keep-alive hyper client, bodies
//! streamed both ways, WebSocket upgrades tunnelled (and no other protocol:
//! see [`headers::is_websocket_upgrade`]).
//!
//! Before a request leaves, [`headers::sanitize`] removes everything a
//! client could use to impersonate someone or spoof where it came from;
//! then the gateway's own forwarding and identity headers are added.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::header::UPGRADE;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use super::headers::{self, Forwarding};
use super::identity::{IdentityHeaders, UserToken, Who, add_identity};
use super::routes::{Credentials, Route};
use super::tls;
use super::token::TokenError;
use crate::gateway::config::ForwardSettings;
use crate::gateway::session::{CookieSettings, SessionView};

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connecting to or talking with the upstream failed.
    #[error("upstream request failed: {0}")]
    Upstream(#[from] hyper_util::client::legacy::Error),
    /// The upstream sent no response headers in time.
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The client's request body broke off or was malformed: the client's
    /// fault, not the upstream's.
    #[error("the request body could not be read")]
    ClientBody,
    /// The upstream switched protocols when that was not asked for, or to
    /// something other than a WebSocket.
    #[error("the upstream switched to a protocol that was not requested")]
    UnexpectedUpgrade,
    /// The upstream URL plus the request path made no valid URI.
    #[error("cannot build the upstream URI")]
    BadUri,
    /// The route's `client_credentials` token could not be obtained.
    #[error("no token for the upstream: {0}")]
    Token(#[from] TokenError),
}

impl ProxyError {
    /// The error and its causes, `: `-joined, for the log: hyper's own
    /// message (`client error (Connect)`) hides why, e.g. an unknown issuer.
    /// Transport errors carry no header or body, so no secret.
    pub fn detail(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            let text = e.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            source = e.source();
        }
        out
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::ClientBody => StatusCode::BAD_REQUEST,
            Self::Upstream(_) | Self::UnexpectedUpgrade | Self::BadUri | Self::Token(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

/// What the upstream learns about the caller.
#[derive(Clone, Copy)]
pub enum Forwarded<'a> {
    /// A signed-in user's session: identity headers and, when forwarded,
    /// the access (or ID) token come from it.
    Session(&'a SessionView<'a>),
    /// A machine caller: identity headers from its identity, and only a
    /// trusted issuer's JWT is ever sent on as its token.
    Machine(&'a crate::gateway::authn::MachineCaller),
}

/// The upstream and a connection pool to it.
pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    scheme: Scheme,
    authority: Authority,
    /// Upstream path prefix without trailing slash (empty for `/`).
    prefix: String,
    /// The route's prefix, removed before forwarding (`stripPrefix`).
    strip: Option<String>,
    forwarding: Forwarding,
    forward: ForwardSettings,
    identity: IdentityHeaders,
    /// Which of the user's tokens goes upstream on this route.
    user_token: UserToken,
    credentials: Credentials,
    timeout: Duration,
}

impl Proxy {
    /// A proxy for `route`; `external` is the public URL (for the
    /// `X-Forwarded-*` headers).
    pub fn new(route: &Route, external: &Url, forward: ForwardSettings) -> std::io::Result<Self> {
        let upstream = &route.upstream;
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("upstream URL {what}"));
        let scheme = match upstream.scheme() {
            "http" => Scheme::HTTP,
            "https" => Scheme::HTTPS,
            _ => return Err(invalid("must be http:// or https://")),
        };
        let host = upstream.host_str().ok_or_else(|| invalid("has no host"))?;
        let authority = match upstream.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority = Authority::try_from(authority).map_err(|_| invalid("has an invalid host"))?;
        let forwarding = Forwarding::new(external, &forward.trusted_proxies)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(route.connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        crate::telemetry::install_crypto_provider();
        let tls = if scheme == Scheme::HTTPS {
            let config = tls::client_config(route.tls.as_ref())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        } else {
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Ok(Self {
            client,
            scheme,
            authority,
            prefix: upstream.path().trim_end_matches('/').to_owned(),
            strip: (route.strip_prefix && !route.prefix.is_empty()).then(|| route.prefix.clone()),
            forwarding,
            identity: IdentityHeaders::new(forward.header_names.as_ref())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            user_token: UserToken::new(forward.id_token, route.forward_access_token),
            forward,
            credentials: route.credentials.clone(),
            timeout: route.timeout,
        })
    }

    /// Forwards one request from `peer`. `user` is `None` for
    /// unauthenticated pass-through. Returns the upstream's response and how
    /// long its headers took.
    pub async fn forward(
        &self,
        request: Request<Body>,
        peer: IpAddr,
        user: Option<Forwarded<'_>>,
        cookies: &CookieSettings,
    ) -> Result<(Response<Body>, Duration), ProxyError> {
        let (mut parts, body) = request.into_parts();
        let upgrade = headers::is_websocket_upgrade(&parts.headers);
        let client_upgrade = if upgrade { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };

        let chain = self.forwarding.trusted_chain(&parts.headers, peer);
        // `preserveHost`: the client's own Host (HTTP/2: its authority).
        let host = if self.forward.preserve_host {
            parts
                .headers
                .get(http::header::HOST)
                .cloned()
                .or_else(|| parts.uri.authority().and_then(|a| http::HeaderValue::from_str(a.as_str()).ok()))
        } else {
            None
        };
        headers::sanitize(&mut parts.headers, cookies, self.identity.custom(), upgrade);
        self.forwarding.apply(&mut parts.headers, peer, chain);
        if let Some(host) = host {
            parts.headers.insert(http::header::HOST, host);
        }
        if let Some(user) = user {
            let (who, token) = match user {
                Forwarded::Session(view) => (Who::session(view), self.user_token.of(view)),
                Forwarded::Machine(caller) => (
                    Who::identity(&caller.principal.identity),
                    caller.upstream_token.as_deref().filter(|_| self.user_token != UserToken::Neither),
                ),
            };
            add_identity(&mut parts.headers, &self.identity, &who, self.forward.identity_headers, token);
        }
        for (name, value) in &self.credentials.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
        if let Some(token) = &self.credentials.token {
            parts.headers.insert(http::header::AUTHORIZATION, token.authorization().await?);
        }

        // A body that breaks off is the client's doing: remember it, so the
        // failure is not blamed on the upstream.
        // Only requests with a body pay for the flag.
        let (body, client_failed) = if http_body::Body::size_hint(&body).exact() == Some(0) {
            (body, None)
        } else {
            let flag = Arc::new(AtomicBool::new(false));
            let set = flag.clone();
            let body = Body::new(body.map_err(move |e| {
                set.store(true, Ordering::Relaxed);
                e
            }));
            (body, Some(flag))
        };

        let mut upstream = Request::new(body);
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = self.upstream_uri(&parts.uri)?;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = parts.headers;

        let started = Instant::now();
        let mut response = match tokio::time::timeout(self.timeout, self.client.request(upstream)).await {
            Err(_) => return Err(ProxyError::Timeout(self.timeout)),
            Ok(Err(_)) if client_failed.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) => {
                return Err(ProxyError::ClientBody);
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(response)) => response,
        };
        let elapsed = started.elapsed();

        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switched {
            let to_websocket =
                response.headers().get(UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
            let Some(client_upgrade) = client_upgrade.filter(|_| to_websocket) else {
                return Err(ProxyError::UnexpectedUpgrade);
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                            tracing::debug!(error = %e, "upgraded connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, switched);
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = parts.status;
        *out.headers_mut() = parts.headers;
        Ok((out, elapsed))
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, ProxyError> {
        let mut pq = original.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let Some(strip) = &self.strip {
            // The route matched, so the path starts with its prefix on a
            // segment boundary.
            let rest = &pq.as_str()[strip.len().min(pq.path().len())..];
            let rest = if rest.starts_with('/') { rest.to_owned() } else { format!("/{rest}") };
            pq = PathAndQuery::try_from(rest).map_err(|_| ProxyError::BadUri)?;
        }
        let pq = if self.prefix.is_empty() {
            pq
        } else {
            PathAndQuery::try_from(format!("{}{}", self.prefix, pq.as_str())).map_err(|_| ProxyError::BadUri)?
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(pq);
        Uri::from_parts(parts).map_err(|_| ProxyError::BadUri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(upstream: &str, routes: &str) -> Proxy {
        let config = crate::gateway::config::GatewayConfig::from_yaml(&format!(
            "externalUrl: https://app.example.com\nupstream: {upstream}\nproviders: []\nsession: {{cookieName: _a, ttlSeconds: 60, keys: []}}\nroutes: {routes}\n"
        ))
        .unwrap();
        let table = super::super::RouteTable::new(&config).unwrap();
        Proxy::new(&table.routes()[0], &config.external_url, ForwardSettings::default()).unwrap()
    }

    #[test]
    fn upstream_uri_keeps_the_base_path() {
        let based = proxy("http://127.0.0.1:9/base/", "[]");
        assert_eq!(based.upstream_uri(&Uri::from_static("/x/y?z=1")).unwrap(), "http://127.0.0.1:9/base/x/y?z=1");
        let root = proxy("http://127.0.0.1:9", "[]");
        assert_eq!(root.upstream_uri(&Uri::from_static("/x?z=1")).unwrap(), "http://127.0.0.1:9/x?z=1");
    }

    #[test]
    fn strip_prefix_removes_the_route_prefix_only() {
        let routes = "[{pathPrefix: /github/, upstream: 'http://127.0.0.1:9/base', stripPrefix: true}]";
        let gh = proxy("http://127.0.0.1:8", routes);
        assert_eq!(
            gh.upstream_uri(&Uri::from_static("/github/repos?a=1")).unwrap(),
            "http://127.0.0.1:9/base/repos?a=1"
        );
        assert_eq!(gh.upstream_uri(&Uri::from_static("/github")).unwrap(), "http://127.0.0.1:9/base/");
        assert_eq!(gh.upstream_uri(&Uri::from_static("/github?x")).unwrap(), "http://127.0.0.1:9/base/?x");
        let kept = proxy("http://127.0.0.1:8", "[{pathPrefix: /api, upstream: 'http://127.0.0.1:9'}]");
        assert_eq!(kept.upstream_uri(&Uri::from_static("/api/v1")).unwrap(), "http://127.0.0.1:9/api/v1");
    }

    #[test]
    fn client_faults_are_not_upstream_faults() {
        assert_eq!(ProxyError::ClientBody.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ProxyError::Timeout(Duration::from_secs(1)).status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ProxyError::UnexpectedUpgrade.status(), StatusCode::BAD_GATEWAY);
    }
}
