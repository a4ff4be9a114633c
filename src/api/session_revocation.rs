//! `SessionRevocation`: ends one user's sessions, without touching the
//! policy (so GitOps never reverts it) and without restarting a gateway.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Ends every session of one user issued before an instant, on every
/// gateway replica of the policies it names, on their next request. The
/// controller delivers it to the gateways without a pod roll, and deletes
/// it once every session it could match has expired anyway.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authgate.dev",
    version = "v1alpha1",
    kind = "SessionRevocation",
    plural = "sessionrevocations",
    shortname = "srev",
    category = "authgate",
    namespaced,
    cel,
    status = "SessionRevocationStatus",
    doc = "Ends one user's sessions issued before an instant, on every gateway of the AuthPolicy it names (or of every AuthPolicy in the namespace), without restarting them. Deleted by the controller once those sessions would have expired anyway.",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policy"}"#,
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".spec.user"}"#,
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".spec.email"}"#,
    printcolumn = r#"{"name":"Before","type":"date","jsonPath":".status.before"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Expires","type":"date","priority":1,"jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[x_kube(validation = Rule::new("has(self.user) || has(self.email)").message("a SessionRevocation names a user, an email, or both"))]
#[serde(rename_all = "camelCase")]
pub struct SessionRevocationSpec {
    /// The AuthPolicy whose sessions end. Without it, every AuthPolicy in
    /// the namespace.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("policy must be an AuthPolicy name"))]
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The user name the gateway forwards (`X-Auth-Request-User`), matched
    /// exactly.
    #[schemars(length(min = 1, max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The verified email, matched without regard to case.
    #[schemars(length(min = 3, max = 320))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Sessions issued before this instant end. Default: when this object
    /// was created, so sessions signed in afterwards keep working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Time>,
}

/// What the controller made of a SessionRevocation.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionRevocationStatus {
    /// The instant in force: `spec.before`, or the creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Time>,
    /// When the controller deletes it: `before` plus the longest session
    /// lifetime of the policies it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// `Ready`: delivered into the gateway configuration of every policy
    /// it names.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
