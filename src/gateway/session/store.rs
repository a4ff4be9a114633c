//! Where session records are kept: the [`SessionStore`] contract, and the
//! encrypted-cookie store that implements it.
//!
//! A store loads the record a request carries, saves a new or refreshed
//! one (writing whatever cookies carry or reference it), and ends one at
//! sign-out. The methods are async because a server-side store (Redis,
//! [`super::redis_store`]) does I/O; the cookie store completes at once.
//! [`Sessions`] is the one a gateway's config selects.

use std::future::Future;

use axum::http::HeaderMap;

use super::cookies::{CookieSettings, Present};
use super::{Keyring, SESSION_ID_BYTES, Session};
use crate::gateway::error::Error;

/// What a request carried.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The decoded-ready session record, if one opened.
    pub record: Option<Vec<u8>>,
    /// Which session cookies (chunks) the request had, opened or not.
    pub present: Present,
    /// A server-side store's ticket that opened: the cookie is ours, so a
    /// missing record means the session has ended.
    pub ticket: Option<Ticket>,
    /// The store could not be asked (Redis down): the request must fail
    /// closed, neither admitted nor sent to sign in.
    pub unavailable: bool,
}

/// Random bytes of a ticket's secret.
pub const TICKET_SECRET_BYTES: usize = 32;

/// What a server-side session cookie carries: the session id and a random
/// secret whose hash the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    pub(super) id: [u8; SESSION_ID_BYTES],
    pub(super) secret: [u8; TICKET_SECRET_BYTES],
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is a credential.
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}

/// Keeps session records. See the module docs.
pub trait SessionStore: Sync {
    /// The session record `headers` carry, if one is there and opens.
    fn load(&self, headers: &HeaderMap) -> impl Future<Output = Loaded> + Send;

    /// Stores `session` and writes into `out` the cookies that carry it,
    /// replacing the `present` ones.
    fn save(
        &self,
        session: &Session,
        present: Present,
        out: &mut HeaderMap,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Ends the session `loaded` from a request: forgets it server-side
    /// (best effort: a failure is logged and counted), and writes into
    /// `out` the removal of the cookies that carried it.
    fn end(&self, loaded: &Loaded, out: &mut HeaderMap) -> impl Future<Output = ()> + Send;

    /// Ends every session of one user at `provider`: those of `subject`,
    /// and those of the provider session `sid` (back-channel logout).
    /// `Ok(false)`: this store cannot (the cookie store keeps nothing to
    /// delete).
    fn end_user(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// Sessions kept entirely in the browser: the record sealed with the
/// keyring (AES-256-GCM, the cookie name as associated data) and chunked
/// into cookies. Nothing is stored server-side, so any replica serves any
/// request, and ending a session can only delete the browser's copy.
pub struct CookieStore<'g> {
    keyring: &'g Keyring,
    cookies: &'g CookieSettings,
}

impl<'g> CookieStore<'g> {
    /// The store over a gateway's keyring and cookie settings.
    pub fn new(keyring: &'g Keyring, cookies: &'g CookieSettings) -> Self {
        Self { keyring, cookies }
    }

    fn open(&self, headers: &HeaderMap) -> Loaded {
        let (sealed, present) = self.cookies.read_session(headers);
        let record = sealed.and_then(|s| self.keyring.open(self.cookies.name().as_bytes(), &s));
        Loaded { record, present, ..Loaded::default() }
    }

    fn seal(&self, session: &Session, present: Present, out: &mut HeaderMap) -> Result<(), Error> {
        let sealed = self.keyring.seal(self.cookies.name().as_bytes(), &session.encode());
        self.cookies.write_session(&sealed, present, out)?;
        Ok(())
    }
}

impl SessionStore for CookieStore<'_> {
    fn load(&self, headers: &HeaderMap) -> impl Future<Output = Loaded> + Send {
        std::future::ready(self.open(headers))
    }

    fn save(
        &self,
        session: &Session,
        present: Present,
        out: &mut HeaderMap,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        std::future::ready(self.seal(session, present, out))
    }

    fn end(&self, loaded: &Loaded, out: &mut HeaderMap) -> impl Future<Output = ()> + Send {
        self.cookies.clear_session(loaded.present, out);
        std::future::ready(())
    }

    fn end_user(&self, _: &str, _: Option<&str>, _: Option<&str>) -> impl Future<Output = Result<bool, Error>> + Send {
        std::future::ready(Ok(false))
    }
}
