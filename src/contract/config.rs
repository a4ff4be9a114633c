//! The gateway's configuration: the contract between the controller, which
//! writes it into `<policy>-auth-credentials` as `gateway.yaml`, and the
//! gateway, which reads it. Pure data plus (de)serialization.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use url::Url;

pub use super::machine::MachineConfig;
pub use super::redacted::Redacted;
use super::routes::{Cors, RouteConfig, TlsConfig};
pub use super::session::{RedisConfig, SessionConfig, StoreConfig, UserRevocation};
use crate::api::AllowList;
pub use crate::api::{Authentication, ClaimMapping, ForwardAuth, ForwardSettings, ProviderType};
use crate::yaml_error::ParseError;

/// Everything one gateway needs to run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Public URL of the protected service; the callback is
    /// `externalUrl` + `/oauth2/callback`.
    pub external_url: Url,
    /// Where authenticated requests go. None: the gateway serves sign-in
    /// and forward-auth only, and answers 404 to anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Url>,
    /// `Disabled` proxies everything without sign-in.
    #[serde(default)]
    pub authentication: Authentication,
    /// Providers users may sign in with, in the order the policy lists them.
    pub providers: Vec<ProviderConfig>,
    /// The policy's own access rules (AND each provider's filters).
    #[serde(default)]
    pub access: AllowList,
    /// The policy explicitly allows every user of a public provider.
    #[serde(default)]
    pub allow_all_users: bool,
    /// Session cookie settings and keys.
    pub session: SessionConfig,
    /// What to forward upstream.
    #[serde(default)]
    pub forward: ForwardSettings,
    /// Address of `/healthz`, `/readyz` and `/metrics`. A port of its own, so
    /// the public port never exposes metrics and never shadows the
    /// upstream's own paths of those names.
    #[serde(default = "default_ops_listen")]
    pub ops_listen: SocketAddr,
    /// How long clients and the upstream may take.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Forward-auth, when the policy serves it: who may ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_auth: Option<ForwardAuth>,
    /// TLS towards `upstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<TlsConfig>,
    /// More upstreams by path prefix; the longest match wins, the rest
    /// goes to `upstream`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// Paths served without sign-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_paths: Vec<String>,
    /// CORS for every path without a route of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Callers without a browser: bearer issuers, scopes, ApiTokens and
    /// the device flow.
    #[serde(default, skip_serializing_if = "MachineConfig::is_empty")]
    pub machine: MachineConfig,
    /// Log one line per public request: method, path (never the query),
    /// status and duration.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub access_log: bool,
    /// The service's name on the gateway's pages (the policy's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The policy's `branding` for the gateway's pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<crate::api::Branding>,
}

/// Time limits, in seconds. They bound what a slow or malicious peer can
/// hold: a client that sends its headers byte by byte (slowloris), an idle
/// keep-alive connection, an upstream that never answers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// A client must send a request's complete headers within this time.
    #[serde(default = "default_header_read")]
    pub header_read_seconds: u64,
    /// A keep-alive connection with no request in flight is closed after
    /// this long without traffic.
    #[serde(default = "default_idle")]
    pub idle_seconds: u64,
    /// The upstream must send its response headers within this time, or the
    /// client gets 504. Bodies (downloads, WebSockets) are not limited.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_seconds: u64,
    /// Opening a connection to the upstream may take this long.
    #[serde(default = "default_connect")]
    pub connect_seconds: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read_seconds: default_header_read(),
            idle_seconds: default_idle(),
            upstream_seconds: default_upstream_timeout(),
            connect_seconds: default_connect(),
        }
    }
}

fn default_header_read() -> u64 {
    10
}
fn default_connect() -> u64 {
    5
}
fn default_idle() -> u64 {
    60
}
/// Default upstream response-header timeout, in seconds.
pub const DEFAULT_UPSTREAM_TIMEOUT: u64 = 60;
fn default_upstream_timeout() -> u64 {
    DEFAULT_UPSTREAM_TIMEOUT
}

fn default_ops_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_OPS_PORT))
}

/// Default port of `/healthz`, `/readyz` and `/metrics`.
pub const DEFAULT_OPS_PORT: u16 = 4181;

