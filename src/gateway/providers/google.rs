//! Google accounts over OpenID Connect.
//!
//! Google says whether an address is verified (`email_verified`, enforced
//! for every provider by the access rules) and, for Google Workspace
//! accounts, which Workspace domain the account belongs to (`hd`). An email
//! address alone does not prove Workspace membership: anyone can create a
//! consumer Google account for an address they can receive mail at, and
//! keep it after leaving the company. So a Google identity carries
//! [`DomainProof::Workspace`], and wherever a domain rule applies the
//! access layer requires `hd` to be present and allowed too.

use serde_json::{Map, Value};

use crate::access::DomainProof;

/// Extra authorization parameters: a refresh token (`access_type=offline`)
/// and, when the allow-lists name exactly one domain, the `hd`
/// account-chooser hint.
///
/// Google returns a refresh token only when the user consents, which it
/// asks only the first time: a second sign-in (new browser, cookie lost)
/// would get none, and that session could not be refreshed or
/// re-validated. So unless the login asks for a `prompt` of its own,
/// `prompt=consent` is requested, as oauth2-proxy's default
/// `approval_prompt=force` does.
pub fn authorization_params(domain_hint: Option<&str>, prompted: bool) -> Vec<(&'static str, String)> {
    let mut params = vec![("access_type", "offline".to_owned())];
    if !prompted {
        params.push(("prompt", "consent".to_owned()));
    }
    if let Some(only) = domain_hint {
        params.push(("hd", only.to_owned()));
    }
    params
}

/// The Workspace domain of verified claims, as the access rules need it.
pub fn domain_proof(claims: &Map<String, Value>) -> DomainProof {
    DomainProof::Workspace(claims.get("hd").and_then(Value::as_str).filter(|h| !h.is_empty()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_workspace_domain_comes_from_hd_only() {
        assert_eq!(
            domain_proof(&claims(json!({"hd": "example.com"}))),
            DomainProof::Workspace(Some("example.com".into()))
        );
        assert_eq!(domain_proof(&claims(json!({"email": "a@example.com"}))), DomainProof::Workspace(None));
        assert_eq!(domain_proof(&claims(json!({"hd": ""}))), DomainProof::Workspace(None));
        assert_eq!(domain_proof(&claims(json!({"hd": 7}))), DomainProof::Workspace(None));
    }

    #[test]
    fn offline_access_always_and_hd_only_with_a_hint() {
        let one = authorization_params(Some("example.com"), false);
        assert!(one.contains(&("hd", "example.com".into())));
        assert!(one.contains(&("access_type", "offline".into())));
        assert!(!authorization_params(None, false).iter().any(|(k, _)| *k == "hd"));
    }

    #[test]
    fn consent_is_asked_so_that_every_sign_in_gets_a_refresh_token_unless_the_login_prompts_itself() {
        assert!(authorization_params(None, false).contains(&("prompt", "consent".into())));
        let prompted = authorization_params(None, true);
        assert!(!prompted.iter().any(|(k, _)| *k == "prompt"), "one prompt only: the login's own");
    }
}
