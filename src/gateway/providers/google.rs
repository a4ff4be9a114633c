//! Google accounts over OpenID Connect.
//!
//! Google says whether an address is verified (`email_verified`, enforced
//! for every provider by the access filters) and, for Google Workspace
//! accounts, which Workspace domain the account belongs to (`hd`). An email
//! address alone does not prove Workspace membership: anyone can create a
//! consumer Google account for an address they can receive mail at, and
//! keep it after leaving the company. So whenever a domain restriction
//! applies, the `hd` claim must be present and allowed too.

use serde_json::{Map, Value};

use super::ProviderError;
use crate::access::{Filters, domain_matches};

/// Extra authorization parameters: a refresh token (`access_type=offline`)
/// and, when exactly one domain is allowed, the `hd` account-chooser hint.
pub fn authorization_params(provider: &Filters, policy: &Filters) -> Vec<(&'static str, String)> {
    let mut params = vec![("access_type", "offline".to_owned())];
    let domains: Vec<&String> = provider.allowed_domains.iter().chain(&policy.allowed_domains).collect();
    if let [only] = domains.as_slice()
        && !only.starts_with('.')
    {
        params.push(("hd", (*only).clone()));
    }
    params
}

/// Enforces the Workspace domain (`hd`) wherever a level restricts domains.
pub fn check_hosted_domain(
    claims: &Map<String, Value>,
    provider: &Filters,
    policy: &Filters,
) -> Result<(), ProviderError> {
    let levels: Vec<&Filters> = [provider, policy].into_iter().filter(|f| !f.allowed_domains.is_empty()).collect();
    if levels.is_empty() {
        return Ok(());
    }
    let Some(hd) = claims.get("hd").and_then(Value::as_str).filter(|h| !h.is_empty()) else {
        return Err(ProviderError::Denied {
            reason: "hosted_domain_missing",
            message: "your Google account does not belong to a Google Workspace organization".into(),
        });
    };
    for level in levels {
        if !level.allowed_domains.iter().any(|pattern| domain_matches(hd, pattern)) {
            return Err(ProviderError::Denied {
                reason: "hosted_domain_not_allowed",
                message: format!("the Google Workspace domain {hd} is not allowed"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn domains(d: &[&str]) -> Filters {
        Filters { allowed_domains: d.iter().map(|s| (*s).to_owned()).collect(), ..Filters::default() }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn no_domain_rule_no_hd_needed() {
        assert!(check_hosted_domain(&claims(json!({})), &Filters::default(), &Filters::default()).is_ok());
    }

    #[test]
    fn hd_required_and_matched_at_every_level() {
        let p = domains(&["example.com"]);
        let err = check_hosted_domain(&claims(json!({"email": "a@example.com"})), &p, &Filters::default()).unwrap_err();
        assert_eq!(err.reason(), "hosted_domain_missing");
        assert!(check_hosted_domain(&claims(json!({"hd": "example.com"})), &p, &Filters::default()).is_ok());
        let err = check_hosted_domain(&claims(json!({"hd": "other.com"})), &p, &Filters::default()).unwrap_err();
        assert_eq!(err.to_string(), "the Google Workspace domain other.com is not allowed");
        let policy = domains(&[".corp.example.com"]);
        assert!(check_hosted_domain(&claims(json!({"hd": "example.com"})), &p, &policy).is_err());
        assert!(
            check_hosted_domain(&claims(json!({"hd": "eu.corp.example.com"})), &Filters::default(), &policy).is_ok()
        );
    }

    #[test]
    fn hint_only_for_a_single_exact_domain() {
        let one = authorization_params(&domains(&["example.com"]), &Filters::default());
        assert!(one.contains(&("hd", "example.com".into())));
        assert!(one.contains(&("access_type", "offline".into())));
        assert!(
            !authorization_params(&domains(&[".example.com"]), &Filters::default()).iter().any(|(k, _)| *k == "hd")
        );
        assert!(!authorization_params(&domains(&["a.com"]), &domains(&["b.com"])).iter().any(|(k, _)| *k == "hd"));
    }
}
