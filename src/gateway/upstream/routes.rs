//! The route table: which upstream serves a request, and what the route
//! injects on its way there.
//!
//! Paths are matched after [`crate::gateway::request_target::check`] has
//! refused dot segments (raw or encoded) and merged repeated slashes, so a
//! path means the same thing here as at every upstream: `/api/../admin`,
//! `/api/%2e%2e/admin` and `/api%2f..%2fadmin` never reach this table, and
//! `//admin` arrives as `/admin`.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use url::Url;

use super::Proxy;
use super::token::TokenSource;
use crate::access::prefix_serves as serves;
use crate::contract::routes::{RouteConfig, TlsConfig};
use crate::gateway::config::GatewayConfig;
use crate::gateway::cors::CorsPolicy;

/// One upstream, serving every path under `prefix`.
#[derive(Clone)]
pub struct Route {
    /// Path prefix without a trailing slash (empty for `/`), matched on
    /// whole segments: `/api` serves `/api` and `/api/x` but not `/apix`.
    pub prefix: String,
    /// Methods that take this route; empty: every method.
    pub methods: Vec<Method>,
    /// Forward without the prefix.
    pub strip_prefix: bool,
    /// Where requests on this route are forwarded.
    pub upstream: Url,
    /// TLS towards the upstream.
    pub tls: Option<TlsConfig>,
    /// Response-header timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// What the route adds to each request.
    pub credentials: Credentials,
    /// Whether the user's own access token goes upstream.
    pub forward_access_token: bool,
    /// CORS answers on this route.
    pub cors: Option<Arc<CorsPolicy>>,
}

/// Credentials a route injects. They replace whatever the client sent
/// under the same names (the client's `Authorization` is stripped anyway).
#[derive(Clone, Default)]
pub struct Credentials {
    /// Headers with values from Secrets, marked sensitive.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A `client_credentials` token, shared by every serving thread.
    pub token: Option<Arc<TokenSource>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Credentials").field("headers", &names).field("token", &self.token.is_some()).finish()
    }
}

impl Credentials {
    /// Whether there is anything to inject.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.token.is_none()
    }
}

/// Routes by path prefix, longest first, then the policy's upstream at
/// `/`. Empty for a gateway that serves forward-auth only.
#[derive(Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The table of `config`: its routes, longest prefix first, and its
    /// upstream (if any) for everything else.
    pub fn new(config: &GatewayConfig) -> Result<Self, String> {
        let mut routes = config.routes.iter().map(|r| route(r, config)).collect::<Result<Vec<_>, String>>()?;
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        if let Some(upstream) = &config.upstream {
            routes.push(Route {
                prefix: String::new(),
                methods: Vec::new(),
                strip_prefix: false,
                upstream: upstream.clone(),
                tls: config.upstream_tls.clone(),
                timeout: seconds(None, config.timeouts.upstream_seconds),
                connect_timeout: seconds(None, config.timeouts.connect_seconds),
                credentials: Credentials::default(),
                forward_access_token: config.forward.access_token || config.forward.id_token,
                cors: cors(config.cors.as_ref())?,
            });
        }
        Ok(Self { routes })
    }

    /// Every route, in the order [`RouteTable::select`] tries them; the
    /// index of a route here is what `select` returns.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The index of the route that serves `method` on `path`, if any does:
    /// the longest prefix whose methods include `method`.
    pub fn select(&self, method: &Method, path: &str) -> Option<usize> {
        self.routes.iter().position(|r| serves(&r.prefix, path) && (r.methods.is_empty() || r.methods.contains(method)))
    }
}

fn route(r: &RouteConfig, config: &GatewayConfig) -> Result<Route, String> {
    // Checked by `contract::validate::check`: starts with '/', no dot or
    // empty segment.
    let prefix = r.path_prefix.trim_end_matches('/').to_owned();
    let methods = r
        .methods
        .iter()
        .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| format!("route {prefix:?}: {m:?} is not a method")))
        .collect::<Result<_, _>>()?;
    let headers = r
        .headers
        .iter()
        .map(|h| {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("route {prefix:?}: {:?} is not a header name", h.name))?;
            // The value is a secret: never in the message.
            let mut value = HeaderValue::from_str(h.value.expose())
                .map_err(|_| format!("route {prefix:?}: the value of header {name} is not a valid header value"))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect::<Result<_, String>>()?;
    let token = r
        .token_auth
        .as_ref()
        .map(|t| TokenSource::new(t).map(Arc::new).map_err(|e| format!("route {prefix:?}: tokenAuth: {e}")))
        .transpose()?;
    Ok(Route {
        forward_access_token: r.forwards_access_token(config.forward.access_token || config.forward.id_token),
        prefix,
        methods,
        strip_prefix: r.strip_prefix,
        upstream: r.upstream.clone(),
        tls: r.tls.clone(),
        timeout: seconds(r.timeout_seconds, config.timeouts.upstream_seconds),
        connect_timeout: seconds(r.connect_timeout_seconds, config.timeouts.connect_seconds),
        credentials: Credentials { headers, token },
        cors: cors(r.cors.as_ref().or(config.cors.as_ref()))?,
    })
}

fn cors(cors: Option<&crate::api::Cors>) -> Result<Option<Arc<CorsPolicy>>, String> {
    cors.map(|c| CorsPolicy::new(c).map(Arc::new)).transpose()
}

/// A timeout of `s` seconds, else `default`; never zero.
fn seconds(s: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(s.unwrap_or(default).max(1))
}

/// One serving thread's connection pools, one per route.
pub struct Upstreams {
    table: RouteTable,
    proxies: Vec<Proxy>,
}

impl Upstreams {
    /// Pools for every route of `table`, with the policy's forwarding
    /// settings.
    pub fn new(table: &RouteTable, config: &GatewayConfig) -> std::io::Result<Self> {
        let proxies = table
            .routes()
            .iter()
            .map(|r| Proxy::new(r, &config.external_url, config.forward.clone()))
            .collect::<std::io::Result<_>>()?;
        Ok(Self { table: table.clone(), proxies })
    }

    /// The route that serves `method` on `path`, and its pool, if any does.
    pub fn select(&self, method: &Method, path: &str) -> Option<(&Route, &Proxy)> {
        self.table.select(method, path).map(|i| (&self.table.routes[i], &self.proxies[i]))
    }
}

#[cfg(test)]
mod tests;
