//! Reconciles `SessionRevocation`: says in status which instant is in
//! force, where it is delivered and until when, and deletes the object once
//! it can match no live session.
//!
//! The revocation itself reaches the gateways through the AuthPolicy
//! reconciler ([`super::auth_policy::revocations`]), which puts it into
//! each policy's gateway.yaml; this one only reports and prunes.
//!
//! Pruning works like a Job's `ttlSecondsAfterFinished`: `status.expiresAt`
//! is `before` plus the longest session lifetime among the policies it
//! applies to (the default lifetime when there are none), and once that
//! instant has passed the controller deletes the object. Every session it
//! could have ended was issued before `before`, so it has expired by then
//! anyway. A longer `session.ttl` set later moves `expiresAt` out.

mod targets;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

pub use targets::{Targets, mark_deleted, revocations_naming};

use super::auth_policy::revocations::{applies_to, before_of, ttl_seconds};
use super::context::Context;
use super::error::{Error, Result};
use super::status;
use crate::api::conditions::{Desired, READY};
use crate::api::{AuthPolicy, SessionRevocation, SessionRevocationStatus};
use crate::contract::session::DEFAULT_TTL_SECONDS;

/// Ready reason: in every policy's gateway configuration.
pub const DELIVERED: &str = "Delivered";
/// Ready reason: no policy it applies to exists.
pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";

/// How long a reconcile waits for the policies' cache's first list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// Reconciles one SessionRevocation. `policies` is a cache of AuthPolicies
/// fed by the same watch that wakes this controller on policy changes, so
/// a reconcile sees at least the change that woke it.
pub async fn reconcile(
    revocation: Arc<SessionRevocation>,
    ctx: Arc<Context>,
    policies: Store<AuthPolicy>,
) -> Result<Action> {
    if revocation.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = revocation.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    match tokio::time::timeout(SYNC_TIMEOUT, policies.wait_until_ready()).await {
        Ok(Ok(())) => {}
        _ => return Err(Error::NotSynced("AuthPolicy")),
    }
    let before = before_of(&revocation).ok_or(Error::MissingField("metadata.creationTimestamp"))?;
    let applies: Vec<Arc<AuthPolicy>> = policies
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && applies_to(&revocation, &ns, &p.name_any()))
        .collect();
    let judged = judge(&revocation, &ns, before, &applies);
    let now = Timestamp::now();
    if now >= judged.expires_at {
        prune(&ctx, &revocation, &ns).await?;
        return Ok(Action::await_change());
    }
    let generation = revocation.metadata.generation;
    let previous = revocation.status.clone().unwrap_or_default();
    let new = SessionRevocationStatus {
        before: Some(Time(before)),
        expires_at: Some(Time(judged.expires_at)),
        conditions: status::merged(&previous.conditions, &[judged.ready], generation),
        observed_generation: generation,
    };
    status::publish(&ctx, revocation.as_ref(), revocation.status.as_ref(), &new, |s| status::ready(&s.conditions))
        .await?;
    // Back at expiresAt to delete it (a second late, so the clock has passed it).
    let left = Duration::try_from(judged.expires_at.duration_since(now)).unwrap_or_default();
    Ok(Action::requeue((left + Duration::from_secs(1)).min(super::jittered(ctx.settings.resync))))
}

/// What a revocation's status says, before it is merged.
#[derive(Debug, PartialEq)]
pub struct Judged {
    /// `before` plus the longest session lifetime of `applies`.
    pub expires_at: Timestamp,
    /// The Ready condition.
    pub ready: Desired,
}

/// Judges `revocation`, in force from `before`, given the policies of its
/// namespace that it applies to.
pub fn judge(revocation: &SessionRevocation, ns: &str, before: Timestamp, applies: &[Arc<AuthPolicy>]) -> Judged {
    let ttl = applies.iter().map(|p| ttl_seconds(p)).max().unwrap_or(DEFAULT_TTL_SECONDS);
    let expires_at =
        before.checked_add(SignedDuration::from_secs(i64::try_from(ttl).unwrap_or(i64::MAX))).unwrap_or(Timestamp::MAX);
    let ready = match (&revocation.spec.policy, applies) {
        (Some(name), []) => Desired::falsy(
            READY,
            POLICY_NOT_FOUND,
            format!(
                "AuthPolicy {name:?} does not exist in namespace {ns:?}, so no gateway ends these sessions; check spec.policy (it takes effect if that policy appears before this revocation expires)"
            ),
        ),
        (None, []) => Desired::falsy(
            READY,
            POLICY_NOT_FOUND,
            format!(
                "there is no AuthPolicy in namespace {ns:?}, so no gateway ends these sessions; it applies to every AuthPolicy created here before it expires"
            ),
        ),
        (Some(name), _) => {
            Desired::truthy(READY, DELIVERED, format!("in the gateway configuration of AuthPolicy {name:?}"))
        }
        (None, all) => {
            let mut names: Vec<String> = all.iter().map(|p| p.name_any()).collect();
            names.sort();
            Desired::truthy(
                READY,
                DELIVERED,
                format!(
                    "in the gateway configuration of every AuthPolicy in namespace {ns:?} ({}: {})",
                    names.len(),
                    names.join(", ")
                ),
            )
        }
    };
    Judged { expires_at, ready }
}

/// Deletes an expired revocation, only if it is still the same object.
async fn prune(ctx: &Context, revocation: &SessionRevocation, ns: &str) -> Result<()> {
    let api: Api<SessionRevocation> = Api::namespaced(ctx.client.clone(), ns);
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: revocation.uid(), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&revocation.name_any(), &params).await {
        Ok(_) => {
            ctx.metrics.wrote("SessionRevocation");
            tracing::info!(name = %revocation.name_any(), namespace = %ns, "deleted an expired SessionRevocation");
            Ok(())
        }
        // Already gone, or replaced by a new object of the same name.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
