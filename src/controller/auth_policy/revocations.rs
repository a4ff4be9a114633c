//! Which SessionRevocations a policy's gateway carries: those in its
//! namespace that name it or name no policy, as `session.revocations` of
//! gateway.yaml. Pure: the revocations come from the watch cache.
//!
//! A revocation is in force from its `before` (`spec.before`, else its
//! creation time) until `before` plus the policy's session lifetime: a
//! session it could end was issued before `before`, so it has expired by
//! then anyway. Past that it is left out (and the SessionRevocation
//! reconciler deletes the object). Newest first, at most
//! [`MAX_REVOCATIONS`]; the rest are counted so the caller can say so.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{AuthPolicy, SessionRevocation};
use crate::contract::rules::parse_duration_secs;
use crate::contract::session::{DEFAULT_TTL_SECONDS, MAX_REVOCATIONS, UserRevocation};
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};

/// The revocations one policy's gateway carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Newest first, at most [`MAX_REVOCATIONS`].
    pub revocations: Vec<UserRevocation>,
    /// How many in-force revocations were left out by the cap.
    pub dropped: usize,
}

/// Reason of the Warning Event when revocations were left out.
pub const CAPPED: &str = "RevocationsCapped";

impl Collected {
    /// What to tell a person when the cap left some out.
    pub fn capped_message(&self) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "{} SessionRevocations apply to this policy; its gateways carry only the newest {MAX_REVOCATIONS} and {} older ones are NOT enforced. Use spec.session.notBefore to end every session instead, or delete revocations that are no longer needed",
                self.revocations.len() + self.dropped,
                self.dropped
            )
        })
    }
}

/// How long a reconcile waits for the SessionRevocation cache's first list.
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What `policy`'s gateway carries now, from the cache. Fails (to be
/// retried) while the cache has not listed yet: rendering without the
/// revocations would take them back from running gateways.
pub async fn in_force(ctx: &Context, policy: &AuthPolicy, namespace: &str) -> Result<Collected> {
    match tokio::time::timeout(SYNC_TIMEOUT, ctx.revocations.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::NotSynced("SessionRevocation")),
    }
    let now = u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
    Ok(collect(&ctx.revocations.state(), namespace, &policy.name_any(), ttl_seconds(policy), now))
}

/// Brings the revocations and `notBefore` of the last good gateway.yaml up
/// to date while the rest of the policy cannot be rendered (a provider not
/// Ready, a missing Secret): ending sessions must not wait for an unrelated
/// fix. Everything else in that Secret stays exactly as it was, the cookie
/// keys and their rotation marker included. Nothing is written when there
/// is no such Secret or it is already current.
pub async fn deliver_to_last_good(ctx: &Context, policy: &AuthPolicy, namespace: &str) -> Result<()> {
    use crate::controller::cache::Caches;
    use crate::controller::children::{self, CONFIG_FILE, apply, secret::ROTATED_ANNOTATION};
    let name = children::secret_name(&policy.name_any());
    let Some(cached) = Caches::get(&ctx.caches.secrets, namespace, &name) else { return Ok(()) };
    let collected = in_force(ctx, policy, namespace).await?;
    let not_before = policy.spec.session.not_before.as_ref().map_or(0, |t| u64::try_from(t.0.as_second()).unwrap_or(0));
    let current = |secret: &k8s_openapi::api::core::v1::Secret| {
        let yaml = secret.data.as_ref().and_then(|d| d.get(CONFIG_FILE)).map(|v| String::from_utf8_lossy(&v.0));
        yaml.and_then(|y| crate::contract::config::GatewayConfig::from_yaml(&y).ok())
    };
    // Unreadable (not ours to fix here) or already current: nothing to do.
    match current(&cached) {
        Some(c) if c.session.revocations != collected.revocations || c.session.not_before != not_before => {}
        _ => return Ok(()),
    }
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(ctx.client.clone(), namespace);
    let written = apply::ensure(&secrets, &name, Some(cached), |existing| {
        let Some(existing) = existing else { return Err(Error::MissingField("the last good Secret")) };
        let mut config = current(existing).ok_or(Error::MissingField("gateway.yaml of the last good Secret"))?;
        config.session.revocations = collected.revocations.clone();
        config.session.not_before = not_before;
        let mut secret = children::secret::build(policy, &children::secret::data(&config)?);
        let marker = existing.metadata.annotations.as_ref().and_then(|a| a.get(ROTATED_ANNOTATION));
        secret.metadata.annotations =
            marker.map(|m| std::collections::BTreeMap::from([(ROTATED_ANNOTATION.to_owned(), m.clone())]));
        Ok((secret, ()))
    })
    .await?;
    if written.applied == apply::Applied::Changed {
        ctx.metrics.wrote("AuthPolicy");
        tracing::info!(name = %policy.name_any(), namespace, "delivered revocations to the last good gateway configuration");
    }
    Ok(())
}

/// The instant a revocation ends sessions before: `spec.before`, else its
/// creation time. `None` only for an object that was never stored.
pub fn before_of(revocation: &SessionRevocation) -> Option<Timestamp> {
    revocation.spec.before.as_ref().or(revocation.metadata.creation_timestamp.as_ref()).map(|t| t.0)
}

/// The policy's session lifetime in seconds; the default when it does not
/// parse (the policy itself is then refused as Invalid).
pub fn ttl_seconds(policy: &AuthPolicy) -> u64 {
    parse_duration_secs(&policy.spec.session.ttl).unwrap_or(DEFAULT_TTL_SECONDS)
}

