//! Labels and owner references of every child.
//!
//! Which policy a child belongs to is said by a label of our own,
//! [`POLICY`], never by `app.kubernetes.io/instance`: Argo CD's label-based
//! tracking reads that one as "managed by the Argo CD application of this
//! name", so a child carrying the policy's name there would show up as
//! extraneous in the application that happens to share it, and be pruned.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::AuthPolicy;

/// The label naming the AuthPolicy a child belongs to.
pub const POLICY: &str = "authgate.dev/policy";

/// Labels shared by every child of `policy`; also the pod selector.
pub fn selector(policy: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "authgate-gateway".to_owned()),
        (POLICY.to_owned(), policy.to_owned()),
    ])
}

/// Full label set of a child.
pub fn labels(policy: &str) -> BTreeMap<String, String> {
    let mut l = selector(policy);
    l.insert("app.kubernetes.io/component".into(), "gateway".into());
    l.insert("app.kubernetes.io/part-of".into(), "authgate".into());
    l.insert("app.kubernetes.io/managed-by".into(), "authgate".into());
    l
}

/// Metadata of a child named `name`: namespace, labels, controller owner reference.
pub fn child_meta(policy: &AuthPolicy, name: String) -> ObjectMeta {
    let owner: OwnerReference = policy.controller_owner_ref(&()).expect("AuthPolicy from the apiserver has a uid");
    ObjectMeta {
        name: Some(name),
        namespace: policy.namespace(),
        labels: Some(labels(&policy.name_any())),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_never_carry_the_argo_cd_tracking_label() {
        let l = labels("grafana");
        assert!(!l.contains_key("app.kubernetes.io/instance"), "{l:?}");
        assert_eq!(l[POLICY], "grafana");
        assert_eq!(l["app.kubernetes.io/managed-by"], "authgate");
        assert!(selector("grafana").iter().all(|(k, v)| l.get(k) == Some(v)), "the selector is a subset");
    }
}
