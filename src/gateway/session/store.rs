//! Where session records are kept: the [`SessionStore`] contract, and the
//! encrypted-cookie store that implements it.
//!
//! A store loads the record a request carries, saves a new or refreshed
//! one (writing whatever cookies carry or reference it), and ends one at
//! sign-out. The methods are async because a server-side store (Redis)
//! does I/O; the cookie store completes at once.

use std::future::Future;

use axum::http::HeaderMap;

use super::cookies::{CookieSettings, Present};
use super::{Keyring, Session};
use crate::gateway::error::Error;

/// What a request carried.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The decoded-ready session record, if one opened.
    pub record: Option<Vec<u8>>,
    /// Which session cookies (chunks) the request had, opened or not.
    pub present: Present,
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

    /// Ends a session: forgets it, and writes into `out` the removal of the
    /// `present` cookies.
    fn end(&self, present: Present, out: &mut HeaderMap) -> impl Future<Output = ()> + Send;

    /// Ends every stored session of `provider` naming `subject` and/or the
    /// provider session `sid` (a back-channel logout). False when the store
    /// cannot find sessions that way (cookies): the caller then remembers
    /// the logout and refuses those sessions as they come.
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
        Loaded { record, present }
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

    fn end(&self, present: Present, out: &mut HeaderMap) -> impl Future<Output = ()> + Send {
        self.cookies.clear_session(present, out);
        std::future::ready(())
    }

    fn end_user(
        &self,
        _provider: &str,
        _subject: Option<&str>,
        _sid: Option<&str>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        std::future::ready(Ok(false))
    }
}
