//! `AuthPolicy` settings for callers without a browser: bearer JWTs from
//! trusted issuers (`spec.bearer`), the named scopes ApiTokens and the
//! API-key claim are limited to (`spec.scopes`), and the device flow for
//! command-line tools (`spec.deviceFlow`).

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::identity_provider::ClaimMapping;
use super::rules;

/// Most issuers one policy trusts for bearer JWTs.
pub const MAX_BEARER_ISSUERS: usize = 8;

/// Signing algorithms a bearer JWT may use when an issuer names none.
pub const DEFAULT_BEARER_ALGORITHMS: [BearerAlgorithm; 3] =
    [BearerAlgorithm::RS256, BearerAlgorithm::ES256, BearerAlgorithm::EdDSA];

/// Bearer JWTs: `Authorization: Bearer <JWT>` issued by a trusted identity
/// provider, verified against that issuer's keys. Tokens are accepted only
/// in the `Authorization` header, never in a query string or a cookie.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BearerSettings {
    /// The issuers whose tokens are accepted. A token's `iss` picks the
    /// issuer before any key is tried, and only that issuer's keys verify
    /// it.
    #[schemars(length(min = 1, max = 8))]
    pub issuers: Vec<BearerIssuer>,
}

/// One trusted issuer of bearer JWTs: exactly one of `provider`,
/// `issuerUrl` or `kubernetes`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("[has(self.provider), has(self.issuerUrl), has(self.kubernetes)].filter(x, x).size() == 1").message("each bearer issuer names exactly one of provider, issuerUrl or kubernetes"))]
#[serde(rename_all = "camelCase")]
pub struct BearerIssuer {
    /// An IdentityProvider of type `oidc` in this namespace: its issuer,
    /// keys and claim mapping are reused. Tokens whose `aud` is that
    /// provider's login client id are ID tokens and are refused.
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// An issuer of its own (a CI system's OIDC issuer, for example). Its
    /// discovery document (`/.well-known/openid-configuration`) names the
    /// keys. Must be https:// except for loopback hosts.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("bearer issuerUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(min = 1, max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    /// The cluster's own ServiceAccount token issuer. The controller reads
    /// its discovery document and keys with its own API credentials and
    /// passes the keys to the gateway, which needs no API access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesIssuer>,
    /// Audiences a token must name (`aud`), at least one. A token naming
    /// none of them is refused: an audience is what stops a token meant
    /// for another service from being replayed here.
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 512)))]
    pub audiences: Vec<String>,
    /// Signing algorithms accepted. Default RS256, ES256 and EdDSA; `none`
    /// and the HMAC algorithms cannot be named.
    #[schemars(length(max = 8))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<BearerAlgorithm>,
    /// Which claims carry the user name, email, groups and API key.
    /// Dotted paths reach nested claims (`realm_access.roles`). Default:
    /// the provider's mapping, else `sub`, `email`, `groups` and no API
    /// key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<BearerClaims>,
}

/// The cluster's ServiceAccount issuer. No settings yet: the issuer and
/// its keys are the apiserver's own.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesIssuer {}

/// An asymmetric JWS algorithm (RFC 7518, RFC 8037).
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum BearerAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// Claim names for a bearer issuer. Each is a claim name, or a dotted path
/// into nested objects.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BearerClaims {
    /// The user name (`X-Auth-Request-User`). Default `sub`.
    #[schemars(length(min = 1, max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The email address. Default `email`; it must be verified
    /// (`email_verified: true`) for the policy's domain rules to pass.
    #[schemars(length(min = 1, max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The groups, as a string or an array of strings. Default `groups`.
    #[schemars(length(min = 1, max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
    /// A claim naming an ApiToken of this policy: the request gets that
    /// token's scopes. Unset: no API-key claim.
    #[schemars(length(min = 1, max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl BearerClaims {
    /// From an IdentityProvider's claim mapping.
    pub fn from_provider(mapping: &ClaimMapping) -> Self {
        Self {
            username: Some(mapping.username.clone()),
            email: Some(mapping.email.clone()),
            groups: Some(mapping.groups.clone()),
            api_key: None,
        }
    }
}

/// A named scope: what a request may be (methods and path prefixes) for an
/// ApiToken or an API-key claim that grants it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// The scope's name, as ApiTokens list it.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9:._-]*[a-z0-9])?$')").message("scope names are lowercase letters, digits and ':', '.', '_', '-'"))]
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// HTTP methods the scope allows (upper case). Empty: every method.
    #[x_kube(validation = Rule::new("self.all(m, m.matches('^[A-Z]+$'))").message("scope methods are upper-case HTTP methods such as GET"))]
    #[schemars(length(max = 16), inner(length(min = 1, max = 16)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Path prefixes the scope allows, matched on whole segments of the
    /// normalized path (`/api` allows `/api` and `/api/x`, never `/apix`).
    /// Empty: every path.
    #[x_kube(validation = Rule::new(format!("self.all(p, {})", super::routes::PATH.replace("self", "p")).as_str()).message("scope pathPrefixes must start with '/' and contain no '.' or '..' segment, '//', '%', '?', '#', '\\' or whitespace"))]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefixes: Vec<String>,
}

/// The device authorization grant (RFC 8628) for command-line tools:
/// `authgate login URL` shows a code, the user approves it in a browser
/// where they are signed in, and the tool receives a token the gateway
/// accepts as a bearer.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceFlow {
    /// Serve the device flow. With the cookie session store it needs a
    /// single gateway replica (approval and polling must meet on one pod);
    /// with `session.store: Redis` any number.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long a token issued to a device lives, as a duration such as
    /// `12h` (the default).
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("deviceFlow.tokenTtl must be a duration such as 1h or 12h"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<String>,
}

fn enabled() -> bool {
    true
}

/// Device token lifetime when a policy sets none.
pub const DEFAULT_DEVICE_TOKEN_TTL: &str = "12h";
