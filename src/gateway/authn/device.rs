//! Tokens the device flow issued (`machine.deviceFlow` of gateway.yaml).
//!
//! A device token is `agd_` followed by a record sealed with the gateway's
//! session keys (AES-256-GCM, bound to its purpose), so every replica with
//! the same keys verifies it without shared state. The record holds who
//! approved the device, when it was issued and when it expires. It ends
//! like a session does: at its expiry, when the policy's `notBefore` is
//! later than its issue time, or when a SessionRevocation of its user
//! applies; rotating the session keys out ends every one.

use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::machine::{BearerToken, MachineCaller, bearer_token};
use super::{Authenticator, Caller, Rejection, Verdict};
use crate::access::{DomainProof, Grant, Identity, Membership, Principal, Proof};
use crate::contract::session::SessionConfig;
use crate::gateway::device::Approval;
use crate::gateway::session::Keyring;
use crate::gateway::session::revocations::Revocations;

/// What every device token starts with.
pub const PREFIX: &str = "agd_";
/// Associated data of the seal: a sealed session cannot pass as a token.
const AAD: &[u8] = b"authgate device token v1";

/// The sealed content of a device token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Random id of this token.
    pub id: String,
    /// Subject at the provider.
    pub sub: String,
    /// User name.
    pub user: String,
    /// Email.
    pub email: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// The provider of the approving session.
    pub provider: String,
    /// Unix seconds of issue.
    pub iat: u64,
    /// Unix seconds of expiry.
    pub exp: u64,
}

/// Seals a token for `approval`, living `ttl` seconds from `now`.
pub fn mint(keyring: &Keyring, approval: &Approval, ttl: u64, now: u64) -> String {
    let mut id = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut id);
    let record = DeviceRecord {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        sub: approval.subject.clone(),
        user: approval.user.clone(),
        email: approval.email.clone(),
        groups: approval.groups.clone(),
        provider: approval.provider.clone(),
        iat: now,
        exp: now + ttl,
    };
    let plain = serde_json::to_vec(&record).expect("a record serializes");
    format!("{PREFIX}{}", keyring.seal(AAD, &plain))
}

/// Accepts `Authorization: Bearer agd_…`.
pub struct DeviceAuthenticator {
    /// The session keys, when the device flow is served; `None` refuses
    /// every device token.
    keyring: Option<Arc<Keyring>>,
    revocations: Revocations,
}

impl DeviceAuthenticator {
    /// The authenticator for `session`'s keys and revocations (no I/O);
    /// unless the device flow is `served`, every device token is refused.
    pub fn new(session: &SessionConfig, served: bool) -> Self {
        let keyring = served.then(|| Keyring::new(&session.keys).ok()).flatten().map(Arc::new);
        Self { keyring, revocations: Revocations::new(session) }
    }

    /// Opens and checks `token` (with its prefix) at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<DeviceRecord, &'static str> {
        let Some(keyring) = &self.keyring else { return Err("device_flow_disabled") };
        let sealed = token.strip_prefix(PREFIX).ok_or("malformed")?;
        let plain = keyring.open(AAD, sealed).ok_or("signature")?;
        let record: DeviceRecord = serde_json::from_slice(&plain).map_err(|_| "malformed")?;
        if now >= record.exp {
            return Err("expired");
        }
        if self.revocations.check_issued(record.iat, &record.user, record.email.as_deref()).is_some() {
            return Err("revoked");
        }
        Ok(record)
    }
}

impl Authenticator for DeviceAuthenticator {
    fn authenticate(&self, headers: &HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send {
        let verdict = match bearer_token(headers) {
            BearerToken::Present(token) if token.starts_with(PREFIX) => match self.verify(token, now) {
                Ok(record) => Verdict::Caller(Caller::Machine(Arc::new(caller(record)))),
                Err(reason) => Verdict::Reject(Rejection::InvalidToken(reason)),
            },
            _ => Verdict::NotMine,
        };
        std::future::ready(verdict)
    }
}

fn caller(record: DeviceRecord) -> MachineCaller {
    let identity = Identity {
        subject: record.sub,
        user: record.user,
        // Only a verified address ever reaches a session, and the token
        // carries the approving session's.
        email_verified: record.email.is_some(),
        email: record.email,
        domain_proof: DomainProof::Email,
        groups: Membership::Known(record.groups),
        orgs: Membership::Unavailable,
        teams: Membership::Unavailable,
    };
    MachineCaller {
        principal: Principal { identity, provider: record.provider, proof: Proof::Device },
        grant: Grant::Full,
        expires_at: record.exp,
        upstream_token: None,
    }
}

#[cfg(test)]
mod tests;
