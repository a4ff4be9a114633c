//! `ApiToken`: a token for machine-to-machine calls through one
//! AuthPolicy's gateway, with scopes and a lifetime, issued and revoked the
//! Kubernetes way (create it, read its Secret, delete it).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The longest `spec.ttl` an ApiToken may have: one year. A longer-lived
/// credential belongs in a bearer issuer whose keys can be rotated.
pub const MAX_API_TOKEN_TTL: &str = "8760h";
/// [`MAX_API_TOKEN_TTL`] in seconds.
pub const MAX_API_TOKEN_TTL_SECONDS: u64 = 8760 * 3600;
/// Annotation whose change makes the controller issue a new token (the old
/// one stops working on the gateway's next reload).
pub const ROTATE_ANNOTATION: &str = "authgate.dev/rotate";
/// Key of the token in the Secret the controller writes.
pub const TOKEN_KEY: &str = "token";
/// Ready reason: issued and in the policy's gateway configuration.
pub const ISSUED: &str = "Issued";
/// Condition type and reason once `expiresAt` has passed.
pub const EXPIRED: &str = "Expired";

/// A token for calls without a browser through the gateway of one
/// AuthPolicy. The controller generates it (prefix `agt_`, 32 random bytes
/// and a checksum) into the Secret `<name>-token` (key `token`), owned by
/// this object; only its SHA-256 reaches the gateway. The gateway refuses
/// it after `status.expiresAt` on its own, deleting this object revokes it
/// within the gateway's reload period (2 s) plus the kubelet's Secret sync,
/// and changing the annotation `authgate.dev/rotate` issues a new one. The
/// upstream sees the user name `spec.user`, the groups `spec.groups` and the
/// user id `apitoken:<name>`, which marks a token identity.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authgate.dev",
    version = "v1alpha1",
    kind = "ApiToken",
    plural = "apitokens",
    shortname = "at",
    shortname = "apitoken",
    category = "authgate",
    namespaced,
    cel,
    status = "ApiTokenStatus",
    doc = "A token for machine-to-machine calls through one AuthPolicy's gateway, limited to some of the policy's scopes and to a lifetime. The controller writes it into the Secret <name>-token (key token); deleting the ApiToken revokes it, changing the annotation authgate.dev/rotate issues a new one.",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policy"}"#,
    printcolumn = r#"{"name":"Scopes","type":"string","jsonPath":".spec.scopes"}"#,
    printcolumn = r#"{"name":"Expires","type":"date","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","priority":1,"jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenSpec {
    /// The AuthPolicy (in this namespace) whose gateway accepts the token.
    /// A token for one policy is refused by every other.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("policy must be an AuthPolicy name"))]
    #[schemars(length(min = 1, max = 253))]
    pub policy: String,
    /// The user name the upstream sees (`X-Auth-Request-User`). The user id
    /// header carries `apitoken:<name>`, so an upstream can tell a token
    /// from a person.
    #[x_kube(validation = Rule::new("!self.contains(',') && self == self.trim()").message("user must not contain commas or surrounding spaces"))]
    #[schemars(length(min = 1, max = 256))]
    pub user: String,
    /// Groups the upstream sees (`X-Auth-Request-Groups`). The policy's
    /// user filters (groups, emails, domains) do not apply to an ApiToken:
    /// it is a grant the policy's owners made by name, and the gateway
    /// checks only its scopes and its expiry.
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Names of the policy's `spec.scopes` the token may use. A policy
    /// without scopes gives its tokens full access, like a user; once it
    /// has scopes, a token may do only what the ones named here allow (none
    /// named: nothing).
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// How long the token lives from when it is issued (and issued anew on
    /// rotation), as a duration such as `720h`; at most `8760h` (a year).
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("ttl must be a duration such as 30m, 720h or 1h30m"))]
    #[x_kube(validation = Rule::new("!self.matches('^([0-9]+(s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('8760h'))").message("ttl must be more than 0s and at most 8760h (one year)"))]
    #[schemars(length(min = 2, max = 32))]
    pub ttl: String,
}

/// What the controller made of an ApiToken.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenStatus {
    /// The Secret holding the token (key `token`), owned by this ApiToken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Lowercase hex SHA-256 of the token: what the gateway compares
    /// against. Not a secret (the token has 256 random bits), and lets the
    /// owner match a leaked token to this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// When the current token was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// When the gateway stops accepting it: `issuedAt` plus `spec.ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// The value of the annotation `authgate.dev/rotate` the current token
    /// was issued under; a different value issues a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
    /// `Ready`: issued and in the policy's gateway configuration (reason
    /// `Issued`); False with reason `Expired` past `expiresAt`.
    /// `Expired`: True once the gateway refuses it for its age.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