/// One provider, fully resolved: no discovery or Secret lookups left to do
/// except fetching an OIDC issuer's keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// IdentityProvider name; the `provider` parameter of `/oauth2/start`.
    pub name: String,
    /// Kind of provider.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// Name on the sign-in page; see [`ProviderConfig::shown_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// OAuth2 client ID.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Redacted,
    /// Issuer identifier (OIDC-based types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<Url>,
    /// Authorization endpoint.
    pub authorize_url: Url,
    /// Token endpoint.
    pub token_url: Url,
    /// Userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<Url>,
    /// JWKS endpoint (OIDC-based types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<Url>,
    /// REST API base (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    /// Token revocation endpoint (RFC 7009): sign-out revokes the refresh
    /// token there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<Url>,
    /// End-session endpoint (OpenID Connect RP-Initiated Logout 1.0):
    /// sign-out sends the browser there to end the provider's session too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<Url>,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Claim mapping (OIDC-based types).
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Provider-wide filters.
    #[serde(default)]
    pub filters: AllowList,
    /// PEM roots for every call to the provider (a private CA), instead of
    /// the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// When an email counts as verified (the provider's `emailVerified`).
    #[serde(default, skip_serializing_if = "crate::api::EmailVerification::is_required")]
    pub email_verified: crate::api::EmailVerification,
}

