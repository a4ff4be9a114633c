//! `gateway.yaml`'s settings for callers without a browser: the bearer
//! issuers with their resolved keys, the policy's named scopes, the
//! ApiTokens in force (hashes only) and the device flow. Everything here
//! reloads without a restart, so a deleted ApiToken stops working within
//! [`RELOAD_POLL_SECONDS`](super::config::RELOAD_POLL_SECONDS) plus the
//! kubelet's Secret sync.

use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::api::machine::{BearerAlgorithm, DEFAULT_BEARER_ALGORITHMS, Scope};

/// One trusted issuer of bearer JWTs, resolved by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BearerIssuerConfig {
    /// What metrics and logs call it: the IdentityProvider's name,
    /// `kubernetes`, or the issuer URL.
    pub name: String,
    /// The exact `iss` a token must carry.
    pub issuer: String,
    /// `aud` must name at least one. Never empty.
    pub audiences: Vec<String>,
    /// Accepted `alg` values. Never empty, never `none` or HMAC.
    pub algorithms: Vec<BearerAlgorithm>,
    /// Where the issuer's keys are fetched from (and refetched, rate
    /// limited, on an unknown `kid`). None when `jwks` carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<Url>,
    /// The issuer's JWKS document itself, when the controller fetched it
    /// (the cluster's ServiceAccount issuer): the gateway needs no access
    /// to where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// PEM of CA certificates to trust for `jwks_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Claim paths (dotted for nested claims).
    pub claims: BearerClaimPaths,
    /// Login client ids of this issuer (its IdentityProvider's `clientId`):
    /// a token whose only audience is one of them is an ID token, refused
    /// unless it is typed `at+jwt`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub login_client_ids: Vec<String>,
}

/// Claim paths of a bearer issuer, defaults filled in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BearerClaimPaths {
    /// User name claim.
    pub username: String,
    /// Email claim.
    pub email: String,
    /// Groups claim (a string or an array of strings).
    pub groups: String,
    /// API-key claim, naming an ApiToken of the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl Default for BearerClaimPaths {
    fn default() -> Self {
        Self { username: "sub".into(), email: "email".into(), groups: "groups".into(), api_key: None }
    }
}

/// One ApiToken in force for this policy. The token itself never reaches
/// the gateway: only its SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiTokenEntry {
    /// The ApiToken's name (what the API-key claim names).
    pub name: String,
    /// Lowercase hex SHA-256 of the whole token string.
    pub sha256: String,
    /// User name in the identity headers.
    pub user: String,
    /// Groups in the identity headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Names of the policy's scopes the token grants; empty: full access
    /// when the policy names no scopes, none otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Unix seconds after which the gateway refuses the token, whatever
    /// the controller does.
    pub expires_at: u64,
}

/// The device flow, as the gateway serves it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceFlowConfig {
    /// Lifetime of an issued device token, in seconds.
    pub token_ttl_seconds: u64,
    /// How long a device code waits for approval, in seconds (RFC 8628
    /// `expires_in`).
    #[serde(default = "default_code_ttl")]
    pub code_ttl_seconds: u64,
    /// Least seconds between two polls of one device code (RFC 8628
    /// `interval`); faster polls are answered `slow_down`.
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
}

/// Default [`DeviceFlowConfig::code_ttl_seconds`]: ten minutes.
pub const DEFAULT_DEVICE_CODE_TTL: u64 = 600;
/// Default [`DeviceFlowConfig::interval_seconds`] (RFC 8628's default).
pub const DEFAULT_DEVICE_INTERVAL: u64 = 5;

fn default_code_ttl() -> u64 {
    DEFAULT_DEVICE_CODE_TTL
}

fn default_interval() -> u64 {
    DEFAULT_DEVICE_INTERVAL
}

/// Everything about machine callers: `gateway.yaml`'s `machine`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineConfig {
    /// Trusted bearer issuers, in the policy's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer: Vec<BearerIssuerConfig>,
    /// The policy's named scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
    /// ApiTokens in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_tokens: Vec<ApiTokenEntry>,
    /// The device flow, when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_flow: Option<DeviceFlowConfig>,
}

impl MachineConfig {
    /// Nothing configured: no machine caller is accepted.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}
