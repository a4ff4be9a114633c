//! The cookie-session authenticator: a browser that signed in earlier.

use std::future::Future;

use http::HeaderMap;

use super::{Authenticator, Caller, Rejection, Verdict};
use crate::gateway::metrics::Metrics;
use crate::gateway::session::revocations::{Logouts, Revocations};
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
/// - A record of ours that has ended (expired, or revoked by `notBefore`,
///   a SessionRevocation or a back-channel logout), or a server-side
///   ticket whose record is gone: `Reject` with the cookies to drop.
/// - The store could not be asked: `Reject(StoreUnavailable)`.
/// - A live record: the caller.
pub struct SessionAuthenticator<'g, S> {
    store: S,
    ended: Option<Ended<'g>>,
}

/// What ends sessions besides their expiry.
#[derive(Clone, Copy)]
pub struct Ended<'g> {
    /// From the config: `notBefore` and SessionRevocations.
    pub revocations: &'g Revocations,
    /// Back-channel logouts this gateway received.
    pub logouts: &'g Logouts,
    /// Where revocations are counted.
    pub metrics: &'g Metrics,
}

impl<'g, S> SessionAuthenticator<'g, S> {
    /// Authenticates by the sessions in `store`, applying no revocations.
    pub fn new(store: S) -> Self {
        Self { store, ended: None }
    }

    /// Authenticates by the sessions in `store`, refusing those `ended`
    /// names.
    pub fn with_revocations(store: S, ended: Ended<'g>) -> Self {
        Self { store, ended: Some(ended) }
    }
}

impl<S: SessionStore> Authenticator for SessionAuthenticator<'_, S> {
    fn authenticate(&self, headers: &HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send {
        let loaded = self.store.load(headers);
        let ended = self.ended;
        async move {
            let loaded = loaded.await;
            if loaded.unavailable {
                return Verdict::Reject(Rejection::StoreUnavailable);
            }
            let Some(record) = loaded.record else {
                // A ticket of ours whose record is gone: the session ended.
                return match loaded.ticket {
                    Some(_) => Verdict::Reject(Rejection::SessionEnded(loaded.present)),
                    None => Verdict::NotMine,
                };
            };
            match SessionView::decode(&record) {
                Ok(view) if view.is_live(now) => {
                    if let Some(ended) = ended
                        && let Some(why) = ended.revocations.check(&view).or_else(|| ended.logouts.check(&view))
                    {
                        ended.metrics.session_revoked(why.label());
                        tracing::info!(
                            provider = view.provider,
                            user = view.user,
                            reason = why.label(),
                            "session revoked"
                        );
                        return Verdict::Reject(Rejection::SessionEnded(loaded.present));
                    }
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
            id: [1; crate::gateway::session::SESSION_ID_BYTES],
            issued_at: 0,
            validated_at: 0,
            idp_sid: None,
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
