//! Path routes of a policy: more upstreams behind one gateway, each with
//! the credentials it needs injected; public paths; CORS.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::upstream::{KeyRef, Upstream};

/// A request path prefix or public path: starts with `/`, and has no dot
/// segment, empty segment, percent-escape, query or fragment, so it means
/// the same to the gateway and to every upstream.
pub(crate) const PATH: &str =
    "self.startsWith('/') && !self.matches('(^|/)[.][.]?(/|$)|//|[%?#\\\\\\\\]') && !self.matches('[[:space:]]')";
const PATH_MESSAGE: &str =
    "must start with '/' and contain no '.' or '..' segment, '//', '%', '?', '#', '\\' or whitespace";

/// Requests under one path prefix, sent to their own upstream with their
/// own credentials.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.tokenAuth) || !has(self.headers) || !self.headers.exists(h, h.name.lowerAscii() == 'authorization')").message("a route with tokenAuth cannot also inject an Authorization header"))]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The path prefix this route serves, matched on whole segments after
    /// the path is normalized: `/api` serves `/api` and `/api/x`, never
    /// `/apix`. The longest matching prefix wins.
    #[x_kube(validation = Rule::new(PATH).message(format!("routes[].pathPrefix {PATH_MESSAGE}").as_str()))]
    #[schemars(length(min = 1, max = 256))]
    pub path_prefix: String,
    /// Where this route's requests go.
    pub upstream: Upstream,
    /// Only these methods take this route (upper case, e.g. `GET`); other
    /// methods fall through to a shorter prefix or `spec.upstream`.
    /// Empty: every method.
    #[x_kube(validation = Rule::new("self.all(m, m.matches('^[A-Z]+$'))").message("routes[].methods must be upper-case method names such as GET"))]
    #[schemars(length(max = 16), inner(length(min = 1, max = 32)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Remove `pathPrefix` before forwarding: `/github/repos` reaches the
    /// upstream as `/repos`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
    /// Headers set on every request of this route, with values read from
    /// Secrets. They replace any header of that name the client sent.
    #[x_kube(validation = Rule::new("self.all(h, self.exists_one(g, g.name.lowerAscii() == h.name.lowerAscii()))").message("routes[].headers must not name a header twice"))]
    #[schemars(length(max = 8))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<InjectedHeader>,
    /// Obtain an OAuth2 access token with the `client_credentials` grant,
    /// renew it before it expires, and send it as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<TokenAuth>,
    /// Also send the signed-in user's own access token. Off by default on
    /// a route that injects credentials: the upstream gets the route's
    /// credentials and the identity headers, never the user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_access_token: Option<bool>,
    /// CORS for this route, replacing the policy's `cors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
}

/// A header whose value comes from a Secret.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InjectedHeader {
    /// Header name, e.g. `Authorization` or `X-Api-Key`.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9!#$&*+^_`|~.-]+$') && !(self.lowerAscii() in ['host', 'cookie', 'connection', 'content-length', 'transfer-encoding', 'te', 'upgrade', 'trailer', 'keep-alive', 'proxy-connection'])").message("routes[].headers[].name must be a header name other than Host, Cookie or a hop-by-hop header"))]
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Put before the Secret's value, e.g. `"Bearer "` or `"token "`.
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Where the value comes from.
    pub value_from: ValueFrom,
}

/// The source of a header value.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the policy's namespace.
    pub secret_key_ref: KeyRef,
}

/// The OAuth2 `client_credentials` grant (RFC 6749 §4.4).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.audience) || !has(self.resource)").message("tokenAuth sets audience or resource, not both"))]
#[serde(rename_all = "camelCase")]
pub struct TokenAuth {
    /// The token endpoint. Must be https:// except for loopback hosts.
    #[x_kube(validation = Rule::new(super::rules::SECURE_URL).message(format!("tokenAuth.tokenUrl {}", super::rules::SECURE_URL_MESSAGE).as_str()))]
    #[schemars(length(min = 1, max = 2048))]
    pub token_url: String,
    /// OAuth2 client ID.
    #[schemars(length(min = 1, max = 512))]
    pub client_id: String,
    /// The client secret, in a Secret of the policy's namespace. Sent with
    /// HTTP Basic authentication.
    pub client_secret_ref: KeyRef,
    /// Scopes to request.
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The `audience` parameter (Auth0, Okta and others).
    #[schemars(length(min = 1, max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The `resource` parameter (RFC 8707 resource indicators): an
    /// absolute URI naming the upstream.
    #[x_kube(validation = Rule::new("isURL(self)").message("tokenAuth.resource must be an absolute URI"))]
    #[schemars(length(min = 1, max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// More form parameters for the token request. They cannot replace
    /// `grant_type`, `client_id`, `client_secret`, `scope`, `audience` or
    /// `resource`; a policy that tries is reported Invalid.
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// Cross-origin requests a browser may make to the service (CORS). The
/// gateway answers preflight `OPTIONS` itself, without a session, and only
/// for allowed origins; other origins get no CORS headers at all.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!(self.allowCredentials && self.allowedOrigins.exists(o, o == '*'))").message("cors: allowCredentials cannot be combined with the '*' origin"))]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    /// Origins, exactly as browsers send them (`https://app.example.com`),
    /// or `*` for any origin (without credentials).
    #[x_kube(validation = Rule::new("self.all(o, o == '*' || o.matches('^https?://[^/?#@]+$'))").message("cors.allowedOrigins entries must be scheme://host[:port] with no path, or '*'"))]
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 256)))]
    pub allowed_origins: Vec<String>,
    /// Methods allowed cross-origin. Default `GET, HEAD, POST`.
    #[x_kube(validation = Rule::new("self.all(m, m.matches('^[A-Z]+$'))").message("cors.allowedMethods must be upper-case method names such as PUT"))]
    #[schemars(length(max = 16), inner(length(min = 1, max = 32)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed cross-origin, e.g. `Content-Type`.
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Response headers the page's scripts may read.
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Let the page send cookies (the session) cross-origin.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer, in seconds.
    #[schemars(range(min = 0, max = 86400))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}
