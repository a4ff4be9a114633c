//! Server-side apply that skips writes when nothing changed.
//!
//! Each child carries the hash of what was last applied in the annotation
//! [`APPLIED_HASH`]. A reconcile whose desired object hashes the same does
//! not call the apiserver's write path at all, so a steady state produces no
//! writes and no resourceVersion churn.

use std::fmt::Debug;
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
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
    /// Differed from the desired state and was written.
    Changed,
    /// Already as desired; nothing sent.
    Unchanged,
}

/// What [`ensure`] left in place.
pub struct Ensured<K, T> {
    /// Whether it wrote.
    pub applied: Applied,
    /// The object as it now stands: the cached or live copy, or the apiserver's
    /// answer to the write.
    pub current: Arc<K>,
    /// What `build` returned alongside the object it built.
    pub extra: T,
}

/// Makes the object named `name` match what `build` derives from the
/// existing one (`None` when there is none).
///
/// `cached` comes from a watch cache. If it already carries the desired hash
/// nothing is sent at all. Otherwise the live object is read first, because
/// the cache can lag behind this controller's own last write, and `build`
/// must see what really exists (the Secret keeps its cookie keys). Only if
/// the live object differs too is the desired one applied.
pub async fn ensure<K, T>(
    api: &Api<K>,
    name: &str,
    cached: Option<Arc<K>>,
    build: impl Fn(Option<&K>) -> Result<(K, T)>,
) -> Result<Ensured<K, T>>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let (desired, extra) = build(cached.as_deref())?;
    let hash = hash_json(&desired)?;
    if let Some(current) = cached.filter(|c| carries(c.as_ref(), &hash)) {
        return Ok(Ensured { applied: Applied::Unchanged, current, extra });
    }
    let live = api.get_opt(name).await?;
    let (mut desired, extra) = build(live.as_ref())?;
    let hash = hash_json(&desired)?;
    if let Some(current) = live.filter(|l| carries(l, &hash)) {
        return Ok(Ensured { applied: Applied::Unchanged, current: Arc::new(current), extra });
    }
    desired.annotations_mut().insert(APPLIED_HASH.to_owned(), hash);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = api.patch(name, &params, &Patch::Apply(&desired)).await?;
    Ok(Ensured { applied: Applied::Changed, current: Arc::new(written), extra })
}

/// Whether `object` was last applied from a desired object hashing to `hash`.
fn carries<K: Resource>(object: &K, hash: &str) -> bool {
    object.annotations().get(APPLIED_HASH).is_some_and(|h| h == hash)
}

/// Outcome of [`ensure_owned`].
pub enum Owned<K, T = ()> {
    /// The object is this owner's (or did not exist) and is as desired.
    Ensured(Ensured<K, T>),
    /// An object of that name exists whose controller is not the owner. It
    /// was left exactly as it is.
    Foreign(Arc<K>),
}

/// [`ensure`] for a child whose name someone else may already use: writes
/// only when no object of that name exists or its controller owner
/// reference is `owner_uid`. Like cert-manager with Secrets it did not
/// issue, the controller never adopts, overwrites or reads from an object
/// it does not own (a foreign Secret's keys are not taken over either).
///
/// The cache is label-selected, so an object the controller did not create
/// is usually not in it; when the cache holds nothing of ours the live
/// object is read, which a steady state never needs.
pub async fn ensure_owned<K, T>(
    api: &Api<K>,
    name: &str,
    cached: Option<Arc<K>>,
    owner_uid: &str,
    build: impl Fn(Option<&K>) -> Result<(K, T)>,
) -> Result<Owned<K, T>>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let ours = |k: &K| super::route::controlled_by(k.meta(), owner_uid);
    let existing = match cached.filter(|c| ours(c)) {
        Some(cached) => Some(cached),
        None => match api.get_opt(name).await? {
            Some(live) if !ours(&live) => return Ok(Owned::Foreign(Arc::new(live))),
            live => live.map(Arc::new),
        },
    };
    Ok(Owned::Ensured(ensure(api, name, existing, build).await?))
}

/// Who controls `other`, for a status message: its controller owner, or
/// that this policy did not create it.
pub fn foreign_owner<K: Resource>(other: &K) -> String {
    other
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("controlled by {} {:?}", o.kind, o.name))
        .unwrap_or_else(|| "not created by this AuthPolicy".into())
}

/// Deletes `cached` if its controller owner reference is `owner_uid`, and
/// only that very object (a uid precondition). Returns whether it deleted
/// anything; an object already gone is not an error.
pub async fn remove_owned<K>(api: &Api<K>, cached: Option<Arc<K>>, owner_uid: &str) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let Some(ours) = cached.filter(|c| super::route::controlled_by(c.meta(), owner_uid)) else {
        return Ok(false);
    };
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: ours.uid(), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&ours.name_any(), &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}
