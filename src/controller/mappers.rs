//! Which objects to reconcile when a related one changes. Pure functions
//! over the reflectors' snapshots, so each rule is unit-tested on its own.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::api::{AuthPolicy, IdentityProvider};

/// The IdentityProviders in `namespace` whose client secret is the Secret
/// `secret`.
pub fn providers_using_secret(
    providers: &[Arc<IdentityProvider>],
    namespace: Option<&str>,
    secret: &str,
) -> Vec<Arc<IdentityProvider>> {
    providers
        .iter()
        .filter(|i| i.namespace().as_deref() == namespace && i.spec.client_secret_ref.name == secret)
        .cloned()
        .collect()
}

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

/// The AuthPolicies in `namespace` that name any of `providers`.
pub fn policies_naming(
    policies: &[Arc<AuthPolicy>],
    namespace: Option<&str>,
    providers: &[String],
) -> Vec<ObjectRef<AuthPolicy>> {
    policies
        .iter()
        .filter(|p| p.namespace().as_deref() == namespace && p.spec.providers.iter().any(|n| providers.contains(n)))
        .map(|p| ObjectRef::from_obj(p.as_ref()))
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

    fn policy(ns: &str, name: &str, providers: &[&str]) -> Arc<AuthPolicy> {
        let spec = serde_json::from_value(serde_json::json!({
            "upstream": {"url": "http://app:80"}, "externalUrl": "https://app.example.com", "providers": providers,
        }))
        .unwrap();
        let mut o = AuthPolicy::new(name, spec);
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
    fn a_secret_maps_to_the_providers_of_its_namespace_that_use_it() {
        let all = [idp("a", "gh", "github", "s1"), idp("a", "corp", "oidc", "s2"), idp("b", "gh", "github", "s1")];
        let hit = providers_using_secret(&all, Some("a"), "s1");
        assert_eq!(hit.iter().map(|i| i.name_any()).collect::<Vec<_>>(), ["gh"]);
        assert!(providers_using_secret(&all, Some("a"), "other").is_empty());
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

    #[test]
    fn providers_map_to_the_policies_naming_them_in_their_namespace() {
        let all = [
            policy("a", "p1", &["gh"]),
            policy("a", "p2", &["corp", "gh"]),
            policy("a", "p3", &["corp"]),
            policy("b", "p4", &["gh"]),
        ];
        assert_eq!(names(policies_naming(&all, Some("a"), &["gh".into()])), ["a/p1", "a/p2"]);
        assert!(policies_naming(&all, Some("a"), &[]).is_empty());
    }
}
