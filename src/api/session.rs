//! `AuthPolicy.spec.session`: how long sessions live, where they are kept,
//! how often they are re-checked, and how to end them all at once.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::upstream::{CaBundle, KeyRef};

/// Session lifetime when a policy sets none.
pub const DEFAULT_SESSION_TTL: &str = "12h";
/// Re-validation interval when a policy sets none.
pub const DEFAULT_REVALIDATE: &str = "15m";

/// Session settings: lifetime, cookie, store, re-validation and
/// revocation of every session at once.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.cookieName) || !self.cookieName.startsWith('__Host-') || !has(self.cookieDomain)").message("a session.cookieName starting with __Host- cannot have a cookieDomain"))]
#[x_kube(validation = Rule::new("(has(self.store) && self.store == 'Redis') == has(self.redis)").message("session.redis is required with store: Redis, and only then"))]
#[serde(rename_all = "camelCase")]
pub struct SessionSettings {
    /// Session lifetime, as a duration such as `12h` or `30m`.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("session.ttl must be a duration such as 30m, 12h or 1h30m"))]
    #[schemars(length(max = 32))]
    #[serde(default = "default_ttl")]
    pub ttl: String,
    /// Name of the session cookie. Default `_authgate_` plus a hash of the
    /// policy's namespace and name, so two policies that share a cookie
    /// domain never overwrite each other's sessions. A name starting with
    /// `__Host-` makes browsers bind the cookie to the exact host (https
    /// only, no `cookieDomain`); `__Secure-` requires https.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_-]+$')").message("session.cookieName may contain only letters, digits, '_' and '-'"))]
    #[schemars(length(min = 1, max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_name: Option<String>,
    /// Domain attribute of the cookie, to share a session across subdomains.
    #[x_kube(validation = Rule::new("self.matches('^\\\\.?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\\\.)+[A-Za-z]{2,63}$')").message("session.cookieDomain must be a bare hostname such as example.com"))]
    #[schemars(length(max = 254))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    /// Where session records live. `Cookie` (the default): sealed into the
    /// browser's cookies, so nothing server-side can take one back before
    /// it expires, except `notBefore` and SessionRevocations. `Redis`: the
    /// cookie holds only an opaque ticket, the record lives in Redis, and
    /// sign-out ends the session on every replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<SessionStoreKind>,
    /// The Redis (or Valkey) server, with `store: Redis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSettings>,
    /// Every session issued before this instant (RFC 3339) is ended on its
    /// next request, on every replica, without restarting the gateway. Set
    /// it to now to sign everyone out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// How often a live session is checked again against the identity
    /// provider (token refresh and profile, or GitHub's orgs and teams) and
    /// the current access rules, as a duration such as `15m` (the default).
    /// A user who no longer passes is signed out on their next request.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("session.revalidate must be a duration such as 5m, 15m or 1h"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revalidate: Option<String>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl: default_ttl(),
            cookie_name: None,
            cookie_domain: None,
            store: None,
            redis: None,
            not_before: None,
            revalidate: None,
        }
    }
}

fn default_ttl() -> String {
    DEFAULT_SESSION_TTL.to_owned()
}

/// Where session records are kept.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SessionStoreKind {
    /// Sealed into the browser's cookies (AES-256-GCM).
    #[default]
    Cookie,
    /// In Redis or Valkey; the cookie carries a sealed random ticket.
    Redis,
}

/// A Redis or Valkey server, standalone or behind Sentinel.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.address) != has(self.sentinel)").message("session.redis must set exactly one of address or sentinel"))]
#[serde(rename_all = "camelCase")]
pub struct RedisSettings {
    /// `host:port` of a standalone server, e.g. `redis.cache.svc:6379`.
    #[x_kube(validation = Rule::new(HOST_PORT).message(HOST_PORT_MESSAGE))]
    #[schemars(length(min = 1, max = 261))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Sentinels that name the current primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<RedisSentinel>,
    /// ACL user name (Redis 6+); without it, the password is the
    /// `requirepass` one.
    #[schemars(length(min = 1, max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password, from a key of a Secret in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<KeyRef>,
    /// Database number.
    #[schemars(range(min = 0, max = 255))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<u8>,
    /// TLS to the server (and to the sentinels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RedisTls>,
}

/// Redis Sentinel discovery.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisSentinel {
    /// The monitored primary's name, e.g. `mymaster`.
    #[schemars(length(min = 1, max = 128))]
    pub master_name: String,
    /// `host:port` of each sentinel.
    #[x_kube(validation = Rule::new(ALL_HOST_PORTS).message(HOST_PORT_MESSAGE))]
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 261)))]
    pub addresses: Vec<String>,
}

/// TLS towards Redis.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisTls {
    /// Roots that sign the server's certificate (a private CA), instead of
    /// the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
}

const HOST_PORT: &str =
    "self.matches('^[A-Za-z0-9.-]+:[0-9]{1,5}$') || self.matches('^\\\\[[0-9A-Fa-f:.]+\\\\]:[0-9]{1,5}$')";
const ALL_HOST_PORTS: &str =
    "self.all(a, a.matches('^[A-Za-z0-9.-]+:[0-9]{1,5}$') || a.matches('^\\\\[[0-9A-Fa-f:.]+\\\\]:[0-9]{1,5}$'))";
const HOST_PORT_MESSAGE: &str = "Redis addresses must be host:port, e.g. redis.cache.svc:6379 or [::1]:6379";
