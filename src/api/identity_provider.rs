//! `IdentityProvider`: one login provider a policy can offer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::AllowList;
use super::rules;

/// An identity provider users can sign in with: GitHub, GitLab, Google or any
/// OpenID Connect issuer. Only one provider of each type is active per
/// namespace; the oldest wins and the others are reported as `DuplicateType`.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authgate.dev",
    version = "v1alpha1",
    kind = "IdentityProvider",
    plural = "identityproviders",
    shortname = "idp",
    category = "authgate",
    namespaced,
    cel,
    status = "IdentityProviderStatus",
    doc = "An identity provider users sign in with: GitHub, GitLab, Google or any OpenID Connect issuer, its OAuth2 client, and who it lets in. Only one provider of each type is active per namespace.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Issuer","type":"string","priority":1,"jsonPath":".status.endpoints.issuer"}"#
)]
#[x_kube(validation = Rule::new("self.type != 'oidc' || has(self.issuerUrl)").message("issuerUrl is required when type is oidc"))]
#[x_kube(validation = Rule::new("self.type == 'github' || !has(self.allowedTeams) || size(self.allowedTeams) == 0").message("allowedTeams is supported only for type github"))]
#[x_kube(validation = Rule::new("self.type != 'google' || !has(self.issuerUrl) || self.issuerUrl == 'https://accounts.google.com'").message("issuerUrl of a google provider is fixed to https://accounts.google.com; leave it unset"))]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderSpec {
    /// Kind of provider: `oidc` (any OpenID Connect issuer), `github`,
    /// `gitlab` or `google`. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable; create a new IdentityProvider instead"))]
    #[serde(rename = "type")]
    pub provider_type: ProviderType,

    /// Name shown on the sign-in page: "Sign in with <displayName>".
    /// Defaults to GitHub, GitLab or Google, or for `oidc` to the issuer's
    /// host name.
    #[schemars(length(min = 1, max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// OAuth2 client ID registered with the provider.
    #[schemars(length(min = 1, max = 512))]
    pub client_id: String,

    /// Reference to the key of a Secret, in this namespace, holding the
    /// OAuth2 client secret. Secrets are never written inline.
    pub client_secret_ref: SecretKeyRef,

    /// Issuer URL. Required for `oidc`; defaults to https://gitlab.com for
    /// `gitlab`; fixed for `google`; unused by `github`. Must be https://
    /// except for loopback hosts.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("issuerUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,

    /// PEM certificates that sign the provider's certificate, for an
    /// issuer behind a private CA. Used for discovery (by the controller)
    /// and for every call to the provider (by the gateway), instead of the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<super::CaBundle>,

    /// Optional endpoint overrides, for GitHub Enterprise or self-hosted GitLab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<EndpointOverrides>,

    /// OAuth2 scopes to request. Defaults per type: oidc, gitlab and google
    /// `openid email profile`; github `read:org user:email`.
    #[schemars(length(max = 32), inner(length(max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,

    /// Which ID token / userinfo claims carry the user's identity (oidc, gitlab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimMapping>,

    /// When an email address counts as verified (oidc, gitlab). `Required`
    /// (the default): only with `email_verified: true`. `IfPresent`: also
    /// when the provider sends no `email_verified` claim at all, for
    /// issuers that never send it but own every address they issue
    /// (Microsoft Entra ID work accounts). An explicit `false` is refused
    /// either way. Choose `IfPresent` only for an issuer whose users cannot
    /// set their own address: otherwise anyone could claim any domain.
    #[serde(default, skip_serializing_if = "EmailVerification::is_required")]
    pub email_verified: EmailVerification,

    /// Who may sign in with this provider, for every policy that uses it.
    /// Empty lists: no restriction at this level.
    #[serde(flatten)]
    pub allow: AllowList,
}

/// When a provider's email address counts as verified.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EmailVerification {
    /// Only with `email_verified: true`.
    #[default]
    Required,
    /// With `email_verified: true`, or when the claim is absent.
    IfPresent,
}

