//! Who refers to whom: Secrets and ConfigMaps → IdentityProviders →
//! AuthPolicies, and Secrets and ConfigMaps → AuthPolicies directly (route
//! credentials, upstream TLS), kept up to date from the watch events, so
//! mapping a changed object to what must be reconciled is a lookup, not a
//! scan of every object. What each resource refers to is
//! [`super::refs::of_policy`] and [`super::refs::of_provider`].
//!
//! A relist (the watcher's `Init` … `InitDone`) rebuilds the entries of the
//! kind it lists, so an object deleted while the watch was down does not
//! linger.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use super::refs::{self, Source};
use crate::api::{AuthPolicy, IdentityProvider};

/// `(namespace, name)`.
type Key = (String, String);

fn key_of<K: ResourceExt>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// One direction of references: each source object names some targets in
/// its namespace; looked up by target.
#[derive(Default)]
struct Edges {
    /// What each source names.
    names: HashMap<Key, Vec<String>>,
    /// Who names each target.
    named_by: HashMap<Key, BTreeSet<String>>,
    /// Sources seen since the current relist began, if one is under way.
    relisting: Option<HashSet<Key>>,
}

impl Edges {
    fn set(&mut self, source: Key, targets: Vec<String>) {
        self.remove(&source);
        for t in &targets {
            self.named_by.entry((source.0.clone(), t.clone())).or_default().insert(source.1.clone());
        }
        if let Some(seen) = &mut self.relisting {
            seen.insert(source.clone());
        }
        self.names.insert(source, targets);
    }

    fn remove(&mut self, source: &Key) {
        for t in self.names.remove(source).unwrap_or_default() {
            let target = (source.0.clone(), t);
            if let Some(set) = self.named_by.get_mut(&target) {
                set.remove(&source.1);
                if set.is_empty() {
                    self.named_by.remove(&target);
                }
            }
        }
    }

    fn apply<K: ResourceExt>(&mut self, event: &Event<K>, targets: impl Fn(&K) -> Vec<String>) {
        match event {
            Event::Apply(o) | Event::InitApply(o) => self.set(key_of(o), targets(o)),
            Event::Delete(o) => self.remove(&key_of(o)),
            Event::Init => self.relisting = Some(HashSet::new()),
            Event::InitDone => {
                if let Some(seen) = self.relisting.take() {
                    let gone: Vec<Key> = self.names.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                    for k in gone {
                        self.remove(&k);
                    }
                }
            }
        }
    }

    fn sources_naming(&self, namespace: &str, target: &str) -> impl Iterator<Item = &String> {
        self.named_by.get(&(namespace.to_owned(), target.to_owned())).into_iter().flatten()
    }
}

/// What a kind of resource names, by the kind of object named.
#[derive(Default)]
struct Named {
    secrets: Edges,
    config_maps: Edges,
}

impl Named {
    fn apply<K: ResourceExt>(&mut self, event: &Event<K>, refs: impl Fn(&K) -> Vec<refs::Reference>) {
        self.secrets.apply(event, |o| refs::names(&refs(o), Source::Secret));
        self.config_maps.apply(event, |o| refs::names(&refs(o), Source::ConfigMap));
    }

    fn edges(&self, source: Source) -> &Edges {
        match source {
            Source::Secret => &self.secrets,
            Source::ConfigMap => &self.config_maps,
        }
    }
}

/// The reference index. Cheap to share behind an `Arc`; every method
/// takes the lock for one short map operation.
#[derive(Default)]
pub struct RefIndex {
    /// Provider → its client Secret and CA bundle.
    by_providers: RwLock<Named>,
    /// Policy → the Secrets and ConfigMaps its routes and upstream TLS name.
    by_policies: RwLock<Named>,
    /// Policy → the providers it names.
    providers: RwLock<Edges>,
}

impl RefIndex {
    /// Records an IdentityProvider watch event.
    pub fn provider_event(&self, event: &Event<IdentityProvider>) {
        let mut named = self.by_providers.write().unwrap_or_else(|e| e.into_inner());
        named.apply(event, |idp| refs::of_provider(&idp.spec));
    }

