//! The route table: which upstream serves a request path.

use url::Url;

use super::Proxy;
use crate::gateway::config::GatewayConfig;

/// One upstream, serving every path under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix, starting with `/`, matched on whole segments: `/api`
    /// serves `/api` and `/api/x` but not `/apix`. `/` serves everything.
    pub prefix: String,
    /// Where requests on this route are forwarded.
    pub upstream: Url,
}

/// Routes by path prefix, longest first. A table either has a route at
/// `/`, so every path has exactly one, or is empty (a gateway that serves
/// forward-auth only).
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The table of a policy with one upstream for every path, or none.
    pub fn single(upstream: Option<Url>) -> Self {
        Self { routes: upstream.into_iter().map(|upstream| Route { prefix: "/".into(), upstream }).collect() }
    }

    /// Every route, in the order [`RouteTable::select`] tries them; the
    /// index of a route here is what `select` returns.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The index of the route that serves `path`, if any does.
    pub fn select(&self, path: &str) -> Option<usize> {
        self.routes.iter().position(|r| serves(&r.prefix, path))
    }
}

/// One serving thread's connection pools, one per route.
pub struct Upstreams {
    table: RouteTable,
    proxies: Vec<Proxy>,
}

impl Upstreams {
    /// Pools for every route of `table`, with the policy's forwarding
    /// settings and timeouts.
    pub fn new(table: &RouteTable, config: &GatewayConfig) -> std::io::Result<Self> {
        let proxies = table
            .routes()
            .iter()
            .map(|r| Proxy::new(&r.upstream, &config.external_url, config.forward.clone(), config.timeouts))
            .collect::<std::io::Result<_>>()?;
        Ok(Self { table: table.clone(), proxies })
    }

    /// The pool of the route that serves `path`, if any does.
    pub fn for_path(&self, path: &str) -> Option<&Proxy> {
        self.table.select(path).map(|i| &self.proxies[i])
    }
}

fn serves(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn one_route_serves_every_path() {
        let table = RouteTable::single(Some(url("http://app:8080")));
        for path in ["/", "/x", "/oauth2x", "/a/b?c"] {
            assert_eq!(table.select(path), Some(0), "{path}");
        }
        assert_eq!(table.routes()[0].upstream, url("http://app:8080"));
        assert_eq!(RouteTable::single(None).select("/x"), None, "forward-auth only: no route");
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(serves("/api", "/api"));
        assert!(serves("/api", "/api/v1"));
        assert!(serves("/api/", "/api/v1"));
        assert!(!serves("/api", "/apix"));
        assert!(!serves("/api", "/"));
        assert!(serves("/", "/anything"));
    }
}
