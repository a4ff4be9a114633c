//! `AllowList`: who may enter, declared once and embedded in both specs.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::rules;

/// Lists of who may enter. Every non-empty list must match (AND); an empty
/// list does not restrict. Only verified email addresses are ever compared.
/// The same lists appear on an IdentityProvider (for every policy that uses
/// it) and in an AuthPolicy's `access` (for that policy), and a user must
/// pass both levels.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AllowList {
    /// Email domains the user's verified address may have: `example.com`
    /// matches exactly, `.example.com` any subdomain (not `example.com`
    /// itself). No scheme, port, path, `@` or `*`.
    #[x_kube(validation = Rule::new(rules::DOMAINS).message(rules::DOMAINS_MESSAGE))]
    #[schemars(length(max = 64), inner(length(max = 254)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,

    /// GitHub organizations or GitLab groups, by login or path; the user
    /// must belong to at least one. Compared case-insensitively.
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_orgs: Vec<String>,

    /// GitHub teams as `org/team-slug`; the user must be in at least one.
    /// GitHub only.
    #[x_kube(validation = Rule::new(rules::TEAMS).message(rules::TEAMS_MESSAGE))]
    #[schemars(length(max = 64), inner(length(max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_teams: Vec<String>,

    /// Values of the provider's groups claim (OIDC groups, GitLab group
    /// paths); the user must carry at least one. Compared exactly.
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_groups: Vec<String>,

    /// Whole verified email addresses; the user's must be one of them,
    /// compared case-insensitively.
    #[x_kube(validation = Rule::new(rules::EMAILS).message(rules::EMAILS_MESSAGE))]
    #[schemars(length(max = 256), inner(length(max = 254)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_emails: Vec<String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;
    use serde_json::Value;

    use crate::api::{AuthPolicy, IdentityProvider};

    fn spec_schema<K: CustomResourceExt>() -> Value {
        let crd = serde_json::to_value(K::crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    }

    fn allow_list_fields(object: &Value) -> Vec<(String, Value)> {
        let properties = object["properties"].as_object().unwrap();
        properties.iter().filter(|(k, _)| k.starts_with("allowed")).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    #[test]
    fn both_specs_carry_the_same_lists_with_the_same_rules() {
        let provider = allow_list_fields(&spec_schema::<IdentityProvider>());
        let policy = allow_list_fields(&spec_schema::<AuthPolicy>()["properties"]["access"]);
        let names: Vec<&str> = provider.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["allowedDomains", "allowedEmails", "allowedGroups", "allowedOrgs", "allowedTeams"]);
        assert_eq!(provider, policy);
        let emails = &provider[1].1;
        assert!(emails["x-kubernetes-validations"][0]["rule"].as_str().unwrap().contains('@'));
    }
}
