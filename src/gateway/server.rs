//! The gateway's shared state: validated config, keys, providers, cookie
//! settings and metrics, and the helpers every handler uses.
//!
//! `/oauth2/*` (under the external URL's path) runs the login flow
//! ([`routes::login`]) and the session endpoints ([`routes::session`]);
//! every other request is proxied ([`routes::proxy`]) — with a valid session,
//! or without one when authentication is disabled. `/healthz`, `/readyz` and
//! `/metrics` are served by [`routes::ops`] on a port of their own,
//! so the public port never shows metrics and never shadows the upstream's
//! paths of those names.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::authn::api_token::ApiTokenAuthenticator;
use super::authn::bearer::BearerAuthenticator;
use super::authn::device::DeviceAuthenticator;
use super::authn::session::Ended;
use super::authn::{self, Authn, Link, SessionAuthenticator};
use super::coalescer::RefreshCoalescer;
use super::config::{Authentication, GatewayConfig};
use super::error::Error;
use super::metrics::Metrics;
use super::pages;
use super::providers::{HttpClient, Provider};
use super::session::revocations::{Logouts, Revocations};
use super::session::{CookieSettings, CookieStore, Keyring, RedisSessions, RedisStore, Sessions};
use super::upstream::identity::IdentityHeaders;
use super::upstream::{RouteTable, Upstreams};
use crate::access::{self, Denial, Principal, safe_redirect};
use crate::api::AllowList;

/// Most login attempts (flow cookies) a browser may have open at once, for
/// several tabs signing in together; starting another drops the oldest.
pub const MAX_FLOWS: usize = 4;

/// Paths of the gateway's own endpoints, under the external URL's path.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `…/oauth2/start`.
    pub start: String,
    /// `…/oauth2/callback`.
    pub callback: String,
    /// `…/oauth2/sign_out`.
    pub sign_out: String,
    /// `…/oauth2/userinfo`.
    pub userinfo: String,
    /// `…/oauth2/auth`: forward-auth for nginx `auth_request`.
    pub auth: String,
    /// `…/oauth2/verify`: forward-auth that sends browsers to sign in.
    pub verify: String,
    /// `…/oauth2/ext_authz`: the path prefix of Envoy's `ext_authz`.
    pub ext_authz: String,
    /// The external URL's path, with a trailing slash: the default `rd`.
    pub home: String,
}

impl Paths {
    fn new(external: &Url) -> Self {
        let base = external.path().trim_end_matches('/');
        Self {
            start: format!("{base}/oauth2/start"),
            callback: format!("{base}/oauth2/callback"),
            sign_out: format!("{base}/oauth2/sign_out"),
            userinfo: format!("{base}/oauth2/userinfo"),
            auth: format!("{base}/oauth2/auth"),
            verify: format!("{base}/oauth2/verify"),
            ext_authz: format!("{base}/oauth2/ext_authz"),
            home: format!("{base}/"),
        }
    }
}

/// What outlives a config reload: metrics, refreshes in flight and the
/// back-channel logouts received. Clones share them.
#[derive(Clone, Default)]
pub struct Shared {
    /// The gateway's metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// One refresh per session at a time.
    pub(crate) refreshes: Arc<RefreshCoalescer>,
    /// Back-channel logouts received.
    pub(crate) logouts: Arc<Logouts>,
    /// Pending device grants, when kept in memory (the cookie store).
    pub(crate) device: Arc<super::device::MemoryStore>,
}

/// Everything the handlers share, for one config. Read-only once built
/// except for atomics (metrics) and the refresh coalescer, which only the
/// refresh path touches; a reload builds a new one around the same
/// [`Shared`] state.
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) paths: Paths,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) cookies: CookieSettings,
    pub(crate) providers: Vec<Provider>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) refreshes: Arc<RefreshCoalescer>,
    pub(crate) logouts: Arc<Logouts>,
    /// Pending device grants in memory (see [`Shared`]).
    pub(crate) device: Arc<super::device::MemoryStore>,
    /// `notBefore` and SessionRevocations, indexed.
    pub(crate) revocations: Revocations,
    /// This config's verdicts on sessions validated before it.
    pub(crate) verdicts: super::revalidate::verdicts::Verdicts,
    pub(crate) routes: RouteTable,
    /// Paths served without sign-in, without trailing slashes.
    pub(crate) public_paths: Vec<String>,
    /// The identity header names of the policy.
    pub(crate) identity: IdentityHeaders,
    /// The proxies that may ask forward-auth questions; `None` when the
    /// policy serves no forward-auth.
    pub(crate) forward_auth: Option<Vec<ipnet::IpNet>>,
    /// With `store: Redis`: its keys and (lazy) connection.
    pub(crate) redis: Option<RedisSessions>,
    /// The machine-caller authenticators of this config.
    pub(crate) machine: MachineAuthenticators,
}

/// The authenticators after the session cookie, built once per config.
pub struct MachineAuthenticators {
    pub(crate) bearer: BearerAuthenticator,
    pub(crate) api_tokens: ApiTokenAuthenticator,
    pub(crate) device: DeviceAuthenticator,
}

