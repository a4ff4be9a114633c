//! Which objects to reconcile when a related one changes, where the answer
//! is a rule over a snapshot rather than a reference lookup (those are in
//! [`super::index`]).

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::IdentityProvider;

/// The other IdentityProviders of the same type in the same namespace as
/// `changed`: one of them may win or lose the one-per-type rule now.
pub fn siblings_of(
    providers: &[Arc<IdentityProvider>],
    changed: &IdentityProvider,
) -> Vec<ObjectRef<IdentityProvider>> {
    providers
        .iter()
        .filter(|i| {
            i.namespace() == changed.namespace()
                && i.spec.provider_type == changed.spec.provider_type
                && i.name_any() != changed.name_any()
        })
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idp(ns: &str, name: &str, kind: &str, secret: &str) -> Arc<IdentityProvider> {
        let spec = serde_json::from_value(serde_json::json!({
            "type": kind, "clientId": "c", "clientSecretRef": {"name": secret, "key": "k"}, "issuerUrl": "https://id.example.com",
        }))
        .unwrap();
        let mut o = IdentityProvider::new(name, spec);
        o.metadata.namespace = Some(ns.into());
        Arc::new(o)
    }

    fn names<K: kube::Resource<DynamicType = ()>>(refs: Vec<ObjectRef<K>>) -> Vec<String> {
        let mut v: Vec<String> =
            refs.into_iter().map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name)).collect();
        v.sort();
        v
    }

    #[test]
    fn a_provider_maps_to_its_same_type_siblings_only() {
        let all = [
            idp("a", "gh", "github", "s"),
            idp("a", "gh2", "github", "s"),
            idp("a", "corp", "oidc", "s"),
            idp("b", "gh3", "github", "s"),
        ];
        assert_eq!(names(siblings_of(&all, &all[0])), ["a/gh2"]);
        assert!(siblings_of(&all, &all[2]).is_empty());
    }
}
