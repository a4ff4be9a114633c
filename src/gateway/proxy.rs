//! Forwarding to the upstream: a pooled keep-alive hyper client, bodies
//! streamed both ways, WebSocket (and any HTTP/1.1) upgrades tunnelled.
//!
//! Before a request leaves, everything a client could use to impersonate
//! someone is removed, in any letter case and in `_` spelling too (many
//! frameworks map `X_Auth_Request_Email` and `X-Auth-Request-Email` to the
//! same variable): `Authorization`, `X-Auth-Request-*`,
//! `X-Forwarded-{User,Email,Groups,Access-Token,Preferred-Username}`,
//! underscore spellings of the `X-Forwarded-*` headers the gateway sets,
//! hop-by-hop headers, and the gateway's own cookies. Then the gateway's
//! headers are added.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::{BufMut, BytesMut};
use http::header::{AUTHORIZATION, CONNECTION, COOKIE, HOST, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use super::config::ForwardSettings;
use super::session::{CookieSettings, SessionView};

/// `X-Auth-Request-User`.
pub static X_AUTH_REQUEST_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
/// `X-Auth-Request-Email`.
pub static X_AUTH_REQUEST_EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
/// `X-Auth-Request-Groups`.
pub static X_AUTH_REQUEST_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the usual non-standard ones).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connecting to or talking with the upstream failed.
    #[error("upstream request failed: {0}")]
    Upstream(#[from] hyper_util::client::legacy::Error),
    /// The upstream URL plus the request path made no valid URI.
    #[error("cannot build the upstream URI")]
    BadUri,
}

/// What the upstream learns about the user.
pub struct Forwarded<'a> {
    /// The session.
    pub session: &'a SessionView<'a>,
}

/// The upstream and a connection pool to it.
pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    scheme: Scheme,
    authority: Authority,
    /// Upstream path prefix without trailing slash (empty for `/`).
    prefix: String,
    forwarded_proto: HeaderValue,
    forward: ForwardSettings,
}

