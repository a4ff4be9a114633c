//! The gateway's configuration: the contract between the controller, which
//! writes it into `<policy>-auth-credentials` as `gateway.yaml`, and the
//! gateway, which reads it. Pure data plus (de)serialization.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::access::Filters;
pub use crate::api::{Authentication, ClaimMapping, ForwardSettings, ProviderType};

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
    /// Where authenticated requests go.
    pub upstream: Url,
    /// `Disabled` proxies everything without sign-in.
    #[serde(default)]
    pub authentication: Authentication,
    /// Providers users may sign in with, in the order the policy lists them.
    pub providers: Vec<ProviderConfig>,
    /// The policy's own access rules (AND each provider's filters).
    #[serde(default)]
    pub access: Filters,
    /// The policy explicitly allows every user of a public provider.
    #[serde(default)]
    pub allow_all_users: bool,
    /// Session cookie settings and keys.
    pub session: SessionConfig,
    /// What to forward upstream.
    #[serde(default)]
    pub forward: ForwardSettings,
}

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
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Claim mapping (OIDC-based types).
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Provider-wide filters.
    #[serde(default)]
    pub filters: Filters,
}

/// Session cookie settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionConfig {
    /// Cookie name; also the associated data of its encryption.
    pub cookie_name: String,
    /// Cookie `Domain` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    /// Session lifetime in seconds.
    pub ttl_seconds: u64,
    /// Cookie encryption keys, base64 (at least 64 bytes each). The first
    /// encrypts; all decrypt, so a rotated-out key keeps sessions alive.
    pub keys: Vec<Redacted>,
}

/// A string that never shows in `Debug` output or logs.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself. Call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4180))
}

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

    /// Parses `gateway.yaml`.
    pub fn from_yaml(text: &str) -> Result<Self, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }

    /// Renders `gateway.yaml`.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let s = Redacted::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }

    #[test]
    fn callback_appends_path() {
        let cfg = GatewayConfig {
            listen: default_listen(),
            external_url: Url::parse("https://app.example.com/base/").unwrap(),
            upstream: Url::parse("http://up:80").unwrap(),
            authentication: Authentication::Enabled,
            providers: vec![],
            access: Filters::default(),
            allow_all_users: false,
            session: SessionConfig { cookie_name: "_a".into(), cookie_domain: None, ttl_seconds: 60, keys: vec![] },
            forward: ForwardSettings::default(),
        };
        assert_eq!(cfg.callback_url().as_str(), "https://app.example.com/base/oauth2/callback");
        let yaml = cfg.to_yaml().unwrap();
        assert_eq!(GatewayConfig::from_yaml(&yaml).unwrap(), cfg);
    }
}
