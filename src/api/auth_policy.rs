//! `AuthPolicy`: single sign-on in front of one upstream service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::AllowList;
use super::routes::{Cors, Route};
use super::rules;
pub use super::session::{DEFAULT_SESSION_TTL, SessionSettings};
pub use super::upstream::{ServiceUpstream, Upstream};

/// Protects one upstream service with single sign-on. The controller runs a
/// gateway Deployment and Service for it, configured from the named
/// IdentityProviders and the access rules below.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authgate.dev",
    version = "v1alpha1",
    kind = "AuthPolicy",
    plural = "authpolicies",
    shortname = "ap",
    category = "authgate",
    namespaced,
    cel,
    status = "AuthPolicyStatus",
    doc = "Single sign-on in front of one service: who may enter (the named IdentityProviders and access rules), where signed-in requests go (upstream) or which ingress asks (forwardAuth), and how the gateway Deployment the controller runs for it behaves.",
    printcolumn = r#"{"name":"Providers","type":"string","jsonPath":".spec.providers"}"#,
    printcolumn = r#"{"name":"Upstream","type":"string","jsonPath":".status.upstream"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"External URL","type":"string","priority":1,"jsonPath":".spec.externalUrl"}"#
)]
#[x_kube(validation = Rule::new("has(self.upstream) || has(self.forwardAuth)").message("upstream is required unless the policy serves forward-auth only (forwardAuth set)"))]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    /// The service that signed-in users reach through the gateway. May be
    /// left out only when the policy serves forward-auth alone: an ingress
    /// in front of the service asks the gateway (`forwardAuth`) and
    /// forwards by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,

    /// More upstreams behind the same sign-in, by path prefix, each with
    /// the credentials it needs (the Grafana data-source proxy pattern).
    /// The longest matching prefix wins; every other path goes to
    /// `upstream`.
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(q, q.pathPrefix == r.pathPrefix))").message("routes must not repeat a pathPrefix"))]
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,

    /// Paths anyone may reach without signing in: health checks, static
    /// assets, webhooks. Each serves itself and everything below it, on
    /// whole segments, matched on the normalized path only (never the
    /// query or a fragment). Identity headers are still stripped.
    #[x_kube(validation = Rule::new(format!("self.all(p, {})", super::routes::PATH.replace("self", "p")).as_str()).message("publicPaths entries must start with '/' and contain no '.' or '..' segment, '//', '%', '?', '#', '\\' or whitespace"))]
    #[x_kube(validation = Rule::new("self.all(p, p != '/')").message("publicPaths cannot open '/': that is authentication: Disabled, say so instead"))]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_paths: Vec<String>,

    /// Cross-origin requests browsers may make (CORS), for every path; a
    /// route's own `cors` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,

    /// Public URL of the protected service, as users type it. The OAuth2
    /// callback is `externalUrl` + `/oauth2/callback`. Must be https://
    /// except for loopback hosts.
    #[x_kube(validation = Rule::new(rules::SECURE_URL).message(format!("externalUrl {}", rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(min = 1, max = 2048))]
    pub external_url: String,

    /// Names of IdentityProviders in this namespace users may sign in with.
    /// With several, users pick one on a sign-in page.
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q == p))").message("providers must not repeat a name"))]
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 253)))]
    pub providers: Vec<String>,

    /// Who may enter, on top of each provider's own filters.
    #[serde(default)]
    pub access: AccessRules,

    /// Session cookie settings.
    #[serde(default)]
    pub session: SessionSettings,

    /// What the gateway forwards to the upstream.
    #[serde(default)]
    pub forward: ForwardSettings,

    /// What signing out does at the identity provider.
    #[serde(default)]
    pub sign_out: crate::api::sign_out::SignOutSettings,

    /// `Enabled` (default) requires sign-in. `Disabled` passes every request
    /// through unauthenticated, for services already behind another gate;
    /// it is flagged in status.
    #[serde(default)]
    pub authentication: Authentication,

    /// Settings of the gateway Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySettings>,

    /// How the gateway's sign-in, access-denied and signed-out pages
    /// present this service: title, logo, footer and whom to ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<super::Branding>,

    /// Serve forward-auth: an ingress (nginx `auth_request`, Traefik
    /// `ForwardAuth`, Envoy `ext_authz`) asks the gateway whether each
    /// request may pass, and as whom, at `externalUrl` + `/oauth2/auth`
    /// (401/403/202), `/oauth2/verify` (sends browsers to sign in) or
    /// `/oauth2/ext_authz/…` (Envoy's path-prefix contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_auth: Option<ForwardAuth>,

    /// A route the controller writes to put `externalUrl` in front of the
    /// gateway Service: an Ingress or a Gateway API HTTPRoute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,

    /// Accept `Authorization: Bearer <JWT>` from trusted issuers, for
    /// services and CI jobs. The policy's access rules apply to bearer
    /// identities unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<super::machine::BearerSettings>,

    /// Named scopes (methods and path prefixes) that ApiTokens and the
    /// API-key claim grant. A request outside a token's scopes gets 403.
    /// With no scopes here, tokens have full access, like a user.
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t.name == s.name))").message("scopes must not repeat a name"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<super::machine::Scope>,

    /// The device authorization grant (RFC 8628) for `authgate login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_flow: Option<super::machine::DeviceFlow>,
}

