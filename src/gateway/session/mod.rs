//! Sessions: sealed into encrypted cookies (no server-side state, so any
//! replica serves any request), or kept in Redis behind a sealed ticket.
//!
//! - [`crypto`]: AES-256-GCM keyring, cookie name as associated data.
//! - [`cookies`]: reading, chunking and writing the cookies.
//! - [`flow`]: the short-lived cookie that carries one login attempt.
//! - [`store`]: where records live: in the cookies, or in Redis
//!   ([`redis_store`] over [`redis`]) with only a ticket in the cookie.
//!
//! The session payload is a compact binary record ([`codec`]) decoded once
//! per request into a borrowed [`SessionView`], so the proxy hot path copies
//! no strings.

pub mod codec;
pub mod cookies;
pub mod crypto;
pub mod flow;
pub mod redis;
pub mod redis_store;
pub mod revocations;
#[cfg(test)]
mod session_props;
pub mod sessions;
pub mod store;

use std::time::{SystemTime, UNIX_EPOCH};

use codec::{Malformed, Reader, Writer};

pub use cookies::{CookieSettings, Present};
pub use crypto::Keyring;
pub use redis_store::{RedisSessions, RedisStore};
pub use sessions::Sessions;
pub use store::{CookieStore, Loaded, SessionStore, Ticket};

/// The record format written now. Version 2 adds the session id, the issue
/// and re-validation times and the provider's session id; version 1
/// records still open, read as issued at the epoch (so every revocation
/// covers them) and due for re-validation.
const SESSION_VERSION: u8 = 2;
const SESSION_VERSION_1: u8 = 1;

/// Bytes of a session id.
pub const SESSION_ID_BYTES: usize = 16;

/// A random session id.
pub fn new_session_id() -> [u8; SESSION_ID_BYTES] {
    use rand::RngCore;
    let mut id = [0u8; SESSION_ID_BYTES];
    rand::rng().fill_bytes(&mut id);
    id
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A signed-in user's session, owned (built at login or refresh).
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Random id, fixed for the session's life (refreshes keep it).
    pub id: [u8; SESSION_ID_BYTES],
    /// When the user signed in (Unix seconds); revocations compare to it.
    pub issued_at: u64,
    /// When the user last passed a re-validation against the provider and
    /// the policy (Unix seconds).
    pub validated_at: u64,
    /// The provider's own session id (the ID token's `sid`), which
    /// back-channel logout names.
    pub idp_sid: Option<String>,
    /// Name of the provider the user signed in with.
    pub provider: String,
    /// Stable subject at that provider.
    pub subject: String,
    /// User name forwarded as `X-Auth-Request-User`.
    pub user: String,
    /// Verified email, if any.
    pub email: Option<String>,
    /// Groups forwarded as `X-Auth-Request-Groups`.
    pub groups: Vec<String>,
    /// OAuth2 access token.
    pub access_token: String,
    /// OAuth2 refresh token, if the provider issued one.
    pub refresh_token: Option<String>,
    /// When the access token was obtained (Unix seconds).
    pub access_issued_at: u64,
    /// When the access token expires (Unix seconds); 0 when unknown.
    pub access_expires_at: u64,
    /// When the session itself ends (Unix seconds).
    pub expires_at: u64,
    /// The OpenID Connect ID token, kept only for policies that forward it.
    pub id_token: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens stay out of debug output.
        f.debug_struct("Session")
            .field("provider", &self.provider)
            .field("user", &self.user)
            .field("groups", &self.groups.len())
            .field("access_expires_at", &self.access_expires_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens stay out of debug output.
        f.debug_struct("SessionView")
            .field("provider", &self.provider)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Serializes the session (plaintext; seal it before it leaves).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            64 + self.access_token.len()
                + self.refresh_token.as_ref().map_or(0, String::len)
                + self.groups.iter().map(|g| g.len() + 2).sum::<usize>(),
        );
        w.u8(SESSION_VERSION);
        w.raw(&self.id);
        w.varint(self.issued_at);
        w.varint(self.validated_at);
        w.opt_str(self.idp_sid.as_deref());
        w.str(&self.provider);
        w.str(&self.subject);
        w.str(&self.user);
        w.opt_str(self.email.as_deref());
        w.varint(self.groups.len() as u64);
        for g in &self.groups {
            w.str(g);
        }
        w.str(&self.access_token);
        w.opt_str(self.refresh_token.as_deref());
        w.varint(self.access_issued_at);
        w.varint(self.access_expires_at);
        w.varint(self.expires_at);
        // Last, and only when present: a record without it is exactly what
        // gateways before `forward.idToken` wrote and read.
        if let Some(id_token) = &self.id_token {
            w.str(id_token);
        }
        w.finish()
    }
}

