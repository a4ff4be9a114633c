//! Bearer JWTs of trusted issuers (`machine.bearer` of gateway.yaml).
//!
//! Not yet implemented: every request is `NotMine` here.

use std::future::Future;

use http::HeaderMap;

use super::{Authenticator, Verdict};
use crate::contract::machine::BearerIssuerConfig;

/// Verifies `Authorization: Bearer <JWT>` against the configured issuers.
pub struct BearerAuthenticator {
    issuers: Vec<BearerIssuerConfig>,
}

impl BearerAuthenticator {
    /// The authenticator for `issuers` (no I/O).
    pub fn new(issuers: &[BearerIssuerConfig]) -> Result<Self, String> {
        Ok(Self { issuers: issuers.to_vec() })
    }
}

impl Authenticator for BearerAuthenticator {
    fn authenticate(&self, _headers: &HeaderMap, _now: u64) -> impl Future<Output = Verdict> + Send {
        let _ = &self.issuers;
        std::future::ready(Verdict::NotMine)
    }
}
