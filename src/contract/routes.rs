//! The routes part of `gateway.yaml`: more upstreams by path prefix, with
//! every Secret they need already resolved, and TLS towards upstreams and
//! providers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::redacted::Redacted;
pub use crate::api::Cors;

/// One path route, fully resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, matched on whole segments of the normalized path.
    pub path_prefix: String,
    /// Where the route's requests go.
    pub upstream: Url,
    /// TLS towards this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Methods that take this route; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Remove the prefix before forwarding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
    /// Headers set on every request, prefix and Secret value joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderValueConfig>,
    /// `client_credentials` token injected as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<TokenAuthConfig>,
    /// Send the user's own access token too. Default: only when the route
    /// injects no credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_access_token: Option<bool>,
    /// Response-header timeout, replacing `timeouts.upstreamSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Connect timeout, replacing `timeouts.connectSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_seconds: Option<u64>,
    /// CORS, replacing the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
}

impl RouteConfig {
    /// Whether the route injects credentials of its own.
    pub fn injects_credentials(&self) -> bool {
        self.token_auth.is_some() || !self.headers.is_empty()
    }

    /// Whether the user's access token goes upstream on this route, given
    /// the policy-wide setting.
    pub fn forwards_access_token(&self, policy: bool) -> bool {
        self.forward_access_token.unwrap_or(policy && !self.injects_credentials())
    }
}

/// A header to set, with its complete value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValueConfig {
    /// Header name.
    pub name: String,
    /// Its value: the route's prefix followed by the Secret's value.
    pub value: Redacted,
}

/// The `client_credentials` grant, with its secret resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenAuthConfig {
    /// Token endpoint.
    pub token_url: Url,
    /// Client ID.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Redacted,
    /// Scopes to request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `audience` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `resource` parameter (RFC 8707).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// More form parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// TLS towards the token endpoint (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// TLS towards an upstream, a token endpoint or a provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM roots that replace the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// PEM client certificate chain (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_pem: Option<String>,
    /// PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<Redacted>,
    /// Accept any server certificate (upstreams only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}
