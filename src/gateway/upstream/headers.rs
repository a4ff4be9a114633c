//! What the upstream may believe about a request: every header a client
//! could use to pose as someone (or as somewhere) is removed, then the
//! gateway sets its own.
//!
//! **Removed, in every spelling** (letter case, `_` and `.` for `-`, since
//! many frameworks map `X_Auth_Request_Email`, `X.Auth.Request.Email` and
//! `X-Auth-Request-Email` to the same variable):
//! - identity headers of this gateway and of the proxies upstreams are
//!   commonly configured to trust: `Authorization`, `X-Auth-Request-*`,
//!   `X-Forwarded-*`, `Remote-User`, `X-Remote-*`, `X-WEBAUTH-*`,
//!   `X-Auth-User`, `X-Authenticated-*`, `X-Pomerium-*`, `X-Vouch-*`,
//!   `X-Goog-Authenticated-*`, `X-Amzn-Oidc-*`, `X-MS-Client-Principal*`;
//! - forwarding headers: `Forwarded`, `X-Real-IP`, `X-Client-IP`,
//!   `True-Client-IP`, `X-Original-URL`/`-URI`/`-Method`/`-Host`,
//!   `X-Rewrite-URL`;
//! - hop-by-hop headers and the headers `Connection` names.
//!
//! **Set by the gateway**: `X-Forwarded-For` (the connection's peer,
//! appended to the client's chain only when the peer is a trusted proxy),
//! `X-Real-IP` (the client as far as trusted proxies vouch),
//! `X-Forwarded-Host`/`-Proto`/`-Port` (from the external URL, never from the
//! client's `Host`), and the identity headers of the session.

use std::net::IpAddr;