impl MachineAuthenticators {
    fn new(config: &GatewayConfig) -> Result<Self, Error> {
        let machine = &config.machine;
        Ok(Self {
            bearer: BearerAuthenticator::new(&machine.bearer, &machine.api_tokens)
                .map_err(|e| Error::Config(format!("machine.bearer: {e}")))?,
            api_tokens: ApiTokenAuthenticator::new(machine),
            device: DeviceAuthenticator::new(&config.session, machine.device_flow.is_some()),
        })
    }
}

impl Gateway {
    /// Validates the config and prepares keys, providers and the upstream
    /// client. Does no network I/O (see [`Gateway::warm_up`]).
    pub fn new(config: GatewayConfig) -> Result<Self, Error> {
        Self::with_shared(config, Shared::default())
    }

    /// [`Gateway::new`] around state that outlives a reload.
    pub fn with_shared(config: GatewayConfig, shared: Shared) -> Result<Self, Error> {
        let enabled = config.authentication == Authentication::Enabled;
        let keyring = match (enabled, config.session.keys.is_empty()) {
            (true, _) | (false, false) => Some(Keyring::new(&config.session.keys)?),
            (false, true) => None,
        };
        // Routes, upstream URLs, trusted proxies and TLS material first, so
        // a bad bundle is reported as precisely as the TLS layer can (which
        // PEM problem); then the checks the controller runs too.
        let routes = RouteTable::new(&config).map_err(Error::Config)?;
        Upstreams::new(&routes, &config).map_err(|e| Error::Config(e.to_string()))?;
        crate::contract::validate::check(&config).map_err(Error::Config)?;
        let external = &config.external_url;
        if !matches!(external.scheme(), "http" | "https") {
            return Err(Error::Config("externalUrl must be http:// or https://".into()));
        }
        let secure = !(external.scheme() == "http" && crate::idp::is_loopback(external));
        if external.scheme() == "http" && secure {
            tracing::warn!(
                "externalUrl is plain http on a non-loopback host; cookies are marked Secure and browsers will not send them"
            );
        }
        let name = &config.session.cookie_name;
        if (name.starts_with("__Host-") || name.starts_with("__Secure-")) && external.scheme() != "https" {
            return Err(Error::Config(format!("a cookie name starting with {name:.7}… needs an https:// externalUrl")));
        }
        if name.starts_with("__Host-") && config.session.cookie_domain.is_some() {
            return Err(Error::Config("a __Host- cookie cannot have a cookie domain".into()));
        }
        let cookies = CookieSettings::new(
            &config.session.cookie_name,
            config.session.cookie_domain.as_deref(),
            secure,
            external.path(),
            config.session.ttl_seconds,
        );
        let http = HttpClient::new().map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let redirect = config.callback_url();
        let providers = config
            .providers
            .iter()
            .map(|p| {
                Provider::new(p.clone(), &redirect, &http)
                    .map_err(|source| Error::ProviderSetup { name: p.name.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for r in routes.routes() {
            super::upstream::tls::warn_if_insecure(&r.prefix, &r.upstream, r.tls.as_ref());
        }
        // Checked by `validate::check` above.
        let forward_auth = config
            .forward_auth
            .as_ref()
            .map(|f| f.trusted_proxies.iter().filter_map(|c| c.parse().ok()).collect::<Vec<ipnet::IpNet>>());
        let identity = IdentityHeaders::new(config.forward.header_names.as_ref()).map_err(Error::Config)?;
        Ok(Self {
            public_paths: config.public_paths.iter().map(|p| p.trim_end_matches('/').to_owned()).collect(),
            identity,
            forward_auth,
            routes,
            paths: Paths::new(external),
            keyring,
            cookies,
            providers,
            metrics: shared.metrics,
            refreshes: shared.refreshes,
            logouts: shared.logouts,
            device: shared.device,
            revocations: Revocations::new(&config.session),
            verdicts: super::revalidate::verdicts::Verdicts::default(),
            redis: redis_sessions(&config)?,
            machine: MachineAuthenticators::new(&config)?,
            config,
        })
    }

    /// Fetches provider keys ahead of the first login.
    pub async fn warm_up(&self) {
        futures::future::join_all(self.providers.iter().map(Provider::warm_up)).await;
    }

    /// Connection pools to the upstreams. Each serving thread gets its
    /// own, so a request and its upstream connection stay on one thread.
    pub fn new_upstreams(&self) -> std::io::Result<Upstreams> {
        Upstreams::new(&self.routes, &self.config)
    }

    /// Whether `path` (normalized, without its query) is a public path.
    pub(crate) fn is_public(&self, path: &str) -> bool {
        self.public_paths.iter().any(|p| access::prefix_serves(p, path))
    }

    pub(crate) fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        self.keyring.as_ref().expect("authentication enabled implies a keyring")
    }

    /// Where this gateway keeps sessions.
    pub(crate) fn sessions(&self) -> Sessions<'_> {
        match &self.redis {
            None => Sessions::Cookie(CookieStore::new(self.keyring(), &self.cookies)),
            Some(sessions) => Sessions::Redis(RedisStore {
                sessions,
                keyring: self.keyring(),
                cookies: &self.cookies,
                metrics: &self.metrics,
            }),
        }
    }

    /// The state that outlives a reload, to build the next config around.
    pub fn shared(&self) -> Shared {
        Shared {
            metrics: self.metrics.clone(),
            refreshes: self.refreshes.clone(),
            logouts: self.logouts.clone(),
            device: self.device.clone(),
        }
    }

    /// What ends sessions besides expiry, for the authenticators.
    pub(crate) fn ended(&self) -> Ended<'_> {
        Ended { revocations: &self.revocations, logouts: &self.logouts, metrics: &self.metrics }
    }

    /// Who is calling: the authenticator chain over a request's headers.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap, now: u64) -> Authn {
        let chain = [
            Link::Session(SessionAuthenticator::with_revocations(self.sessions(), self.ended())),
            Link::Bearer(&self.machine.bearer),
            Link::ApiToken(&self.machine.api_tokens),
            Link::Device(&self.machine.device),
        ];
        authn::authenticate(&chain, headers, now).await
    }

