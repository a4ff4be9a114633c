//! `gateway.yaml`'s `session`: cookie, keys, store, re-validation and the
//! revocations in force. Everything here reloads without a restart.

use serde::{Deserialize, Serialize};

use super::redacted::Redacted;

/// Default session lifetime, in seconds (12 h).
pub const DEFAULT_TTL_SECONDS: u64 = 12 * 3600;
/// Default re-validation interval, in seconds (15 min).
pub const DEFAULT_REVALIDATE_SECONDS: u64 = 15 * 60;
/// How long past a due re-validation a session keeps working while the
/// identity provider cannot be reached, in seconds (5 min). After that the
/// session fails closed: its user is sent to sign in again.
pub const DEFAULT_REVALIDATE_GRACE_SECONDS: u64 = 5 * 60;
/// Most per-user revocations one gateway config carries; the controller
/// keeps the newest and says so in status.
pub const MAX_REVOCATIONS: usize = 256;

/// Session cookie settings, keys, store and revocations.
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
    /// encrypts; all decrypt, so a rotated-out key keeps sessions alive
    /// until it is retired.
    pub keys: Vec<Redacted>,
    /// Where session records live.
    #[serde(default, skip_serializing_if = "StoreConfig::is_cookie")]
    pub store: StoreConfig,
    /// Sessions issued before this instant (Unix seconds) are ended; 0: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_before: u64,
    /// Per-user revocations in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<UserRevocation>,
    /// Seconds between re-validations of a live session; 0 turns them off.
    #[serde(default = "default_revalidate")]
    pub revalidate_seconds: u64,
    /// Seconds a due re-validation may keep failing (the provider down)
    /// before the session fails closed.
    #[serde(default = "default_grace")]
    pub revalidate_grace_seconds: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "_authgate".into(),
            cookie_domain: None,
            ttl_seconds: DEFAULT_TTL_SECONDS,
            keys: Vec::new(),
            store: StoreConfig::Cookie,
            not_before: 0,
            revocations: Vec::new(),
            revalidate_seconds: DEFAULT_REVALIDATE_SECONDS,
            revalidate_grace_seconds: DEFAULT_REVALIDATE_GRACE_SECONDS,
        }
    }
}

/// Ends the sessions of one user issued before `before`. A session matches
/// when its user equals `user`, or its verified email equals `email`
/// (ASCII case-insensitively); a revocation naming both matches either.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRevocation {
    /// The forwarded user name, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The verified email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Unix seconds; sessions issued earlier end.
    pub before: u64,
}

impl UserRevocation {
    /// Whether this revocation ends a session of `user` / `email` that was
    /// issued at `issued_at`.
    pub fn ends(&self, user: &str, email: Option<&str>, issued_at: u64) -> bool {
        issued_at < self.before
            && (self.user.as_deref() == Some(user)
                || matches!((self.email.as_deref(), email), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b)))
    }
}

/// Where session records live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", tag = "type", deny_unknown_fields)]
pub enum StoreConfig {
    /// Sealed into the browser's cookies.
    #[default]
    Cookie,
    /// In Redis; the cookie carries a sealed ticket.
    Redis(RedisConfig),
}

impl StoreConfig {
    /// Whether sessions live in cookies only.
    pub fn is_cookie(&self) -> bool {
        matches!(self, Self::Cookie)
    }
}

/// A Redis or Valkey server, resolved: the password is the value itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisConfig {
    /// `host:port` of a standalone server, or of each sentinel when
    /// `sentinelMaster` is set.
    pub addresses: Vec<String>,
    /// The primary's name at the sentinels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_master: Option<String>,
    /// ACL user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Redacted>,
    /// Database number.
    #[serde(default)]
    pub database: u8,
    /// TLS: `Some` turns it on; the PEM roots replace the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RedisTlsConfig>,
    /// Prefix of every key this gateway writes, so policies can share a
    /// server: by default the cookie name and a colon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
}

/// TLS towards Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisTlsConfig {
    /// PEM roots, instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

fn default_revalidate() -> u64 {
    DEFAULT_REVALIDATE_SECONDS
}
fn default_grace() -> u64 {
    DEFAULT_REVALIDATE_GRACE_SECONDS
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_ends_only_earlier_sessions_of_its_user() {
        let by_user = UserRevocation { user: Some("alice".into()), email: None, before: 100 };
        assert!(by_user.ends("alice", None, 99));
        assert!(!by_user.ends("alice", None, 100), "signed in at or after `before`");
        assert!(!by_user.ends("Alice", None, 0), "user names match exactly");
        assert!(!by_user.ends("bob", Some("alice"), 0));
        let by_email = UserRevocation { user: None, email: Some("Alice@Example.com".into()), before: 100 };
        assert!(by_email.ends("a1", Some("alice@example.com"), 50));
        assert!(!by_email.ends("alice@example.com", None, 50), "no email, no match");
    }

    #[test]
    fn defaults_keep_old_configs_reading() {
        let c: SessionConfig =
            serde_saphyr::from_str("cookieName: _a\nttlSeconds: 60\nkeys: []\n").expect("an old session block");
        assert_eq!(c.store, StoreConfig::Cookie);
        assert_eq!(c.revalidate_seconds, DEFAULT_REVALIDATE_SECONDS);
        assert!(c.revocations.is_empty() && c.not_before == 0);
    }
}
