//! The gateway's chain, in its fixed order: the session cookie, then a
//! bearer JWT, an ApiToken, a device-flow token. Each machine
//! authenticator recognizes its own tokens and says `NotMine` to the
//! others', so the order decides only what a request carrying both a
//! cookie and a token is: a browser.

use http::HeaderMap;

use super::api_token::ApiTokenAuthenticator;
use super::bearer::BearerAuthenticator;
use super::device::DeviceAuthenticator;
use super::{Authenticator, SessionAuthenticator, Verdict};
use crate::gateway::session::Sessions;

/// One link of the chain.
pub enum Link<'g> {
    /// The session cookie.
    Session(SessionAuthenticator<'g, Sessions<'g>>),
    /// A bearer JWT of a trusted issuer.
    Bearer(&'g BearerAuthenticator),
    /// An ApiToken of the policy.
    ApiToken(&'g ApiTokenAuthenticator),
    /// A device-flow token.
    Device(&'g DeviceAuthenticator),
}

impl Authenticator for Link<'_> {
    async fn authenticate(&self, headers: &HeaderMap, now: u64) -> Verdict {
        match self {
            Self::Session(a) => a.authenticate(headers, now).await,
            Self::Bearer(a) => a.authenticate(headers, now).await,
            Self::ApiToken(a) => a.authenticate(headers, now).await,
            Self::Device(a) => a.authenticate(headers, now).await,
        }
    }
}
