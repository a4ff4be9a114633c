//! ApiTokens in `authgate check`: the CRD's CEL rules (among them a `ttl`
//! within the maximum), a `policy` that is an AuthPolicy in the checked files, and
//! scopes that policy defines (a scope it does not define grants nothing,
//! so the token would be refused on every request).

use super::{Found, Problem, label, ns_of};
use crate::api::{ApiToken, AuthPolicy};

/// The problems of one decoded ApiToken on its own: the CRD's CEL rules,
/// which hold the `ttl` format and its maximum.
pub(super) fn problems(obj: &ApiToken) -> Vec<String> {
    super::cel_problems(obj.validate_cel())
}

/// Each token's policy must be among the checked AuthPolicies of its
/// namespace (a missing reference), and every scope it names must be one
/// of that policy's `spec.scopes` (an error).
pub(super) fn cross_checks(tokens: &[Found<ApiToken>], policies: &[Found<AuthPolicy>]) -> Vec<Problem> {
    let mut out = Vec::new();
    for f in tokens {
        let ns = ns_of(&f.obj);
        let wanted = &f.obj.spec.policy;
        let resource = label("ApiToken", &f.obj);
        let Some(policy) =
            policies.iter().find(|p| ns_of(&p.obj) == ns && kube::ResourceExt::name_any(&p.obj) == *wanted)
        else {
            out.push(Problem::missing_reference(
                &f.file,
                resource,
                format!("policy {wanted:?} is not defined in namespace {ns} in the checked files"),
            ));
            continue;
        };
        let defined: Vec<&str> = policy.obj.spec.scopes.iter().map(|s| s.name.as_str()).collect();
        if defined.is_empty() {
            continue; // a policy without scopes gives its tokens full access
        }
        for scope in f.obj.spec.scopes.iter().filter(|s| !defined.contains(&s.as_str())) {
            out.push(Problem::error(
                &f.file,
                resource.clone(),
                format!(
                    "spec.scopes: {scope:?} is not a scope of AuthPolicy {ns}/{wanted} (it defines {}); the token would be refused wherever it needed it",
                    defined.join(", ")
                ),
            ));
        }
    }
    out
}
