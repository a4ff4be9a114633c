//! Which policies a changed ApiToken wakes: the one it names, and the one
//! it named when last seen, so a token moved to another policy (or
//! deleted) leaves the old policy's gateway configuration at once rather
//! than at its next resync; and which ApiTokens a changed policy wakes
//! (their status says whether it exists and defines their scopes).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::{ApiToken, AuthPolicy};

/// The `spec.policy` of each ApiToken when last seen.
#[derive(Default)]
pub struct Targets {
    /// `(namespace, name)` → `spec.policy`.
    last: Mutex<HashMap<(String, String), String>>,
}

impl Targets {
    /// The policies to reconcile after `changed` was created, changed or
    /// deleted (a deleted one carries a `deletionTimestamp`, see
    /// [`crate::controller::session_revocation::mark_deleted`]).
    pub fn policies_for(&self, changed: &ApiToken) -> Vec<ObjectRef<AuthPolicy>> {
        let ns = changed.namespace().unwrap_or_default();
        let key = (ns.clone(), changed.name_any());
        let previous = {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if changed.metadata.deletion_timestamp.is_some() {
                last.remove(&key)
            } else {
                last.insert(key, changed.spec.policy.clone())
            }
        };
        let mut wake = vec![ObjectRef::new(&changed.spec.policy).within(&ns)];
        if let Some(old) = previous.filter(|old| *old != changed.spec.policy) {
            wake.push(ObjectRef::new(&old).within(&ns));
        }
        wake
    }
}

/// The ApiTokens of `tokens` that name `policy`.
pub fn tokens_naming(tokens: &[std::sync::Arc<ApiToken>], policy: &AuthPolicy) -> Vec<ObjectRef<ApiToken>> {
    let (ns, name) = (policy.namespace(), policy.name_any());
    tokens
        .iter()
        .filter(|t| t.namespace() == ns && t.spec.policy == name)
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(policy: &str) -> ApiToken {
        let spec = serde_json::from_value(serde_json::json!({"policy": policy, "user": "ci", "ttl": "1h"})).unwrap();
        let mut t = ApiToken::new("ci", spec);
        t.metadata.namespace = Some("team".into());
        t
    }

    fn names(refs: &[ObjectRef<AuthPolicy>]) -> Vec<&str> {
        refs.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn a_moved_token_wakes_the_policy_it_left_as_well() {
        let targets = Targets::default();
        assert_eq!(names(&targets.policies_for(&token("a"))), ["a"]);
        assert_eq!(names(&targets.policies_for(&token("a"))), ["a"], "an unchanged policy wakes once");
        assert_eq!(names(&targets.policies_for(&token("b"))), ["b", "a"]);
        let mut gone = token("b");
        gone.metadata.deletion_timestamp = Some(crate::controller::status::now());
        assert_eq!(names(&targets.policies_for(&gone)), ["b"]);
        assert_eq!(names(&targets.policies_for(&token("c"))), ["c"], "forgotten once deleted");
        assert!(targets.policies_for(&token("c")).iter().all(|r| r.namespace.as_deref() == Some("team")));
    }
}
