//! ApiTokens of the policy (`machine.apiTokens` of gateway.yaml: hashes
//! only).
//!
//! Not yet implemented: every request is `NotMine` here.

use std::future::Future;

use http::HeaderMap;

use super::{Authenticator, Verdict};
use crate::contract::machine::ApiTokenEntry;

/// Accepts `Authorization: Bearer <ApiToken>` whose hash is in force.
pub struct ApiTokenAuthenticator {
    tokens: Vec<ApiTokenEntry>,
}

impl ApiTokenAuthenticator {
    /// The authenticator for `tokens` (no I/O).
    pub fn new(tokens: &[ApiTokenEntry]) -> Self {
        Self { tokens: tokens.to_vec() }
    }
}

impl Authenticator for ApiTokenAuthenticator {
    fn authenticate(&self, _headers: &HeaderMap, _now: u64) -> impl Future<Output = Verdict> + Send {
        let _ = &self.tokens;
        std::future::ready(Verdict::NotMine)
    }
}
