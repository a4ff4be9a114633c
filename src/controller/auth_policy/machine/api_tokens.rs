//! The ApiTokens of a policy in force, hashes only: those of its namespace
//! that name it, are Ready (issued, not expired) and carry
//! `status.tokenSha256`. Read from the watch cache, never from Secrets, so
//! the policy's gateway.yaml never sees a token.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::conditions::READY;
use crate::api::{ApiToken, AuthPolicy};
use crate::contract::machine::ApiTokenEntry;
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};

/// How long a reconcile waits for the ApiToken cache's first list.
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ApiTokens `policy`'s gateway accepts. Fails (to be retried) while
/// the cache has not listed yet: rendering without them would take every
/// token from running gateways.
pub async fn in_force(ctx: &Context, policy: &AuthPolicy, ns: &str) -> Result<Vec<ApiTokenEntry>> {
    match tokio::time::timeout(SYNC_TIMEOUT, ctx.api_tokens.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::NotSynced("ApiToken")),
    }
    let now = Timestamp::now().as_second();
    let tokens = ctx.api_tokens.state();
    Ok(collect(tokens.iter().map(AsRef::as_ref), ns, &policy.name_any(), now))
}

/// The entries of `tokens` for policy `name` in `ns` at Unix second `now`,
/// sorted by name so the rendered config is stable.
pub fn collect<'a>(tokens: impl Iterator<Item = &'a ApiToken>, ns: &str, name: &str, now: i64) -> Vec<ApiTokenEntry> {
    let mut out: Vec<ApiTokenEntry> = tokens
        .filter(|t| t.namespace().as_deref() == Some(ns) && t.spec.policy == name)
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .filter_map(|t| {
            let status = t.status.as_ref()?;
            let ready = crate::api::conditions::find(&status.conditions, READY).is_some_and(|c| c.status == "True");
            let expires_at = status.expires_at.as_ref()?.0.as_second();
            if !ready || expires_at <= now {
                return None;
            }
            Some(ApiTokenEntry {
                name: t.name_any(),
                sha256: status.token_sha256.clone()?,
                user: t.spec.user.clone(),
                groups: t.spec.groups.clone(),
                scopes: t.spec.scopes.clone(),
                expires_at: u64::try_from(expires_at).ok()?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiTokenSpec, ApiTokenStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn token(name: &str, ns: &str, policy: &str, ready: &str, expires: i64) -> ApiToken {
        let mut t = ApiToken::new(
            name,
            ApiTokenSpec {
                policy: policy.into(),
                user: "bot".into(),
                groups: vec!["g".into()],
                scopes: vec!["read".into()],
                ttl: "1h".into(),
            },
        );
        t.metadata.namespace = Some(ns.into());
        t.status = Some(ApiTokenStatus {
            token_sha256: Some(format!("{name:0>64}")),
            expires_at: Some(Time(Timestamp::from_second(expires).unwrap())),
            conditions: vec![Condition {
                type_: READY.into(),
                status: ready.into(),
                reason: "Issued".into(),
                message: String::new(),
                last_transition_time: Time(Timestamp::from_second(0).unwrap()),
                observed_generation: None,
            }],
            ..ApiTokenStatus::default()
        });
        t
    }

    #[test]
    fn only_ready_unexpired_tokens_of_this_policy_and_namespace_are_in_force() {
        let tokens = [
            token("b", "ns", "web", "True", 2_000),
            token("a", "ns", "web", "True", 2_000),
            token("other-policy", "ns", "api", "True", 2_000),
            token("other-ns", "x", "web", "True", 2_000),
            token("not-ready", "ns", "web", "False", 2_000),
            token("expired", "ns", "web", "True", 1_000),
        ];
        let got = collect(tokens.iter(), "ns", "web", 1_000);
        let names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(got[0].sha256, format!("{:0>64}", "a"));
        assert_eq!((got[0].user.as_str(), got[0].expires_at), ("bot", 2_000));
        assert_eq!(got[0].scopes, ["read"]);
        assert_eq!(got[0].groups, ["g"]);
        let mut no_hash = token("c", "ns", "web", "True", 2_000);
        no_hash.status.as_mut().unwrap().token_sha256 = None;
        assert!(collect([no_hash].iter(), "ns", "web", 1_000).is_empty());
    }
}
