//! Reading the values SecretKeyRefs point to: the one place that GETs a
//! Secret, shared by the IdentityProvider reconcile and the caches.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::error::Result;
use crate::api::SecretKeyRef;

/// Why a Secret reference did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum SecretRefError {
    /// No such Secret.
    #[error("Secret {0:?} not found")]
    NotFound(String),
    /// The Secret lacks the key or it is empty.
    #[error("Secret {0:?} has no non-empty key {1:?}")]
    MissingKey(String, String),
}

impl SecretRefError {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "SecretNotFound",
            Self::MissingKey(..) => "SecretKeyNotFound",
        }
    }
}

/// Reads the value a SecretKeyRef points to. Transport errors are errors;
/// a missing Secret or key is a user problem, returned as `Ok(Err(..))`.
pub async fn read_secret(client: &Client, ns: &str, r: &SecretKeyRef) -> Result<Result<String, SecretRefError>> {
    Ok(fetch_secret(client, ns, r).await?.and_then(|secret| secret_value(&secret, r)))
}

/// The Secret a SecretKeyRef names, or `NotFound`.
pub async fn fetch_secret(client: &Client, ns: &str, r: &SecretKeyRef) -> Result<Result<Secret, SecretRefError>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    Ok(api.get_opt(&r.name).await?.ok_or_else(|| SecretRefError::NotFound(r.name.clone())))
}

/// The non-empty value `r` names in `secret`, without trailing newlines.
pub fn secret_value(secret: &Secret, r: &SecretKeyRef) -> Result<String, SecretRefError> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| String::from_utf8_lossy(&b.0).trim_end_matches(['\n', '\r']).to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SecretRefError::MissingKey(r.name.clone(), r.key.clone()))
}
