//! Which objects a change wakes: a changed SessionRevocation wakes the
//! policies whose gateway configuration carries it (or did), and a changed
//! AuthPolicy wakes the revocations that apply to it (its session lifetime
//! moves their expiry; its creation delivers them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::{AuthPolicy, SessionRevocation};

/// What each revocation applied to when last seen, so a revocation whose
/// `spec.policy` changes or that is deleted also wakes the policy it left.
#[derive(Default)]
pub struct Targets {
    /// `(namespace, name)` → `spec.policy`.
    last: Mutex<HashMap<(String, String), Option<String>>>,
}

impl Targets {
    /// The policies to reconcile after `changed` was created, changed or
    /// deleted, given every cached policy. A deleted one carries a
    /// `deletionTimestamp` (see [`mark_deleted`]).
    pub fn policies_for(
        &self,
        policies: &[Arc<AuthPolicy>],
        changed: &SessionRevocation,
    ) -> Vec<ObjectRef<AuthPolicy>> {
        let deleted = changed.metadata.deletion_timestamp.is_some();
        let ns = changed.namespace().unwrap_or_default();
        let key = (ns.clone(), changed.name_any());
        let previous = {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if deleted { last.remove(&key) } else { last.insert(key, changed.spec.policy.clone()) }
        };
        let wanted = |name: &str| {
            let now = changed.spec.policy.as_deref().is_none_or(|p| p == name);
            let before = previous.as_ref().is_some_and(|p| p.as_deref().is_none_or(|p| p == name));
            now || before
        };
        policies
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && wanted(&p.name_any()))
            .map(|p| ObjectRef::from_obj(p.as_ref()))
            .collect()
    }
}

/// The revocations of `revocations` that apply to `policy`.
pub fn revocations_naming(
    revocations: &[Arc<SessionRevocation>],
    policy: &AuthPolicy,
) -> Vec<ObjectRef<SessionRevocation>> {
    let (ns, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
    revocations
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()) && r.spec.policy.as_deref().is_none_or(|p| p == name))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Gives the object of a watch's `Delete` event a `deletionTimestamp` if it
/// has none (an object without finalizers goes at once), so what the event
/// stream passes on says it is gone.
pub fn mark_deleted<K: kube::Resource>(event: kube::runtime::watcher::Event<K>) -> kube::runtime::watcher::Event<K> {
    match event {
        kube::runtime::watcher::Event::Delete(mut o) => {
            let meta = o.meta_mut();
            if meta.deletion_timestamp.is_none() {
                meta.deletion_timestamp = Some(crate::controller::status::now());
            }
            kube::runtime::watcher::Event::Delete(o)
        }
        other => other,
    }
}
