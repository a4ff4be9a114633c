//! Server-side apply that skips writes when nothing changed.
//!
//! Each child carries the hash of what was last applied in the annotation
//! [`APPLIED_HASH`]. A reconcile whose desired object hashes the same does
//! not call the apiserver's write path at all, so a steady state produces no
//! writes and no resourceVersion churn.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::api::FIELD_MANAGER;
use crate::controller::error::Result;

/// Annotation holding the hash of the last applied desired object.
pub const APPLIED_HASH: &str = "authgate.dev/applied-hash";

/// Hex SHA-256 of a value's canonical JSON.
pub fn hash_json<T: Serialize>(value: &T) -> Result<String> {
    let bytes = serde_json::to_vec(value)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Outcome of [`ensure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written.
    Changed,
    /// Already as desired; nothing sent.
    Unchanged,
}

/// Applies `desired` unless `existing` already carries its hash.
pub async fn ensure<K>(api: &Api<K>, existing: Option<&K>, mut desired: K) -> Result<Applied>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let hash = hash_json(&desired)?;
    if existing.and_then(|e| e.annotations().get(APPLIED_HASH)) == Some(&hash) {
        return Ok(Applied::Unchanged);
    }
    desired.annotations_mut().insert(APPLIED_HASH.to_owned(), hash);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&desired.name_any(), &params, &Patch::Apply(&desired)).await?;
    Ok(Applied::Changed)
}