/// Whether `revocation` applies to policy `name` in `namespace`.
pub fn applies_to(revocation: &SessionRevocation, namespace: &str, name: &str) -> bool {
    revocation.namespace().as_deref() == Some(namespace)
        && revocation.spec.policy.as_deref().is_none_or(|p| p == name)
        && (revocation.spec.user.is_some() || revocation.spec.email.is_some())
}

/// Until when (Unix seconds) a revocation with `before` can still match a
/// session of a policy whose sessions live `ttl` seconds.
pub fn in_force_until(before: u64, ttl: u64) -> u64 {
    before.saturating_add(ttl)
}

/// The revocations of `all` that policy `name` in `namespace`, with
/// sessions of `ttl` seconds, must carry at `now` (Unix seconds).
pub fn collect(all: &[Arc<SessionRevocation>], namespace: &str, name: &str, ttl: u64, now: u64) -> Collected {
    let mut in_force: Vec<(UserRevocation, String)> = all
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none() && applies_to(r, namespace, name))
        .filter_map(|r| {
            let before = u64::try_from(before_of(r)?.as_second()).ok().filter(|b| *b > 0)?;
            let revocation = UserRevocation { user: r.spec.user.clone(), email: r.spec.email.clone(), before };
            Some((revocation, r.name_any()))
        })
        .filter(|(r, _)| now < in_force_until(r.before, ttl))
        .collect();
    // Newest first; by name among equals, so the rendered list (and so the
    // Secret) does not change from one reconcile to the next.
    in_force.sort_by(|(a, an), (b, bn)| b.before.cmp(&a.before).then_with(|| an.cmp(bn)));
    let dropped = in_force.len().saturating_sub(MAX_REVOCATIONS);
    in_force.truncate(MAX_REVOCATIONS);
    Collected { revocations: in_force.into_iter().map(|(r, _)| r).collect(), dropped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn revocation(ns: &str, name: &str, policy: Option<&str>, user: &str, before: i64) -> Arc<SessionRevocation> {
        let spec = serde_json::from_value(serde_json::json!({"user": user, "policy": policy})).unwrap();
        let mut r = SessionRevocation::new(name, spec);
        r.metadata.namespace = Some(ns.into());
        r.metadata.creation_timestamp = Some(Time(Timestamp::from_second(before).unwrap()));
        Arc::new(r)
    }

    fn users(c: &Collected) -> Vec<&str> {
        c.revocations.iter().map(|r| r.user.as_deref().unwrap()).collect()
    }

    #[test]
    fn a_policy_gets_what_names_it_or_names_no_policy_in_its_namespace_newest_first() {
        let all = [
            revocation("a", "r1", Some("p"), "alice", 100),
            revocation("a", "r2", None, "bob", 300),
            revocation("a", "r3", Some("other"), "carol", 200),
            revocation("b", "r4", Some("p"), "dave", 200),
            revocation("a", "r5", Some("p"), "erin", 200),
        ];
        let c = collect(&all, "a", "p", 1000, 400);
        assert_eq!(users(&c), ["bob", "erin", "alice"]);
        assert_eq!(c.revocations[0].before, 300);
        assert_eq!(c.dropped, 0);
        assert_eq!(c.capped_message(), None);
        assert_eq!(users(&collect(&all, "a", "other", 1000, 400)), ["bob", "carol"]);
    }

    #[test]
    fn spec_before_wins_over_the_creation_time() {
        let mut r = (*revocation("a", "r", None, "alice", 100)).clone();
        r.spec.before = Some(Time(Timestamp::from_second(50).unwrap()));
        let c = collect(&[Arc::new(r)], "a", "p", 1000, 400);
        assert_eq!(c.revocations[0].before, 50);
    }

    #[test]
    fn a_revocation_past_before_plus_ttl_is_left_out() {
        let all = [revocation("a", "old", None, "alice", 100), revocation("a", "new", None, "bob", 300)];
        // 100 + 250 = 350 <= 350: nothing it could match is alive any more.
        assert_eq!(users(&collect(&all, "a", "p", 250, 350)), ["bob"]);
        assert_eq!(users(&collect(&all, "a", "p", 250, 349)), ["bob", "alice"]);
        assert!(collect(&all, "a", "p", 250, 550).revocations.is_empty());
    }

    #[test]
    fn more_than_the_cap_keeps_the_newest_and_counts_the_rest() {
        let all: Vec<_> = (0..MAX_REVOCATIONS as i64 + 3)
            .map(|i| revocation("a", &format!("r{i:04}"), None, &format!("u{i}"), 1000 + i))
            .collect();
        let c = collect(&all, "a", "p", 100_000, 2000);
        assert_eq!(c.revocations.len(), MAX_REVOCATIONS);
        assert_eq!(c.dropped, 3);
        assert_eq!(c.revocations[0].user.as_deref(), Some(format!("u{}", MAX_REVOCATIONS + 2).as_str()));
        assert_eq!(c.revocations.last().unwrap().before, 1003, "the three oldest (1000..=1002) are dropped");
        let message = c.capped_message().unwrap();
        assert!(message.contains("259 SessionRevocations") && message.contains("3 older ones are NOT enforced"));
    }

    #[test]
    fn the_order_is_stable_whatever_order_the_cache_lists_them_in() {
        let mut all = vec![
            revocation("a", "b", None, "x", 100),
            revocation("a", "a", None, "y", 100),
            revocation("a", "c", None, "z", 100),
        ];
        let first = collect(&all, "a", "p", 1000, 200);
        all.reverse();
        assert_eq!(collect(&all, "a", "p", 1000, 200), first);
        assert_eq!(users(&first), ["y", "x", "z"]);
    }
}
