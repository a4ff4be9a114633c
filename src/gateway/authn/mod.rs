//! Who is calling: a chain of authenticators, asked in order (as
//! oauth2-proxy's session loaders are). Each looks for its own kind of
//! credential and answers one of:
//!
//! - [`Verdict::Caller`]: the credential is there and good; the chain stops.
//! - [`Verdict::NotMine`]: no credential of this kind; the next one is asked.
//! - [`Verdict::Reject`]: a credential of this kind that is bad; the chain
//!   stops, and the request is refused even if a later authenticator would
//!   have accepted something else, so a bad credential is never silently
//!   ignored.
//!
//! When every authenticator says `NotMine`, the caller is anonymous.
//!
//! The cookie session ([`session`]) is the first authenticator. Bearer
//! JWTs ([`bearer`]), ApiTokens ([`api_token`]) and device-flow tokens
//! ([`device`]) are next, each an authenticator of its own ([`chain`]);
//! what they establish is a [`MachineCaller`].

pub mod api_token;
pub mod bearer;
pub mod chain;
pub mod device;
pub mod machine;
pub mod session;

use std::future::Future;

use crate::gateway::session::Present;

pub use chain::Link;
pub use machine::MachineCaller;
pub use session::{SessionAuthenticator, SessionCaller};

/// A caller an authenticator established.
#[derive(Debug)]
pub enum Caller {
    /// A browser with a live session.
    Session(SessionCaller),
    /// A service, CI job or CLI with a machine credential. Shared, so a
    /// cache of verified credentials hands it out without copying.
    Machine(std::sync::Arc<MachineCaller>),
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A session of ours that has ended (expired): sign in again, and drop
    /// the cookies that carried it.
    SessionEnded(Present),
    /// The session store could not be asked (Redis down): neither admit
    /// nor send to sign in; answer 503 and keep the cookies.
    StoreUnavailable,
    /// A machine credential that does not verify: 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
    /// The reason is a metrics label and a log word, never a token part.
    InvalidToken(&'static str),
    /// A bearer JWT of a trusted issuer whose keys cannot be had right
    /// now: 503, since the token may well be good.
    IssuerUnavailable,
}

/// One authenticator's answer. See the module docs.
#[derive(Debug)]
pub enum Verdict {
    /// The credential is good.
    Caller(Caller),
    /// No credential of this kind.
    NotMine,
    /// A bad credential of this kind.
    Reject(Rejection),
}

/// What the whole chain concluded.
#[derive(Debug)]
pub enum Authn {
    /// An authenticator accepted the request.
    Caller(Caller),
    /// An authenticator refused it.
    Rejected(Rejection),
    /// No authenticator found a credential of its kind.
    Anonymous,
}

/// Looks for one kind of credential on a request.
pub trait Authenticator {
    /// What this authenticator says about a request with `headers`, at
    /// Unix time `now`.
    fn authenticate(&self, headers: &http::HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send;
}

/// Runs `chain` in order over a request. See the module docs.
pub async fn authenticate<A: Authenticator>(chain: &[A], headers: &http::HeaderMap, now: u64) -> Authn {
    for authenticator in chain {
        match authenticator.authenticate(headers, now).await {
            Verdict::Caller(caller) => return Authn::Caller(caller),
            Verdict::Reject(why) => return Authn::Rejected(why),
            Verdict::NotMine => {}
        }
    }
    Authn::Anonymous
}

#[cfg(test)]
mod tests;
