//! Tokens the device flow issued (`machine.deviceFlow` of gateway.yaml).
//!
//! Not yet implemented: every request is `NotMine` here.

use std::future::Future;

use http::HeaderMap;

use super::{Authenticator, Verdict};

/// Accepts `Authorization: Bearer <device token>`.
pub struct DeviceAuthenticator;

impl Authenticator for DeviceAuthenticator {
    fn authenticate(&self, _headers: &HeaderMap, _now: u64) -> impl Future<Output = Verdict> + Send {
        std::future::ready(Verdict::NotMine)
    }
}
