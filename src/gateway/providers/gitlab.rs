//! GitLab (gitlab.com or self-hosted) over OpenID Connect.
//!
//! GitLab's ID token carries only `groups_direct`; the full list of group
//! paths (including subgroups and inherited membership) is the `groups`
//! claim of its userinfo endpoint. When the mapped groups claim is missing
//! from the ID token it is read from userinfo. Groups count both as groups
//! (`allowedGroups`) and as organizations (`allowedOrgs`). A failed userinfo
//! call makes the membership [`Membership::Unavailable`], so a group filter
//! denies rather than guesses.

use serde_json::{Map, Value};
use url::Url;

use super::HttpClient;
use super::claims::groups_claim;
use super::http::read_limited;
use crate::access::Membership;

/// Reads the groups claim from the userinfo endpoint.
pub async fn groups_from_userinfo(
    http: &HttpClient,
    userinfo: Option<&Url>,
    access_token: &str,
    claim: &str,
) -> Membership {
    let Some(url) = userinfo else {
        tracing::warn!("GitLab provider has no userinfo URL; group membership unavailable");
        return Membership::Unavailable;
    };
    let result = async {
        let response = http
            .reqwest()
            .get(url.clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await?;
        let status = response.status();
        let body = read_limited(response).await?;
        Ok::<_, super::http::HttpError>((status, body))
    }
    .await;
    match result {
        Ok((status, body)) if status.is_success() => match serde_json::from_slice::<Map<String, Value>>(&body) {
            Ok(claims) if claims.contains_key(claim) => groups_claim(claims.get(claim)),
            Ok(_) => Membership::Known(Vec::new()),
            Err(_) => {
                tracing::warn!("GitLab userinfo is not a JSON object; group membership unavailable");
                Membership::Unavailable
            }
        },
        Ok((status, _)) => {
            tracing::warn!(%status, "GitLab userinfo failed; group membership unavailable");
            Membership::Unavailable
        }
        Err(e) => {
            tracing::warn!(error = %e, "GitLab userinfo unreachable; group membership unavailable");
            Membership::Unavailable
        }
    }
}
