//! One active provider per type per namespace: the oldest wins.

use std::sync::Arc;

use kube::ResourceExt;

use crate::api::IdentityProvider;

/// The active provider among `all` for `idp`'s namespace and type: the
/// oldest by creationTimestamp, then by name. Providers being deleted do not
/// compete, so deleting the winner promotes the next.
pub fn winner<'a>(idp: &IdentityProvider, all: &'a [Arc<IdentityProvider>]) -> Option<&'a Arc<IdentityProvider>> {
    let ns = idp.namespace();
    all.iter()
        .filter(|o| o.namespace() == ns && o.spec.provider_type == idp.spec.provider_type)
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .min_by(|a, b| {
            let key = |o: &IdentityProvider| (o.metadata.creation_timestamp.clone().map(|t| t.0), o.name_any());
            key(a).cmp(&key(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IdentityProviderSpec, ProviderType, SecretKeyRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn idp(name: &str, ns: &str, t: ProviderType, created: i64) -> Arc<IdentityProvider> {
        let mut o = IdentityProvider::new(
            name,
            IdentityProviderSpec {
                provider_type: t,
                display_name: None,
                client_id: "x".into(),
                client_secret_ref: SecretKeyRef { name: "s".into(), key: "k".into() },
                issuer_url: None,
                ca_bundle: None,
                endpoints: None,
                scopes: vec![],
                claims: None,
                email_verified: Default::default(),
                allow: Default::default(),
            },
        );
        o.metadata.namespace = Some(ns.into());
        o.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        Arc::new(o)
    }

    #[test]
    fn oldest_then_name_wins_per_namespace_and_type() {
        let all = vec![
            idp("b", "ns", ProviderType::Github, 10),
            idp("a", "ns", ProviderType::Github, 10),
            idp("old", "other", ProviderType::Github, 1),
            idp("oidc", "ns", ProviderType::Oidc, 1),
            idp("c", "ns", ProviderType::Github, 20),
        ];
        assert_eq!(winner(&all[4], &all).unwrap().name_any(), "a");
        assert_eq!(winner(&all[3], &all).unwrap().name_any(), "oidc");
        let mut deleting = (*all[1]).clone();
        deleting.metadata.deletion_timestamp = deleting.metadata.creation_timestamp.clone();
        let all2 = vec![all[0].clone(), Arc::new(deleting), all[4].clone()];
        assert_eq!(winner(&all2[2], &all2).unwrap().name_any(), "b");
    }
}