use bytes::BytesMut;
use http::header::{CONNECTION, COOKIE, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use url::Url;

use crate::gateway::session::CookieSettings;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

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

/// Exact names (after spelling normalization) that are never forwarded.
const EXACT: [&str; 24] = [
    "authorization",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-original-method",
    "x-original-host",
    "x-rewrite-url",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
    "x-auth-user",
    "x-auth-email",
    "x-auth-groups",
    "x-auth-username",
    "x-user",
    "x-username",
    "x-email",
    "x-user-email",
    "x-user-id",
];

/// Name prefixes (after spelling normalization) that are never forwarded.
const PREFIXES: [&str; 11] = [
    "x-auth-request-",
    "x-forwarded-",
    "x-remote-",
    "x-webauth-",
    "x-authenticated-",
    "x-pomerium-",
    "x-vouch-",
    "x-goog-authenticated-",
    "x-amzn-oidc-",
    "x-ms-client-principal",
    "x-original-forwarded-",
];

/// Whether a client-sent header could impersonate a user or spoof what the
/// gateway itself sets. Header names arrive lower-case.
pub fn is_spoofable(name: &str) -> bool {
    if !matches!(name.as_bytes().first(), Some(b'x' | b'a' | b'f' | b'r' | b't')) {
        return false;
    }
    if name.bytes().any(|b| b == b'_' || b == b'.') {
        let normalized: String = name.chars().map(|c| if c == '_' || c == '.' { '-' } else { c }).collect();
        return listed(&normalized);
    }
    listed(name)
}

fn listed(name: &str) -> bool {
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether the request asks to become a WebSocket, the only protocol the
/// gateway tunnels. After a `101` the bytes bypass every check here, so any
/// other `Upgrade` (`h2c`, `TLS/1.2`, …) is dropped with the other hop-by-hop
/// headers and the request is forwarded as plain HTTP/1.1.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(UPGRADE).iter();
    let websocket =
        matches!((values.next(), values.next()), (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    websocket
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers (keeping `Connection: upgrade` and `Upgrade`
/// for a WebSocket upgrade), headers named in `Connection`, spoofable
/// identity and forwarding headers, the names in `also` (identity header
/// names the policy chose), `Host` (the client sets it from the
/// upstream URI) and the gateway's own cookies; several `Cookie` fields
/// (HTTP/2 sends one per cookie) become one, as RFC 9113 §8.2.3 requires
/// before forwarding over HTTP/1.1.
pub fn sanitize(headers: &mut HeaderMap, cookies: &CookieSettings, also: &[HeaderName], upgrade: bool) {
    remove_where(headers, upgrade, |name| {
        name == "host" || is_spoofable(name) || (!also.is_empty() && also.iter().any(|n| n == name))
    });
    if headers.contains_key(COOKIE) {
        rewrite_cookies(headers, cookies);
    }
}

/// Removes the gateway's cookies and joins what is left into one field.
fn rewrite_cookies(headers: &mut HeaderMap, cookies: &CookieSettings) {
    let mut fields = headers.get_all(COOKIE).iter();
    let single = matches!((fields.next(), fields.next()), (Some(_), None));
    let value = headers.get(COOKIE).expect("checked by the caller");
    if single && !cookies.has_ours(value.as_bytes()) {
        return;
    }
    let mut kept = BytesMut::new();
    for value in headers.get_all(COOKIE) {
        cookies.append_foreign(value.as_bytes(), &mut kept);
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_maybe_shared(kept.freeze())
    {
        headers.insert(COOKIE, v);
    }
}

/// Removes hop-by-hop headers from a response (keeping the upgrade pair of
/// a switched WebSocket).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
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

/// The forwarding headers the gateway sets, computed once from the external
/// URL and the trusted proxies.
#[derive(Debug, Clone)]
pub struct Forwarding {
    proto: HeaderValue,
    host: HeaderValue,
    port: HeaderValue,
    trusted: Vec<IpNet>,
}

impl Forwarding {
    /// From the external URL and the trusted proxy ranges (CIDR).
    pub fn new(external: &Url, trusted_proxies: &[String]) -> Result<Self, String> {
        let trusted = trusted_proxies
            .iter()
            .map(|c| {
                c.parse::<IpNet>().map_err(|_| format!("trusted proxy {c:?} is not a CIDR range such as 10.0.0.0/8"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let host = match (external.host_str(), external.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err("externalUrl has no host".into()),
        };
        let port = external.port_or_known_default().unwrap_or(80).to_string();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| format!("externalUrl {v:?} is not header-safe"));
        Ok(Self { proto: value(external.scheme())?, host: value(&host)?, port: value(&port)?, trusted })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's `X-Forwarded-For` chain, if the peer is a trusted proxy
    /// whose word counts. Read it before [`sanitize`] removes it.
    pub fn trusted_chain(&self, headers: &HeaderMap, peer: IpAddr) -> Option<String> {
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return None;
        }
        let mut chain = String::new();
        for v in headers.get_all(&X_FORWARDED_FOR) {
            let v = v.to_str().ok()?.trim();
            if v.is_empty() {
                continue;
            }
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(v);
        }
        (!chain.is_empty()).then_some(chain)
    }

    /// Sets `X-Forwarded-For/-Host/-Proto/-Port` and `X-Real-IP`. `chain`
    /// comes from [`trusted_chain`](Self::trusted_chain).
    pub fn apply(&self, headers: &mut HeaderMap, peer: IpAddr, chain: Option<String>) {
        let peer = canonical_ip(peer);
        let client = match &chain {
            // The right-most address no trusted proxy stands for.
            Some(chain) => chain
                .rsplit(',')
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .map(canonical_ip)
                .find(|ip| !self.is_trusted(*ip))
                .unwrap_or(peer),
            None => peer,
        };
        // Without a trusted chain the client is the peer: one formatted value
        // serves both headers.
        let peer_value = HeaderValue::from_str(&peer.to_string()).expect("an IP address is a valid header value");
        let real_ip = if client == peer { Ok(peer_value.clone()) } else { HeaderValue::from_str(&client.to_string()) };
        let xff = match chain {
            Some(chain) => HeaderValue::from_str(&format!("{chain}, {peer}")),
            None => Ok(peer_value),
        };
        if let Ok(v) = xff {
            headers.insert(X_FORWARDED_FOR.clone(), v);
        }
        if let Ok(v) = real_ip {
            headers.insert(X_REAL_IP.clone(), v);
        }
        headers.insert(X_FORWARDED_PROTO.clone(), self.proto.clone());
        headers.insert(X_FORWARDED_HOST.clone(), self.host.clone());
        headers.insert(X_FORWARDED_PORT.clone(), self.port.clone());
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so `10.0.0.0/8` covers `::ffff:10.1.2.3`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
