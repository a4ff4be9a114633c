//! Which live sessions have been ended without their cookies being
//! deleted: by the policy's `notBefore`, by SessionRevocations (both from
//! the config, so every replica applies them), and by back-channel logouts
//! this gateway received ([`Logouts`], kept in memory across reloads).
//!
//! Checked on every request after the record opens, so the check reads
//! only borrowed data: two hash lookups and, when logouts were received,
//! a scan of a short list.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::SessionView;
use crate::contract::session::SessionConfig;

/// Why a session that opened has nevertheless ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Issued before the policy's `session.notBefore`.
    NotBefore,
    /// Issued before a SessionRevocation of its user.
    User,
    /// Its user (or provider session) was logged out at the provider.
    Logout,
}

impl Revoked {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotBefore => "not_before",
            Self::User => "user",
            Self::Logout => "backchannel_logout",
        }
    }
}

/// The revocations a config carries, indexed for the per-request check.
#[derive(Debug, Default)]
pub struct Revocations {
    not_before: u64,
    by_user: HashMap<String, u64>,
    by_email: HashMap<String, u64>,
}

impl Revocations {
    /// Indexes `session`'s `notBefore` and per-user revocations. Of several
    /// for one user, the latest `before` wins.
    pub fn new(session: &SessionConfig) -> Self {
        let mut out = Self { not_before: session.not_before, ..Self::default() };
        for r in &session.revocations {
            if let Some(user) = &r.user {
                let e = out.by_user.entry(user.clone()).or_default();
                *e = (*e).max(r.before);
            }
            if let Some(email) = &r.email {
                let e = out.by_email.entry(email.to_ascii_lowercase()).or_default();
                *e = (*e).max(r.before);
            }
        }
        out
    }

    /// Whether `view` has been ended by the config, and how.
    pub fn check(&self, view: &SessionView<'_>) -> Option<Revoked> {
        self.check_issued(view.issued_at, view.user, view.email)
    }

    /// Whether a credential of `user` (and `email`) issued at `issued_at`
    /// has been ended by the config: sessions and device tokens alike.
    pub fn check_issued(&self, issued_at: u64, user: &str, email: Option<&str>) -> Option<Revoked> {
        if issued_at < self.not_before {
            return Some(Revoked::NotBefore);
        }
        if self.by_user.get(user).is_some_and(|&before| issued_at < before) {
            return Some(Revoked::User);
        }
        if !self.by_email.is_empty()
            && let Some(email) = email
            && self.by_email.get(&email.to_ascii_lowercase()).is_some_and(|&before| issued_at < before)
        {
            return Some(Revoked::User);
        }
        None
    }
}

/// Most back-channel logouts remembered at once; the oldest is dropped
/// first (it is also the first to stop mattering).
pub const MAX_LOGOUTS: usize = 4096;

/// One back-channel logout: the sessions it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    /// The provider that sent it.
    pub provider: String,
    /// Every session of this subject, when the token named one.
    pub subject: Option<String>,
    /// The provider session (`sid`), when the token named one.
    pub sid: Option<String>,
    /// Sessions issued before this (Unix seconds) end.
    pub before: u64,
    /// When it can be forgotten: `before` plus the session lifetime.
    pub until: u64,
}

impl Logout {
    fn ends(&self, view: &SessionView<'_>) -> bool {
        view.issued_at < self.before
            && view.provider == self.provider
            && match (&self.subject, &self.sid) {
                (Some(sub), Some(sid)) => view.subject == sub && view.idp_sid == Some(sid.as_str()),
                (Some(sub), None) => view.subject == sub,
                (None, Some(sid)) => view.idp_sid == Some(sid.as_str()),
                (None, None) => false,
            }
    }
}

/// Back-channel logouts this gateway received, for stores that cannot
/// delete sessions they do not hold (cookies). Lock-free to read: the list
/// is replaced whole when one is added.
#[derive(Debug, Default)]
pub struct Logouts {
    list: ArcSwap<Vec<Logout>>,
}

impl Logouts {
    /// Remembers `logout`, forgetting those whose sessions have all expired
    /// by `now`.
    pub fn add(&self, logout: Logout, now: u64) {
        self.list.rcu(|current| {
            let mut next: Vec<Logout> = current.iter().filter(|l| l.until > now).cloned().collect();
            if next.len() >= MAX_LOGOUTS {
                next.remove(0);
            }
            next.push(logout.clone());
            Arc::new(next)
        });
    }

    /// Whether a remembered logout ends `view`.
    pub fn check(&self, view: &SessionView<'_>) -> Option<Revoked> {
        let list = self.list.load();
        list.iter().any(|l| l.ends(view)).then_some(Revoked::Logout)
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.list.load().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::session::UserRevocation;
    use crate::gateway::session::Session;
    use crate::gateway::session::tests::sample;

    fn check(r: &Revocations, s: &Session) -> Option<Revoked> {
        r.check(&SessionView::decode(&s.encode()).unwrap())
    }

    #[test]
    fn not_before_and_user_revocations_end_only_earlier_sessions_of_theirs() {
        let config = SessionConfig {
            not_before: 500,
            revocations: vec![
                UserRevocation { user: Some("alice@example.com".into()), email: None, before: 1000 },
                UserRevocation { user: None, email: Some("BOB@example.com".into()), before: 2000 },
            ],
            ..SessionConfig::default()
        };
        let r = Revocations::new(&config);
        let alice = |at| Session { issued_at: at, ..sample() };
        assert_eq!(check(&r, &alice(499)), Some(Revoked::NotBefore));
        assert_eq!(check(&r, &alice(999)), Some(Revoked::User));
        assert_eq!(check(&r, &alice(1000)), None);
        let bob = |at| Session { issued_at: at, user: "bob".into(), email: Some("bob@example.com".into()), ..sample() };
        assert_eq!(check(&r, &bob(1999)), Some(Revoked::User));
        assert_eq!(check(&r, &bob(2000)), None);
        let carol = Session { issued_at: 600, user: "carol".into(), email: None, ..sample() };
        assert_eq!(check(&r, &carol), None);
    }

    #[test]
    fn logouts_match_provider_and_subject_or_sid_and_expire() {
        let logouts = Logouts::default();
        let s = Session { issued_at: 100, ..sample() };
        let view = |s: &Session| SessionView::decode(&s.encode()).unwrap().to_session();
        let matches = |l: &Logouts, s: &Session| l.check(&SessionView::decode(&s.encode()).unwrap());
        logouts.add(
            Logout { provider: "other".into(), subject: Some(s.subject.clone()), sid: None, before: 200, until: 300 },
            0,
        );
        assert_eq!(matches(&logouts, &s), None, "another provider's subject");
        logouts.add(
            Logout { provider: "corp".into(), subject: None, sid: Some("op-sid".into()), before: 200, until: 300 },
            0,
        );
        assert_eq!(matches(&logouts, &view(&s)), Some(Revoked::Logout));
        let later = Session { issued_at: 200, ..s.clone() };
        assert_eq!(matches(&logouts, &later), None, "signed in again after the logout");
        // Adding at 300 forgets both.
        logouts.add(Logout { provider: "x".into(), subject: Some("y".into()), sid: None, before: 1, until: 400 }, 300);
        assert_eq!(logouts.len(), 1);
    }
}