    /// Records an AuthPolicy watch event.
    pub fn policy_event(&self, event: &Event<AuthPolicy>) {
        {
            let mut edges = self.providers.write().unwrap_or_else(|e| e.into_inner());
            edges.apply(event, |p| p.spec.providers.clone());
        }
        let mut named = self.by_policies.write().unwrap_or_else(|e| e.into_inner());
        named.apply(event, |p| refs::of_policy(&p.spec));
    }

    /// The providers that refer to the `source` object `namespace/name`.
    pub fn providers_using(&self, source: Source, namespace: &str, name: &str) -> Vec<ObjectRef<IdentityProvider>> {
        let named = self.by_providers.read().unwrap_or_else(|e| e.into_inner());
        named.edges(source).sources_naming(namespace, name).map(|n| ObjectRef::new(n).within(namespace)).collect()
    }

    /// The providers whose client secret or CA bundle is Secret `namespace/secret`.
    pub fn providers_using_secret(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<IdentityProvider>> {
        self.providers_using(Source::Secret, namespace, secret)
    }

    /// The policies in `namespace` that name any of `providers`.
    pub fn policies_naming<'a>(
        &self,
        namespace: &str,
        providers: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ObjectRef<AuthPolicy>> {
        let edges = self.providers.read().unwrap_or_else(|e| e.into_inner());
        let names: BTreeSet<&String> = providers.into_iter().flat_map(|p| edges.sources_naming(namespace, p)).collect();
        names.into_iter().map(|n| ObjectRef::new(n).within(namespace)).collect()
    }

    /// The policies in `namespace` that use the `source` object `name`:
    /// directly, or through a provider that refers to it.
    pub fn policies_using(&self, source: Source, namespace: &str, name: &str) -> Vec<ObjectRef<AuthPolicy>> {
        let providers: Vec<String> =
            self.providers_using(source, namespace, name).into_iter().map(|r| r.name).collect();
        let mut policies: BTreeSet<String> =
            self.policies_naming(namespace, providers.iter().map(String::as_str)).into_iter().map(|r| r.name).collect();
        {
            let named = self.by_policies.read().unwrap_or_else(|e| e.into_inner());
            policies.extend(named.edges(source).sources_naming(namespace, name).cloned());
        }
        policies.into_iter().map(|n| ObjectRef::new(&n).within(namespace)).collect()
    }

    /// The policies in `namespace` that use Secret `secret` (see [`RefIndex::policies_using`]).
    pub fn policies_using_secret(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<AuthPolicy>> {
        self.policies_using(Source::Secret, namespace, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idp(ns: &str, name: &str, secret: &str) -> IdentityProvider {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "oidc", "clientId": "c", "clientSecretRef": {"name": secret}, "issuerUrl": "https://id.example.com",
        }))
        .unwrap();
        let mut o = IdentityProvider::new(name, spec);
        o.metadata.namespace = Some(ns.into());
        o
    }

    fn policy(ns: &str, name: &str, providers: &[&str]) -> AuthPolicy {
        let spec = serde_json::from_value(serde_json::json!({
            "upstream": {"url": "http://app:80"}, "externalUrl": "https://app.example.com", "providers": providers,
        }))
        .unwrap();
        let mut o = AuthPolicy::new(name, spec);
        o.metadata.namespace = Some(ns.into());
        o
    }

    fn names<K: kube::Resource<DynamicType = ()>>(refs: Vec<ObjectRef<K>>) -> Vec<String> {
        refs.into_iter().map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name)).collect()
    }

    #[test]
    fn a_secret_leads_to_its_providers_and_their_policies_in_its_namespace_only() {
        let index = RefIndex::default();
        for i in [idp("a", "gh", "s1"), idp("a", "corp", "s2"), idp("b", "gh", "s1")] {
            index.provider_event(&Event::Apply(i));
        }
        for p in [policy("a", "p1", &["gh"]), policy("a", "p2", &["corp", "gh"]), policy("b", "p3", &["gh"])] {
            index.policy_event(&Event::Apply(p));
        }
        assert_eq!(names(index.providers_using_secret("a", "s1")), ["a/gh"]);
        assert_eq!(names(index.policies_using_secret("a", "s1")), ["a/p1", "a/p2"]);
        assert_eq!(names(index.policies_using_secret("a", "s2")), ["a/p2"]);
        assert_eq!(names(index.policies_naming("b", ["gh"])), ["b/p3"]);
        assert!(index.providers_using_secret("a", "other").is_empty());
    }

    #[test]
    fn a_changed_or_deleted_reference_is_forgotten() {
        let index = RefIndex::default();
        index.provider_event(&Event::Apply(idp("a", "gh", "s1")));
        index.provider_event(&Event::Apply(idp("a", "gh", "s2")));
        assert!(index.providers_using_secret("a", "s1").is_empty(), "the old secret no longer leads here");
        assert_eq!(names(index.providers_using_secret("a", "s2")), ["a/gh"]);
        index.provider_event(&Event::Delete(idp("a", "gh", "s2")));
        assert!(index.providers_using_secret("a", "s2").is_empty());

        index.policy_event(&Event::Apply(policy("a", "p", &["gh", "corp"])));
        index.policy_event(&Event::Apply(policy("a", "p", &["corp"])));
        assert!(index.policies_naming("a", ["gh"]).is_empty());
        assert_eq!(names(index.policies_naming("a", ["corp", "gh"])), ["a/p"]);
    }

    fn routed(ns: &str, name: &str, provider: &str, routes: serde_json::Value) -> AuthPolicy {
        let mut p = policy(ns, name, &[provider]);
        p.spec.routes = serde_json::from_value(routes).unwrap();
        p
    }

    #[test]
    fn route_and_tls_references_lead_to_exactly_the_policies_that_use_them() {
        let index = RefIndex::default();
        let mut corp = idp("a", "corp", "corp-oauth");
        corp.spec.ca_bundle = Some(
            serde_json::from_value(serde_json::json!({"configMapKeyRef": {"name": "corp-ca", "key": "ca.crt"}}))
                .unwrap(),
        );
        index.provider_event(&Event::Apply(corp));
        index.provider_event(&Event::Apply(idp("a", "gh", "gh-oauth")));
        let header = |secret: &str| {
            serde_json::json!([{"pathPrefix": "/api", "upstream": {"url": "https://api:443", "tls": {"caBundle": {"configMapKeyRef": {"name": "api-ca", "key": "ca.crt"}}}},
                "headers": [{"name": "X-Key", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]}])
        };
        index.policy_event(&Event::Apply(routed("a", "p1", "gh", header("key-1"))));
        index.policy_event(&Event::Apply(routed("a", "p2", "corp", header("key-2"))));
        index.policy_event(&Event::Apply(routed("b", "p3", "gh", header("key-1"))));
        assert_eq!(names(index.policies_using_secret("a", "key-1")), ["a/p1"]);
        assert_eq!(names(index.policies_using_secret("a", "key-2")), ["a/p2"]);
        assert_eq!(names(index.policies_using(Source::ConfigMap, "a", "api-ca")), ["a/p1", "a/p2"]);
        assert_eq!(names(index.policies_using(Source::ConfigMap, "a", "corp-ca")), ["a/p2"], "through the provider");
        assert_eq!(names(index.providers_using(Source::ConfigMap, "a", "corp-ca")), ["a/corp"]);
        assert!(index.policies_using(Source::ConfigMap, "a", "key-1").is_empty(), "a Secret is not a ConfigMap");
        // A route that stops naming a Secret stops being woken by it.
        index.policy_event(&Event::Apply(routed("a", "p1", "gh", header("key-3"))));
        assert!(index.policies_using_secret("a", "key-1").is_empty());
        assert_eq!(names(index.policies_using_secret("a", "gh-oauth")), ["a/p1"], "the provider's secret still leads");
        index.policy_event(&Event::Delete(routed("a", "p1", "gh", header("key-3"))));
        assert!(index.policies_using_secret("a", "key-3").is_empty());
    }

    #[test]
    fn a_relist_drops_what_was_deleted_while_the_watch_was_down() {
        let index = RefIndex::default();
        index.provider_event(&Event::Apply(idp("a", "gone", "s")));
        index.provider_event(&Event::Apply(idp("a", "kept", "s")));
        index.provider_event(&Event::Init);
        index.provider_event(&Event::InitApply(idp("a", "kept", "s")));
        assert_eq!(names(index.providers_using_secret("a", "s")), ["a/gone", "a/kept"], "nothing dropped mid-relist");
        index.provider_event(&Event::InitDone);
        assert_eq!(names(index.providers_using_secret("a", "s")), ["a/kept"]);
    }
}