impl EmailVerification {
    /// Whether this is the strict default.
    pub fn is_required(&self) -> bool {
        *self == Self::Required
    }

    /// Whether an address is verified, given the `email_verified` claim
    /// (`None`: the provider sent none).
    pub fn verified(self, claim: Option<bool>) -> bool {
        match (self, claim) {
            (_, Some(v)) => v,
            (Self::Required, None) => false,
            (Self::IfPresent, None) => true,
        }
    }
}

/// Kind of identity provider.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// Any OpenID Connect issuer, found by discovery.
    Oidc,
    /// github.com or GitHub Enterprise (OAuth app).
    Github,
    /// gitlab.com or self-hosted GitLab (OpenID Connect).
    Gitlab,
    /// Google accounts and Workspace (OpenID Connect).
    Google,
}

impl ProviderType {
    /// Lower-case name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Google => "google",
        }
    }

    /// Whether anyone with an account could sign in: github, google and
    /// gitlab.com are open to the public; a private OIDC issuer or a
    /// self-hosted GitLab (another `issuer_host`) is not.
    pub fn is_public(self, issuer_host: Option<&str>) -> bool {
        match self {
            Self::Github | Self::Google => true,
            Self::Gitlab => issuer_host.is_none_or(|h| h.eq_ignore_ascii_case("gitlab.com")),
            Self::Oidc => false,
        }
    }

    /// Scopes requested when the spec lists none.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Github => &["read:org", "user:email"],
            Self::Oidc | Self::Gitlab | Self::Google => &["openid", "email", "profile"],
        }
    }
}

impl std::fmt::Display for ProviderType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key of a Secret in the same namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("clientSecretRef.name must be a valid Secret name"))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    #[serde(default = "default_secret_key")]
    pub key: String,
}

fn default_secret_key() -> String {
    "client-secret".to_owned()
}

/// Endpoint overrides. Any URL left out keeps the type's default or the
/// value found by discovery.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOverrides {
    /// Authorization endpoint.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("authorizeUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Token endpoint.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("tokenUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Userinfo endpoint.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("userinfoUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    /// REST API base URL (GitHub Enterprise: `https://HOST/api/v3`).
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("apiUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// Claim names used to read the user's identity from an ID token.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMapping {
    /// Claim used as the user name (`X-Auth-Request-User`). Default `email`.
    #[schemars(length(min = 1, max = 128))]
    #[serde(default = "claim_email")]
    pub username: String,
    /// Claim holding the email address. Default `email`.
    #[schemars(length(min = 1, max = 128))]
    #[serde(default = "claim_email")]
    pub email: String,
    /// Claim holding the list of groups. Default `groups`.
    #[schemars(length(min = 1, max = 128))]
    #[serde(default = "claim_groups")]
    pub groups: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self { username: claim_email(), email: claim_email(), groups: claim_groups() }
    }
}

fn claim_email() -> String {
    "email".to_owned()
}
fn claim_groups() -> String {
    "groups".to_owned()
}

/// Observed state of an IdentityProvider.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: Accepted, ResolvedRefs, Ready and, for errors
    /// that need a person, Stalled. One per type.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Endpoints resolved from defaults, overrides and discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<ResolvedEndpoints>,
}

/// Endpoints the gateway will use for this provider.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedEndpoints {
    /// Issuer identifier (OpenID Connect providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    /// JSON Web Key Set of the issuer (OpenID Connect providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// REST API base (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Token revocation endpoint (RFC 7009), where sign-out revokes the
    /// refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// End-session endpoint (OpenID Connect RP-Initiated Logout), where
    /// sign-out ends the provider's session too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<String>,
}

impl IdentityProviderSpec {
    /// Scopes to request: the spec's, or the type's defaults.
    pub fn effective_scopes(&self) -> Vec<String> {
        if self.scopes.is_empty() {
            self.provider_type.default_scopes().iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.scopes.clone()
        }
    }
}
