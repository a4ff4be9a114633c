//! SessionRevocations in `authgate check`: decoded strictly (an unknown
//! field is a typo that would silently revoke nothing), the CRD's CEL rule,
//! and a `policy` that must be an AuthPolicy in the checked files.

use serde::Deserialize;

use super::{Found, Problem, decode, label, ns_of};
use crate::api::{AuthPolicy, SessionRevocation};

/// The shape of a SessionRevocation document, refusing unknown fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Strict {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: serde_json::Value,
    spec: StrictSpec,
    #[serde(default)]
    status: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StrictSpec {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    before: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// Decodes document `index` of `text` as a SessionRevocation, strictly.
pub(super) fn decode_revocation(
    text: &str,
    index: usize,
    doc: &serde_json::Value,
) -> Result<SessionRevocation, String> {
    decode::<Strict>(text, index, doc)?;
    decode(text, index, doc)
}

/// The problems of one decoded revocation on its own: the CEL rules.
pub(super) fn problems(obj: &SessionRevocation) -> Vec<String> {
    super::cel_problems(obj.validate_cel())
}

/// A revocation naming a policy that is not in the checked files.
pub(super) fn missing_policies(
    revocations: &[Found<SessionRevocation>],
    policies: &[Found<AuthPolicy>],
) -> Vec<Problem> {
    revocations
        .iter()
        .filter_map(|f| {
            let wanted = f.obj.spec.policy.as_ref()?;
            let ns = ns_of(&f.obj);
            let found = policies.iter().any(|p| ns_of(&p.obj) == ns && kube::ResourceExt::name_any(&p.obj) == *wanted);
            (!found).then(|| {
                Problem::missing_reference(
                    &f.file,
                    label("SessionRevocation", &f.obj),
                    format!("policy {wanted:?} is not defined in namespace {ns} in the checked files"),
                )
            })
        })
        .collect()
}