/// Forward-auth settings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ForwardAuth {
    /// Addresses (CIDR, e.g. `10.0.0.0/8`) of the ingress proxies that may
    /// ask. Only their `X-Original-URL`, `X-Forwarded-Uri`, `-Host`,
    /// `-Proto` and `-Method` are believed, and a request from anywhere
    /// else is refused. Required, with no default: an empty list trusts no one.
    #[x_kube(validation = Rule::new("size(self) >= 1").message("forwardAuth.trustedProxies must name at least one proxy: an empty list trusts no one"))]
    #[schemars(length(max = 32), inner(length(min = 1, max = 64)))]
    pub trusted_proxies: Vec<String>,
}

/// Where the generated route comes from: exactly one of `ingress` or
/// `httpRoute`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.ingress) != has(self.httpRoute)").message("expose must set exactly one of ingress or httpRoute"))]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// A `networking.k8s.io/v1` Ingress named `<policy>-gateway` for the
    /// external URL's host and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressExpose>,
    /// A `gateway.networking.k8s.io/v1` HTTPRoute named `<policy>-gateway`
    /// for the external URL's host and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<HttpRouteExpose>,
}

/// The generated Ingress.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressExpose {
    /// `spec.ingressClassName`; the cluster's default class when unset.
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Annotations for the ingress controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// A TLS Secret in this namespace for the external host.
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
}

/// The generated HTTPRoute.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteExpose {
    /// The Gateways the route attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<ParentRef>,
}

/// A Gateway the route attaches to.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its namespace; the policy's when unset.
    #[schemars(length(min = 1, max = 63))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One listener of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// Access rules of a policy. A user must pass their provider's allow-list
/// AND this one.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccessRules {
    /// Who may enter this policy's service.
    #[serde(flatten)]
    pub allow: AllowList,
    /// Let in every user who can sign in with a public provider (github,
    /// google, gitlab.com) even though no list restricts who that is.
    /// Without it such a policy is refused with `NoAccessRestriction`.
    #[serde(default)]
    pub allow_all_users: bool,
}

fn default_true() -> bool {
    true
}

