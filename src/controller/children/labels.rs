//! Standard `app.kubernetes.io/*` labels and owner references.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::AuthPolicy;

/// Labels shared by every child of `policy`; also the pod selector.
pub fn selector(policy: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "authgate-gateway".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), policy.to_owned()),
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