impl ProviderConfig {
    /// The name on the sign-in page: `displayName`, else GitHub, GitLab,
    /// Google, or an OIDC issuer's host name.
    pub fn shown_name(&self) -> String {
        if let Some(name) = &self.display_name {
            return name.clone();
        }
        match self.provider_type {
            ProviderType::Github => "GitHub".into(),
            ProviderType::Gitlab => "GitLab".into(),
            ProviderType::Google => "Google".into(),
            ProviderType::Oidc => {
                self.issuer_url.as_ref().and_then(|u| u.host_str()).map_or_else(|| self.name.clone(), str::to_owned)
            }
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}

/// The default session cookie name of policy `namespace/name`: `_authgate_`
/// plus 8 hex digits of a hash of both, so that policies sharing a cookie
/// domain (or a host) never overwrite or clear each other's sessions.
pub fn policy_cookie_name(namespace: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(namespace).chain_update([0]).chain_update(name).finalize();
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("_authgate_{hex}")
}

/// How often a running gateway reads its config file for changes, in
/// seconds. With the kubelet's sync of mounted Secrets (about a minute by
/// default) and the controller's watch, this bounds how long a change (a
/// revocation, a rotated key, a tightened rule) takes to take effect.
pub const RELOAD_POLL_SECONDS: u64 = 2;

/// Default port of the gateway container.
pub const DEFAULT_PORT: u16 = 4180;

impl GatewayConfig {
    /// The OAuth2 redirect URI registered with providers.
    pub fn callback_url(&self) -> Url {
        let mut url = self.external_url.clone();
        let path = format!("{}/oauth2/callback", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    /// What a running gateway cannot take on by reloading its file: the
    /// addresses it listens on and the listener's own timeouts. Everything
    /// else (providers, keys, rules, routes, revocations) reloads in place.
    /// The controller puts a hash of this, and only this, on the pod
    /// template, so only these changes roll the pods.
    pub fn restart_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "listen={} ops={} headerRead={} idle={}",
            self.listen, self.ops_listen, self.timeouts.header_read_seconds, self.timeouts.idle_seconds
        );
        Sha256::digest(text).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `other` can replace this config in a running gateway.
    pub fn reloads_into(&self, other: &Self) -> bool {
        self.restart_fingerprint() == other.restart_fingerprint()
    }

    /// Parses `gateway.yaml`.
    /// Errors name the line, column and field, never a value from `text`.
    pub fn from_yaml(text: &str) -> Result<Self, ParseError> {
        crate::yaml_error::from_yaml_str(text)
    }

    /// Renders `gateway.yaml`.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gateway.yaml` embeds some CRD types (the allow-list, forwarding
    /// settings, claim mapping, provider kind). Their field names are its
    /// wire format too, so a rename in `src/api` must show up here rather
    /// than silently change what an older gateway reads.
    #[test]
    fn the_wire_format_of_gateway_yaml_is_pinned() {
        let yaml = r#"
listen: 0.0.0.0:4180
externalUrl: https://app.example.com/
upstream: http://app.team-a.svc:8080/
authentication: Enabled
providers:
- name: corp
  type: oidc
  clientId: c
  clientSecret: s
  issuerUrl: https://id.example.com/
  authorizeUrl: https://id.example.com/auth
  tokenUrl: https://id.example.com/token
  userinfoUrl: https://id.example.com/me
  jwksUrl: https://id.example.com/jwks
  scopes: [openid]
  claims: {username: email, email: email, groups: groups}
  filters: {allowedDomains: [example.com], allowedOrgs: [o], allowedTeams: [o/t], allowedGroups: [g], allowedEmails: [a@example.com]}
  caPem: "-----BEGIN CERTIFICATE-----"
access: {allowedGroups: [sre]}
allowAllUsers: false
session: {cookieName: _authgate_x, cookieDomain: example.com, ttlSeconds: 43200, keys: [k], store: {type: redis, addresses: ['redis:6379'], sentinelMaster: m, username: u, password: p, database: 2, tls: {caPem: ca}, keyPrefix: 'x:'}, notBefore: 1700000000, revocations: [{user: alice, before: 1700000001}, {email: bob@example.com, before: 1700000002}], revalidateSeconds: 900, revalidateGraceSeconds: 300}
forward: {accessToken: true, idToken: true, identityHeaders: true, headerNames: {user: X-Forwarded-User, userId: X-Forwarded-Uid, email: X-Forwarded-Email, groups: X-Forwarded-Groups, preferredUsername: X-Forwarded-Preferred-Username}, preserveHost: true, trustedProxies: [10.0.0.0/8]}
opsListen: 0.0.0.0:4181
timeouts: {headerReadSeconds: 10, idleSeconds: 60, upstreamSeconds: 60, connectSeconds: 5}
forwardAuth: {trustedProxies: [10.0.0.0/8]}
upstreamTls: {caPem: ca, clientCertPem: crt, clientKeyPem: key}
routes:
- pathPrefix: /metrics-api
  upstream: https://metrics.example.com/
  tls: {insecureSkipVerify: true}
  methods: [GET]
  stripPrefix: true
  headers: [{name: X-Api-Key, value: k}]
  tokenAuth: {tokenUrl: https://id.example.com/token, clientId: proxy, clientSecret: s, scopes: [read], audience: a, resource: https://metrics.example.com, params: {prompt: none}, tls: {caPem: ca}}
  forwardAccessToken: false
  timeoutSeconds: 5
  connectTimeoutSeconds: 1
  cors: {allowedOrigins: [https://app.example.com], allowedMethods: [GET], allowedHeaders: [X-A], exposeHeaders: [X-B], allowCredentials: true, maxAgeSeconds: 60}
publicPaths: [/healthz]
cors: {allowedOrigins: ['*'], allowCredentials: false}
"#;
        let config = GatewayConfig::from_yaml(yaml).unwrap();
        let round: serde_json::Value = serde_json::to_value(&config).unwrap();
        let expected: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(round, expected);
    }

    #[test]
    fn providers_are_shown_by_display_name_else_by_type_or_issuer_host() {
        let yaml = "externalUrl: https://x\nproviders:\n- {name: corp, type: oidc, clientId: c, clientSecret: s, issuerUrl: 'https://id.corp.example/', authorizeUrl: 'https://id.corp.example/a', tokenUrl: 'https://id.corp.example/t', scopes: [openid]}\nsession: {cookieName: _a, ttlSeconds: 60, keys: [k]}\n";
        let mut p = GatewayConfig::from_yaml(yaml).unwrap().providers.remove(0);
        assert_eq!(p.shown_name(), "id.corp.example");
        for (kind, shown) in
            [(ProviderType::Github, "GitHub"), (ProviderType::Gitlab, "GitLab"), (ProviderType::Google, "Google")]
        {
            p.provider_type = kind;
            assert_eq!(p.shown_name(), shown);
        }
        p.display_name = Some("Corp SSO".into());
        assert_eq!(p.shown_name(), "Corp SSO");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = Redacted::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }

    #[test]
    fn default_cookie_names_differ_per_policy() {
        let a = policy_cookie_name("team-a", "grafana");
        assert_eq!(a, policy_cookie_name("team-a", "grafana"));
        assert_eq!(a.len(), "_authgate_".len() + 8);
        assert_ne!(a, policy_cookie_name("team-b", "grafana"));
        assert_ne!(a, policy_cookie_name("team-a", "grafana2"));
        // The separator keeps `a/bc` and `ab/c` apart.
        assert_ne!(policy_cookie_name("a", "bc"), policy_cookie_name("ab", "c"));
    }

    #[test]
    fn callback_appends_path() {
        let cfg = GatewayConfig {
            listen: default_listen(),
            external_url: Url::parse("https://app.example.com/base/").unwrap(),
            upstream: Some(Url::parse("http://up:80").unwrap()),
            authentication: Authentication::Enabled,
            providers: vec![],
            access: AllowList::default(),
            allow_all_users: false,
            session: SessionConfig { cookie_name: "_a".into(), ttl_seconds: 60, ..SessionConfig::default() },
            forward: ForwardSettings::default(),
            ops_listen: default_ops_listen(),
            timeouts: Timeouts::default(),
            forward_auth: None,
            upstream_tls: None,
            routes: vec![],
            public_paths: vec![],
            cors: None,
            machine: crate::contract::machine::MachineConfig::default(),
            access_log: false,
            service_name: None,
            branding: None,
        };
        assert_eq!(cfg.callback_url().as_str(), "https://app.example.com/base/oauth2/callback");
        let yaml = cfg.to_yaml().unwrap();
        assert_eq!(GatewayConfig::from_yaml(&yaml).unwrap(), cfg);
    }
}