impl Proxy {
    /// A proxy to `upstream`; `external` is the public URL (for
    /// `X-Forwarded-Proto`).
    pub fn new(upstream: &Url, external: &Url, forward: ForwardSettings) -> std::io::Result<Self> {
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
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_keepalive(Some(Duration::from_secs(60)));
        crate::telemetry::install_crypto_provider();
        let tls = if scheme == Scheme::HTTPS {
            hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?
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
            forwarded_proto: HeaderValue::from_str(external.scheme()).expect("a scheme is a valid header value"),
            forward,
        })
    }

    /// Forwards one request. `user` is `None` for unauthenticated
    /// pass-through. Returns the upstream's response and how long its
    /// headers took.
    pub async fn forward(
        &self,
        request: Request<Body>,
        peer: Option<IpAddr>,
        user: Option<Forwarded<'_>>,
        cookies: &CookieSettings,
    ) -> Result<(Response<Body>, Duration), ProxyError> {
        let (mut parts, body) = request.into_parts();
        let upgrade = is_upgrade(&parts.headers);
        let client_upgrade = if upgrade { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };

        let original_host = parts
            .headers
            .get(HOST)
            .cloned()
            .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        sanitize(&mut parts.headers, cookies, upgrade);
        self.add_forwarding_headers(&mut parts.headers, peer, original_host);
        if let Some(user) = user {
            self.add_identity(&mut parts.headers, user.session);
        }

        let mut upstream = Request::new(body);
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = self.upstream_uri(&parts.uri)?;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = parts.headers;

        let started = Instant::now();
        let mut response = self.client.request(upstream).await?;
        let elapsed = started.elapsed();

        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switched && let Some(client_upgrade) = client_upgrade {
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
        strip_hop_by_hop(&mut parts.headers, switched);
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = parts.status;
        *out.headers_mut() = parts.headers;
        Ok((out, elapsed))
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, ProxyError> {
        let pq = original.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
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

    fn add_forwarding_headers(
        &self,
        headers: &mut HeaderMap,
        peer: Option<IpAddr>,
        original_host: Option<HeaderValue>,
    ) {
        if let Some(ip) = peer {
            let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prior) if !prior.trim().is_empty() => HeaderValue::from_str(&format!("{prior}, {ip}")),
                _ => HeaderValue::from_str(&ip.to_string()),
            };
            if let Ok(value) = value {
                headers.insert(X_FORWARDED_FOR.clone(), value);
            }
        }
        headers.insert(X_FORWARDED_PROTO.clone(), self.forwarded_proto.clone());
        match original_host {
            Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }

    fn add_identity(&self, headers: &mut HeaderMap, session: &SessionView<'_>) {
        if self.forward.identity_headers {
            if let Ok(v) = HeaderValue::from_bytes(session.user.as_bytes()) {
                headers.insert(X_AUTH_REQUEST_USER.clone(), v);
            }
            if let Some(email) = session.email
                && let Ok(v) = HeaderValue::from_bytes(email.as_bytes())
            {
                headers.insert(X_AUTH_REQUEST_EMAIL.clone(), v);
            }
            let groups = session.groups();
            if groups.len() > 0 {
                let mut buf = BytesMut::with_capacity(64);
                for (i, g) in groups.enumerate() {
                    if i > 0 {
                        buf.put_u8(b',');
                    }
                    buf.put_slice(g.as_bytes());
                }
                if let Ok(v) = HeaderValue::from_maybe_shared(buf.freeze()) {
                    headers.insert(X_AUTH_REQUEST_GROUPS.clone(), v);
                }
            }
        }
        if self.forward.access_token {
            let mut buf = BytesMut::with_capacity(7 + session.access_token.len());
            buf.put_slice(b"Bearer ");
            buf.put_slice(session.access_token.as_bytes());
            if let Ok(mut v) = HeaderValue::from_maybe_shared(buf.freeze()) {
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
    }
}

/// Whether the request asks to switch protocols (e.g. WebSocket).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether a client-sent header could impersonate a user or spoof what the
/// gateway itself sets. Header names arrive lower-case.
pub fn is_spoofable(name: &str) -> bool {
    let first = name.as_bytes().first().copied();
    if first != Some(b'x') && first != Some(b'a') {
        return false;
    }
    let underscored = name.contains('_');
    let normalized;
    let name = if underscored {
        normalized = name.replace('_', "-");
        normalized.as_str()
    } else {
        name
    };
    name == "authorization"
        || name.starts_with("x-auth-request-")
        || matches!(
            name,
            "x-forwarded-user"
                | "x-forwarded-email"
                | "x-forwarded-groups"
                | "x-forwarded-access-token"
                | "x-forwarded-preferred-username"
        )
        || (underscored && matches!(name, "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"))
}

/// Removes hop-by-hop headers (keeping `Connection: upgrade` and `Upgrade`
/// for an upgrade), headers named in `Connection`, spoofable identity
/// headers, `Host` (the client sets it from the upstream URI) and the
/// gateway's own cookies.
pub fn sanitize(headers: &mut HeaderMap, cookies: &CookieSettings, upgrade: bool) {
    remove_where(headers, upgrade, |name| name == "host" || is_spoofable(name));
    if headers.contains_key(COOKIE) {
        rewrite_cookies(headers, cookies);
    }
}

/// Removes the gateway's cookies from every `Cookie` header.
fn rewrite_cookies(headers: &mut HeaderMap, cookies: &CookieSettings) {
    let rewritten: Vec<Option<Option<HeaderValue>>> =
        headers.get_all(COOKIE).iter().map(|v| cookies.without_ours(v)).collect();
    if rewritten.iter().all(Option::is_none) {
        return;
    }
    let originals: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    headers.remove(COOKIE);
    for (original, change) in originals.into_iter().zip(rewritten) {
        match change {
            None => {
                headers.append(COOKIE, original);
            }
            Some(Some(kept)) => {
                headers.append(COOKIE, kept);
            }
            Some(None) => {}
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    remove_where(headers, upgrade, |_| false);
}

/// One pass over the header names: removes hop-by-hop headers (keeping
/// `Connection`/`Upgrade` for an upgrade, normalized to
/// `Connection: upgrade`), headers listed in `Connection`, and whatever
/// `also` selects. Allocates only when something is removed.
fn remove_where(headers: &mut HeaderMap, upgrade: bool, also: impl Fn(&str) -> bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        let n = name.as_str();
        let hop = HOP_BY_HOP.contains(&n) && !(upgrade && (n == "connection" || n == "upgrade"));
        if hop || also(n) {
            doomed.push(name.clone());
        }
    }
    if headers.contains_key(CONNECTION) {
        doomed.extend(
            headers
                .get_all(CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
                .filter(|n| !(upgrade && (n == UPGRADE || n == CONNECTION))),
        );
    }
    for name in doomed {
        headers.remove(&name);
    }
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies() -> CookieSettings {
        CookieSettings::new("_ag", None, true, "/", 60)
    }

    #[test]
    fn spoofable_headers_in_every_spelling() {
        for name in [
            "authorization",
            "x-auth-request-user",
            "x-auth-request-email",
            "x_auth_request_email",
            "x-auth_request-groups",
            "x-auth-request-access-token",
            "x-auth-request-preferred-username",
            "x-forwarded-user",
            "x_forwarded_email",
            "x-forwarded-groups",
            "x-forwarded-access-token",
            "x-forwarded-preferred-username",
            "x_forwarded_for",
            "x_forwarded_proto",
            "x_forwarded_host",
        ] {
            assert!(is_spoofable(name), "{name}");
        }
        for name in
            ["accept", "x-forwarded-for", "x-request-id", "x-auth-requestx", "cookie", "content-type", "authorizationx"]
        {
            assert!(!is_spoofable(name), "{name}");
        }
    }

    #[test]
    fn sanitize_removes_identity_hop_by_hop_and_our_cookies() {
        let mut h = HeaderMap::new();
        h.insert("X-Auth-Request-Email", HeaderValue::from_static("ceo@example.com"));
        h.insert(HeaderName::from_static("x_auth_request_email"), HeaderValue::from_static("ceo@example.com"));
        h.insert("x-auth-request-user", HeaderValue::from_static("ceo"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer forged"));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-custom-hop"));
        h.insert("x-custom-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert(HOST, HeaderValue::from_static("app.example.com"));
        h.insert("accept", HeaderValue::from_static("text/html"));
        h.append(COOKIE, HeaderValue::from_static("a=1; _ag=secret; _ag_0=x"));
        h.append(COOKIE, HeaderValue::from_static("_ag_flow_abc=y"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        sanitize(&mut h, &cookies(), false);
        let names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(h.get("accept").unwrap(), "text/html");
        let cookies: Vec<_> = h.get_all(COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn upgrade_keeps_connection_and_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-key", HeaderValue::from_static("k"));
        assert!(is_upgrade(&h));
        sanitize(&mut h, &cookies(), true);
        assert_eq!(h.get(UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(CONNECTION).unwrap(), "upgrade");
        assert!(h.contains_key("sec-websocket-key"));
        let mut plain = HeaderMap::new();
        plain.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!is_upgrade(&plain));
    }

    #[tokio::test]
    async fn identity_and_forwarding_headers() {
        let session = crate::gateway::session::tests::sample();
        let buf = session.encode();
        let view = SessionView::decode(&buf).unwrap();
        let proxy = Proxy::new(
            &Url::parse("http://127.0.0.1:9/base/").unwrap(),
            &Url::parse("https://app.example.com").unwrap(),
            ForwardSettings::default(),
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        proxy.add_forwarding_headers(
            &mut h,
            Some("10.0.0.2".parse().unwrap()),
            Some(HeaderValue::from_static("app.example.com")),
        );
        proxy.add_identity(&mut h, &view);
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 10.0.0.2");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "app.example.com");
        assert_eq!(h.get(&X_AUTH_REQUEST_USER).unwrap(), "alice@example.com");
        assert_eq!(h.get(&X_AUTH_REQUEST_EMAIL).unwrap(), "alice@example.com");
        assert_eq!(h.get(&X_AUTH_REQUEST_GROUPS).unwrap(), "sre,dev");
        assert_eq!(h.get(AUTHORIZATION).unwrap(), "Bearer at");
        assert_eq!(proxy.upstream_uri(&Uri::from_static("/x/y?z=1")).unwrap(), "http://127.0.0.1:9/base/x/y?z=1");

        let quiet = Proxy::new(
            &Url::parse("http://127.0.0.1:9").unwrap(),
            &Url::parse("http://127.0.0.1:8").unwrap(),
            ForwardSettings { access_token: false, identity_headers: false },
        )
        .unwrap();
        let mut h = HeaderMap::new();
        quiet.add_identity(&mut h, &view);
        assert!(h.is_empty());
        assert_eq!(quiet.upstream_uri(&Uri::from_static("/x?z=1")).unwrap(), "http://127.0.0.1:9/x?z=1");
    }
}