    pub(crate) fn start_href(&self, provider: Option<&str>, rd: Option<&str>, prompt: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = provider {
            q.append_pair("provider", p);
        }
        if let Some(rd) = rd {
            q.append_pair("rd", rd);
        }
        if let Some(prompt) = prompt {
            q.append_pair("prompt", prompt);
        }
        let q = q.finish();
        if q.is_empty() { self.paths.start.clone() } else { format!("{}?{q}", self.paths.start) }
    }

    /// `rd` if it is a safe post-login target, else the external URL's path.
    pub(crate) fn validated_rd(&self, rd: Option<&str>) -> String {
        rd.and_then(|rd| safe_redirect(rd, &self.config.external_url)).unwrap_or_else(|| self.paths.home.clone())
    }

    /// The one authorization decision: `principal`, vouched for by
    /// `provider`, must pass the provider's allow-list and the policy's.
    pub(crate) fn authorize(&self, provider: &Provider, principal: &Principal) -> Result<(), Denial> {
        access::authorize(principal, [&provider.config().filters, &self.config.access])
    }

    /// The single email domain both allow-lists leave for `provider`, if
    /// exactly one exact domain is named: a hint for its account chooser.
    pub(crate) fn domain_hint<'a>(&'a self, provider: &'a Provider) -> Option<&'a str> {
        AllowList::single_domain([&provider.config().filters, &self.config.access])
    }

    pub(crate) fn error_page(&self, e: &Error) -> Response {
        let retry = self.start_href(None, None, None);
        let another = || self.start_href(None, None, Some("login"));
        match e {
            Error::Denied(_) => pages::denied(&self.look(), &e.user_message(), None, &another()),
            Error::DeniedAs(d) => {
                let provider =
                    self.provider(&d.provider).map_or_else(|| d.provider.clone(), |p| p.config().shown_name());
                let who = pages::Who { user: &d.user, provider: &provider };
                pages::denied(&self.look(), &e.user_message(), Some(who), &another())
            }
            _ => pages::error(&self.look(), e.status(), &e.user_message(), &retry),
        }
    }

    /// The service and its branding, for the pages.
    pub(crate) fn look(&self) -> pages::Look<'_> {
        pages::Look {
            service: self.config.service_name.as_deref(),
            host: self.config.external_url.host_str(),
            branding: self.config.branding.as_ref(),
        }
    }
}

/// The Redis sessions `config` asks for (no I/O: the connection is made by
/// the first request that needs it).
fn redis_sessions(config: &GatewayConfig) -> Result<Option<RedisSessions>, Error> {
    match &config.session.store {
        crate::contract::session::StoreConfig::Cookie => Ok(None),
        crate::contract::session::StoreConfig::Redis(redis) => RedisSessions::new(&config.session, redis)
            .map(Some)
            .map_err(|e| Error::Config(format!("session.store: {e}"))),
    }
}

/// A `302 Found` to `location` (non-ASCII characters percent-encoded).
pub(crate) fn found(location: &str) -> Response {
    let encoded = percent_encoding::utf8_percent_encode(location, percent_encoding::CONTROLS).to_string();
    match HeaderValue::try_from(encoded) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect target\n").into_response(),
    }
}

/// Router state: the shared gateway plus this thread's upstream pool.
#[derive(Clone)]
pub struct Worker {
    pub(crate) gw: Arc<Gateway>,
    pub(crate) upstreams: Arc<Upstreams>,
}

impl FromRef<Worker> for Arc<Gateway> {
    fn from_ref(worker: &Worker) -> Self {
        worker.gw.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_external_url() {
        let p = Paths::new(&Url::parse("https://x.example.com/app/").unwrap());
        assert_eq!(p.callback, "/app/oauth2/callback");
        assert_eq!(p.home, "/app/");
        let root = Paths::new(&Url::parse("https://x.example.com").unwrap());
        assert_eq!(root.start, "/oauth2/start");
        assert_eq!(root.home, "/");
    }

    #[test]
    fn redirects_are_302_and_ascii() {
        let r = found("/ü?x=1");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "/%C3%BC?x=1");
    }
}
