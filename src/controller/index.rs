//! Who refers to whom: Secret → IdentityProviders → AuthPolicies, kept up
//! to date from the watch events, so mapping a changed Secret or provider
//! to what must be reconciled is a lookup, not a scan of every object.
//!
//! A relist (the watcher's `Init` … `InitDone`) rebuilds the entries of the
//! kind it lists, so an object deleted while the watch was down does not
//! linger.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

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

/// The reference index. Cheap to share behind an `Arc`; every method
/// takes the lock for one short map operation.
#[derive(Default)]
pub struct RefIndex {
    /// Provider → its client Secret.
    secrets: RwLock<Edges>,
    /// Policy → the providers it names.
    providers: RwLock<Edges>,
}

impl RefIndex {
    /// Records an IdentityProvider watch event.
    pub fn provider_event(&self, event: &Event<IdentityProvider>) {
        let mut edges = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        edges.apply(event, |idp| vec![idp.spec.client_secret_ref.name.clone()]);
    }

    /// Records an AuthPolicy watch event.
    pub fn policy_event(&self, event: &Event<AuthPolicy>) {
        let mut edges = self.providers.write().unwrap_or_else(|e| e.into_inner());
        edges.apply(event, |p| p.spec.providers.clone());
    }

    /// The providers whose client secret is Secret `namespace/secret`.
    pub fn providers_using_secret(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<IdentityProvider>> {
        let edges = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        edges.sources_naming(namespace, secret).map(|n| ObjectRef::new(n).within(namespace)).collect()
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

    /// The policies in `namespace` that use a provider whose client secret
    /// is `secret`.
    pub fn policies_using_secret(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<AuthPolicy>> {
        let providers: Vec<String> =
            self.providers_using_secret(namespace, secret).into_iter().map(|r| r.name).collect();
        self.policies_naming(namespace, providers.iter().map(String::as_str))
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
