//! The cookie-session authenticator: a browser that signed in earlier.

use std::future::Future;

use http::HeaderMap;

use super::{Authenticator, Caller, Rejection, Verdict};
use crate::gateway::session::{Present, SessionStore, SessionView};

/// A browser with a live session: the opened record and the cookies that
/// carried it (to replace them when the session is refreshed).
pub struct SessionCaller {
    record: Vec<u8>,
    /// Which session cookies carried it.
    pub present: Present,
}

impl SessionCaller {
    /// The session, decoded in place.
    pub fn view(&self) -> SessionView<'_> {
        SessionView::decode(&self.record).expect("the authenticator checked that the record decodes")
    }
}

impl std::fmt::Debug for SessionCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The record holds tokens.
        f.debug_struct("SessionCaller").field("present", &self.present).finish_non_exhaustive()
    }
}

/// Authenticates by the session a [`SessionStore`] loads.
///
/// - No session cookie, or one that does not open (another gateway's of
///   the same name, on a shared cookie domain, or tampered with):
///   `NotMine`, and nothing of it is ever deleted.
/// - A record of ours that has ended: `Reject` with the cookies to drop.
/// - A live record: the caller.
pub struct SessionAuthenticator<S> {
    store: S,
}

impl<S> SessionAuthenticator<S> {
    /// Authenticates by the sessions in `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: SessionStore> Authenticator for SessionAuthenticator<S> {
    fn authenticate(&self, headers: &HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send {
        let loaded = self.store.load(headers);
        async move {
            let loaded = loaded.await;
            let Some(record) = loaded.record else {
                return Verdict::NotMine;
            };
            match SessionView::decode(&record) {
                Ok(view) if view.is_live(now) => {
                    Verdict::Caller(Caller::Session(SessionCaller { record, present: loaded.present }))
                }
                _ => Verdict::Reject(Rejection::SessionEnded(loaded.present)),
            }
        }
    }
}

#[cfg(test)]
impl SessionCaller {
    /// A caller with an arbitrary valid record, for the chain's tests.
    pub(super) fn for_tests() -> Self {
        let session = crate::gateway::session::Session {
            provider: "p".into(),
            subject: "s".into(),
            user: "u".into(),
            email: None,
            groups: vec![],
            access_token: "t".into(),
            refresh_token: None,
            access_issued_at: 0,
            access_expires_at: 0,
            expires_at: u64::MAX,
            id_token: None,
        };
        Self { record: session.encode(), present: Present::default() }
    }
}