/// A session decoded in place from a decrypted cookie.
#[derive(Clone, Copy)]
pub struct SessionView<'a> {
    /// See [`Session::id`].
    pub id: [u8; SESSION_ID_BYTES],
    /// See [`Session::issued_at`].
    pub issued_at: u64,
    /// See [`Session::validated_at`].
    pub validated_at: u64,
    /// See [`Session::idp_sid`].
    pub idp_sid: Option<&'a str>,
    /// See [`Session::provider`].
    pub provider: &'a str,
    /// See [`Session::subject`].
    pub subject: &'a str,
    /// See [`Session::user`].
    pub user: &'a str,
    /// See [`Session::email`].
    pub email: Option<&'a str>,
    groups: Groups<'a>,
    /// See [`Session::access_token`].
    pub access_token: &'a str,
    /// See [`Session::refresh_token`].
    pub refresh_token: Option<&'a str>,
    /// See [`Session::access_issued_at`].
    pub access_issued_at: u64,
    /// See [`Session::access_expires_at`].
    pub access_expires_at: u64,
    /// See [`Session::expires_at`].
    pub expires_at: u64,
    /// See [`Session::id_token`].
    pub id_token: Option<&'a str>,
}

/// The encoded group list, validated at decode time.
#[derive(Clone, Copy)]
struct Groups<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> SessionView<'a> {
    /// Decodes a plaintext produced by [`Session::encode`].
    pub fn decode(buf: &'a [u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(buf);
        let (id, issued_at, validated_at, idp_sid) = match r.u8()? {
            SESSION_VERSION => {
                let id = r.bytes(SESSION_ID_BYTES)?.try_into().map_err(|_| Malformed)?;
                (id, r.varint()?, r.varint()?, r.opt_str()?)
            }
            SESSION_VERSION_1 => ([0; SESSION_ID_BYTES], 0, 0, None),
            _ => return Err(Malformed),
        };
        let provider = r.str()?;
        let subject = r.str()?;
        let user = r.str()?;
        let email = r.opt_str()?;
        let count = usize::try_from(r.varint()?).map_err(|_| Malformed)?;
        let groups_start = r.rest();
        for _ in 0..count {
            r.str()?;
        }
        let groups = Groups { raw: &groups_start[..groups_start.len() - r.rest().len()], count };
        let access_token = r.str()?;
        let refresh_token = r.opt_str()?;
        let access_issued_at = r.varint()?;
        let access_expires_at = r.varint()?;
        let expires_at = r.varint()?;
        let id_token = match r.rest() {
            [] => None,
            _ => Some(r.str()?).filter(|t| !t.is_empty()).map(Some).ok_or(Malformed)?,
        };
        r.end()?;
        Ok(Self {
            id,
            issued_at,
            validated_at,
            idp_sid,
            provider,
            subject,
            user,
            email,
            groups,
            access_token,
            refresh_token,
            access_issued_at,
            access_expires_at,
            expires_at,
            id_token,
        })
    }

    /// The groups, in order.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.groups.raw);
        (0..self.groups.count).map(move |_| r.str().unwrap_or_default())
    }

    /// Whether re-validation is due: `interval` seconds after the last one
    /// (never when `interval` is 0).
    pub fn revalidation_due(&self, now: u64, interval: u64) -> bool {
        interval != 0 && now >= self.validated_at.saturating_add(interval)
    }

    /// Whether the session is still within its lifetime.
    pub fn is_live(&self, now: u64) -> bool {
        now < self.expires_at
    }

    /// Whether the access token has expired.
    pub fn access_expired(&self, now: u64) -> bool {
        self.access_expires_at != 0 && now >= self.access_expires_at
    }

    /// Whether the access token should be refreshed now: when less than
    /// 30 s or a fifth of its lifetime (at least 1 s) is left.
    pub fn refresh_due(&self, now: u64) -> bool {
        if self.access_expires_at == 0 {
            return false;
        }
        let lifetime = self.access_expires_at.saturating_sub(self.access_issued_at);
        let margin = (lifetime / 5).clamp(1, 30);
        now.saturating_add(margin) >= self.access_expires_at
    }

    /// Owned copy, for rewriting the session.
    pub fn to_session(&self) -> Session {
        Session {
            id: self.id,
            issued_at: self.issued_at,
            validated_at: self.validated_at,
            idp_sid: self.idp_sid.map(str::to_owned),
            provider: self.provider.to_owned(),
            subject: self.subject.to_owned(),
            user: self.user.to_owned(),
            email: self.email.map(str::to_owned),
            groups: self.groups().map(str::to_owned).collect(),
            access_token: self.access_token.to_owned(),
            refresh_token: self.refresh_token.map(str::to_owned),
            access_issued_at: self.access_issued_at,
            access_expires_at: self.access_expires_at,
            expires_at: self.expires_at,
            id_token: self.id_token.map(str::to_owned),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Session {
        Session {
            id: [7; SESSION_ID_BYTES],
            issued_at: 900,
            validated_at: 950,
            idp_sid: Some("op-sid".into()),
            provider: "corp".into(),
            subject: "alice".into(),
            user: "alice@example.com".into(),
            email: Some("alice@example.com".into()),
            groups: vec!["sre".into(), "dev".into()],
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            access_issued_at: 1000,
            access_expires_at: 1100,
            expires_at: 5000,
            id_token: None,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let s = sample();
        let buf = s.encode();
        let v = SessionView::decode(&buf).unwrap();
        assert_eq!(v.groups().collect::<Vec<_>>(), ["sre", "dev"]);
        assert_eq!(v.to_session(), s);
        let none = Session { email: None, refresh_token: None, groups: vec![], ..s.clone() };
        assert_eq!(SessionView::decode(&none.encode()).unwrap().to_session(), none);
        // The ID token rides last, and only when kept: a record without it
        // is byte for byte what older gateways wrote.
        let with = Session { id_token: Some("eyJ.id.token".into()), ..s.clone() };
        let encoded = with.encode();
        assert_eq!(SessionView::decode(&encoded).unwrap().id_token, Some("eyJ.id.token"));
        assert!(encoded.starts_with(&buf));
        assert_eq!(SessionView::decode(&buf).unwrap().id_token, None);
    }

    #[test]
    fn version_1_records_still_open_as_issued_at_the_epoch() {
        // A version-1 record as gateways before session ids wrote it.
        let s = sample();
        let mut w = Writer::default();
        w.u8(1);
        w.str(&s.provider);
        w.str(&s.subject);
        w.str(&s.user);
        w.opt_str(s.email.as_deref());
        w.varint(2);
        w.str("sre");
        w.str("dev");
        w.str(&s.access_token);
        w.opt_str(s.refresh_token.as_deref());
        w.varint(s.access_issued_at);
        w.varint(s.access_expires_at);
        w.varint(s.expires_at);
        let old = w.finish();
        let v = SessionView::decode(&old).unwrap();
        assert_eq!((v.issued_at, v.validated_at, v.idp_sid, v.id), (0, 0, None, [0; SESSION_ID_BYTES]));
        assert_eq!(v.user, s.user);
        assert_eq!(v.groups().collect::<Vec<_>>(), ["sre", "dev"]);
        assert!(v.revalidation_due(1_800_000_000, 900), "an old record is due at once");
        // Re-encoding writes the current version.
        assert_eq!(v.to_session().encode()[0], SESSION_VERSION);
    }

    #[test]
    fn decode_rejects_trailing_or_truncated_or_other_versions() {
        let mut buf = sample().encode();
        assert!(SessionView::decode(&buf[..buf.len() - 1]).is_err());
        buf.push(0);
        assert!(SessionView::decode(&buf).is_err());
        buf.pop();
        buf[0] = 9;
        assert!(SessionView::decode(&buf).is_err());
    }

    #[test]
    fn refresh_timing() {
        let buf = sample().encode();
        let v = SessionView::decode(&buf).unwrap();
        // 100 s lifetime: refresh in the last 20 s.
        assert!(!v.refresh_due(1079));
        assert!(v.refresh_due(1080));
        assert!(!v.access_expired(1099));
        assert!(v.access_expired(1100));
        assert!(v.is_live(4999) && !v.is_live(5000));
        // 5 s lifetime: refresh in the last second only.
        let short = Session { access_issued_at: 0, access_expires_at: 5, ..sample() }.encode();
        let v = SessionView::decode(&short).unwrap();
        assert!(!v.refresh_due(3) && v.refresh_due(4));
        // Unknown expiry: never.
        let never = Session { access_expires_at: 0, ..sample() }.encode();
        assert!(!SessionView::decode(&never).unwrap().refresh_due(u64::MAX - 1));
    }
}