/// What reaches the upstream with each request.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ForwardSettings {
    /// Send `Authorization: Bearer <access token>`.
    #[serde(default = "default_true")]
    pub access_token: bool,
    /// Send `Authorization: Bearer <ID token>` instead of the access token,
    /// for upstreams that take the OpenID Connect ID token (Kubernetes
    /// Dashboard, Headlamp). The session then keeps the ID token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub id_token: bool,
    /// Send `X-Auth-Request-User`, `-User-Id`, `-Email` and `-Groups`
    /// (or the names chosen in `headerNames`).
    #[serde(default = "default_true")]
    pub identity_headers: bool,
    /// Other names for the identity headers, so common upstreams work
    /// without a shim: e.g. `user: X-Forwarded-User`, or `user: Remote-User`.
    /// Whatever name is chosen is also stripped from what clients send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_names: Option<IdentityHeaderNames>,
    /// Keep the client's `Host` header instead of the upstream URL's host
    /// (for upstreams that build absolute links from it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preserve_host: bool,
    /// Addresses (CIDR, e.g. `10.0.0.0/8`) of proxies in front of the
    /// gateway whose `X-Forwarded-For` may be believed. A request from any
    /// other address has its forwarding headers replaced by what the gateway
    /// saw itself. Default: none, so no client can spoof its address.
    #[schemars(length(max = 32), inner(length(min = 1, max = 64)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            access_token: true,
            id_token: false,
            identity_headers: true,
            header_names: None,
            preserve_host: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Header names of the identity the gateway sends upstream. Unset names
/// keep their `X-Auth-Request-*` default.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdentityHeaderNames {
    /// The user's name (login or preferred username). Default `X-Auth-Request-User`.
    #[x_kube(validation = Rule::new(IDENTITY_HEADER_NAME).message(IDENTITY_HEADER_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The provider's stable subject ID. Default `X-Auth-Request-User-Id`.
    #[x_kube(validation = Rule::new(IDENTITY_HEADER_NAME).message(IDENTITY_HEADER_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The verified email. Default `X-Auth-Request-Email`.
    #[x_kube(validation = Rule::new(IDENTITY_HEADER_NAME).message(IDENTITY_HEADER_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups, comma-separated. Default `X-Auth-Request-Groups`.
    #[x_kube(validation = Rule::new(IDENTITY_HEADER_NAME).message(IDENTITY_HEADER_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
    /// The preferred username again, under a second name (e.g.
    /// `X-Forwarded-Preferred-Username`). Default: not sent.
    #[x_kube(validation = Rule::new(IDENTITY_HEADER_NAME).message(IDENTITY_HEADER_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// A header name the gateway may set for the identity: a token, and not
/// one that carries credentials, routing or framing.
const IDENTITY_HEADER_NAME: &str = "self.matches('^[A-Za-z0-9!#$&*+^_`|~.-]+$') && !(self.lowerAscii() in ['authorization', 'cookie', 'host', 'connection', 'content-length', 'transfer-encoding', 'te', 'upgrade', 'trailer', 'keep-alive', 'proxy-connection'])";
const IDENTITY_HEADER_NAME_MESSAGE: &str =
    "forward.headerNames entries must be header names other than Authorization, Cookie, Host or a hop-by-hop header";

/// Whether the gateway requires sign-in.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Authentication {
    /// Sign-in required.
    #[default]
    Enabled,
    /// Pass-through, no sign-in.
    Disabled,
}

/// Settings of the gateway Deployment.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySettings {
    /// Number of gateway pods. Default 1 (the controller's default may differ).
    #[schemars(range(min = 0, max = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Gateway image; defaults to the controller's configured image. Only
    /// the default image or one the platform allows (the controller's
    /// `--gateway-allowed-images`, empty by default) is accepted; any other
    /// is refused with `ImageNotAllowed` and no Deployment is written.
    #[schemars(length(max = 512))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Compute resources of the gateway container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node selector of the gateway pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the gateway pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Log one line per request: method, path (never the query, which may
    /// carry tokens), status and duration. Reloads without a restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub access_log: bool,
}

/// Observed state of an AuthPolicy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicyStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: Accepted, ResolvedRefs, Ready, Reconciling and,
    /// for errors that need a person, Stalled. One per type.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The upstream URL the gateway forwards to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl AuthPolicySpec {
    /// URL the gateway forwards to, for a policy in `namespace`.
    /// `None` when there is no upstream, or it is not exactly one of
    /// `service` and `url`.
    pub fn upstream_url(&self, namespace: &str) -> Option<String> {
        let upstream = self.upstream.as_ref()?;
        match (&upstream.service, &upstream.url) {
            (Some(svc), None) => Some(format!("http://{}.{namespace}.svc:{}", svc.name, svc.port)),
            (None, Some(url)) => Some(url.clone()),
            _ => None,
        }
    }
}
