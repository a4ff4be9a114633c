//! Reconciles `ApiToken`: keeps its token in the Secret `<name>-token`
//! (owned by the ApiToken, so deleting the ApiToken deletes it) and says in
//! status the token's SHA-256, when it was issued and when it expires.
//!
//! A token is generated only when the Secret is missing, holds no token
//! whose hash is the one in status, or the annotation
//! `authgate.dev/rotate` differs from `status.rotation`; otherwise a
//! reconcile writes nothing. The token never appears in a log, an Event or
//! status. The token reaches the gateway only as its hash, through the
//! AuthPolicy reconciler ([`super::auth_policy::machine::api_tokens`]),
//! which reads `status.tokenSha256` from the cache, never the Secret.

pub mod targets;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, Result};
use super::status;
use crate::api::FIELD_MANAGER;
use crate::api::api_token::{EXPIRED, ISSUED, ROTATE_ANNOTATION, TOKEN_KEY};
use crate::api::conditions::{Desired, READY};
use crate::api::{ApiToken, ApiTokenSpec, ApiTokenStatus, AuthPolicy};
use crate::contract::api_token::{generate, hashes_equal, looks_like, sha256_hex};
use crate::contract::rules::parse_duration_secs;

/// Ready reason: the Secret `<name>-token` exists and belongs to someone
/// else, so no token is issued into it.
pub const SECRET_CONFLICT: &str = "SecretConflict";
/// Condition reason while not expired.
pub const NOT_EXPIRED: &str = "NotExpired";
/// Ready reason: `spec.policy` names no AuthPolicy of the namespace.
pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";
/// Ready reason: `spec.scopes` names scopes the policy does not define.
pub const UNKNOWN_SCOPE: &str = "UnknownScope";

/// The Secret holding `token`'s token.
pub fn secret_name(token: &str) -> String {
    format!("{token}-token")
}

/// Reconciles one ApiToken.
pub async fn reconcile(token: Arc<ApiToken>, ctx: Arc<Context>) -> Result<Action> {
    if token.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = token.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = token.name_any();
    let uid = token.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret_name = secret_name(&name);
    let live = secrets.get_opt(&secret_name).await?;
    let previous = token.status.clone().unwrap_or_default();
    let rotation = token.annotations().get(ROTATE_ANNOTATION).cloned();
    let generation = token.metadata.generation;

    if let Some(s) = &live
        && !s.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true))
    {
        let ready = Desired::falsy(
            READY,
            SECRET_CONFLICT,
            format!(
                "Secret {secret_name:?} exists and is not this ApiToken's; delete or rename it so a token can be issued"
            ),
        );
        let new = ApiTokenStatus {
            conditions: status::merged(&previous.conditions, &[ready], generation),
            observed_generation: generation,
            ..ApiTokenStatus::default()
        };
        status::publish(&ctx, token.as_ref(), token.status.as_ref(), &new, |s| status::ready(&s.conditions)).await?;
        return Ok(Action::requeue(super::jittered(ctx.settings.resync)));
    }

    let now = Timestamp::now();
    let (hash, issued_at) = match current(live.as_ref(), &previous, rotation.as_deref()) {
        Some(kept) => kept,
        None => {
            let fresh = generate();
            let hash = sha256_hex(&fresh);
            secrets
                .patch(&secret_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret(&token, &fresh)))
                .await?;
            ctx.metrics.wrote("Secret");
            tracing::info!(name = %name, namespace = %ns, secret = %secret_name, "issued an ApiToken");
            (hash, now)
        }
    };
    let ttl = parse_duration_secs(&token.spec.ttl).ok_or(Error::MissingField("spec.ttl"))?;
    let expires_at = issued_at
        .checked_add(SignedDuration::from_secs(i64::try_from(ttl).unwrap_or(i64::MAX)))
        .unwrap_or(Timestamp::MAX);
    let policy = ctx.policies.get(&ObjectRef::new(&token.spec.policy).within(&ns));
    let conditions = judge(now, expires_at, &token.spec, &ns, policy.as_deref());
    let new = ApiTokenStatus {
        secret_name: Some(secret_name),
        token_sha256: Some(hash),
        issued_at: Some(Time(issued_at)),
        expires_at: Some(Time(expires_at)),
        rotation,
        conditions: status::merged(&previous.conditions, &conditions, generation),
        observed_generation: generation,
    };
    status::publish(&ctx, token.as_ref(), token.status.as_ref(), &new, |s| status::ready(&s.conditions)).await?;
    let resync = super::jittered(ctx.settings.resync);
    if now >= expires_at {
        return Ok(Action::requeue(resync));
    }
    // Back just past expiresAt to say it expired.
    let left = Duration::try_from(expires_at.duration_since(now)).unwrap_or_default();
    Ok(Action::requeue((left + Duration::from_secs(1)).min(resync)))
}

/// The hash and issue time of the token to keep, or `None` when a new one
/// must be issued: the Secret holds a token whose hash is the one in
/// status, issued under the current rotation value.
pub fn current(
    live: Option<&Secret>,
    previous: &ApiTokenStatus,
    rotation: Option<&str>,
) -> Option<(String, Timestamp)> {
    let recorded = previous.token_sha256.as_deref()?;
    let issued_at = previous.issued_at.as_ref()?.0;
    if previous.rotation.as_deref() != rotation {
        return None;
    }
    let bytes = live?.data.as_ref()?.get(TOKEN_KEY)?;
    let held = std::str::from_utf8(&bytes.0).ok()?;
    if !looks_like(held) {
        return None;
    }
    let hash = sha256_hex(held);
    hashes_equal(&hash, recorded).then_some((hash, issued_at))
}

/// The Ready and Expired conditions at `now`, given the token's policy as
/// cached (`None`: there is no such AuthPolicy).
pub fn judge(
    now: Timestamp,
    expires_at: Timestamp,
    spec: &ApiTokenSpec,
    ns: &str,
    policy: Option<&AuthPolicy>,
) -> Vec<Desired> {
    let name = &spec.policy;
    if now >= expires_at {
        return vec![
            Desired::falsy(
                READY,
                EXPIRED,
                format!(
                    "expired at {expires_at}; the gateway refuses it. Set the annotation {ROTATE_ANNOTATION} to a new value to issue a new token"
                ),
            ),
            Desired::truthy(EXPIRED, EXPIRED, format!("expired at {expires_at}")),
        ];
    }
    let not_expired = Desired::falsy(EXPIRED, NOT_EXPIRED, format!("valid until {expires_at}"));
    let Some(policy) = policy else {
        let ready = Desired::falsy(
            READY,
            POLICY_NOT_FOUND,
            format!(
                "AuthPolicy {name:?} does not exist in namespace {ns:?}, so no gateway accepts this token; check spec.policy (it takes effect once that policy exists)"
            ),
        );
        return vec![ready, not_expired];
    };
    let defined: Vec<&str> = policy.spec.scopes.iter().map(|s| s.name.as_str()).collect();
    let unknown: Vec<&str> =
        spec.scopes.iter().map(String::as_str).filter(|s| !defined.is_empty() && !defined.contains(s)).collect();
    if !unknown.is_empty() {
        let ready = Desired::falsy(
            READY,
            UNKNOWN_SCOPE,
            format!(
                "scopes {unknown:?} are not in AuthPolicy {name:?}'s spec.scopes (it defines {}); the gateway grants nothing for them",
                defined.join(", ")
            ),
        );
        return vec![ready, not_expired];
    }
    let ready = Desired::truthy(
        READY,
        ISSUED,
        format!("in the gateway configuration of AuthPolicy {name:?} until {expires_at}"),
    );
    vec![ready, not_expired]
}

/// The Secret carrying `value` for `token`.
fn secret(token: &ApiToken, value: &str) -> Secret {
    let labels = BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "authgate".to_owned())]);
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&token.name_any())),
            namespace: token.namespace(),
            labels: Some(labels),
            owner_references: token.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(TOKEN_KEY.to_owned(), ByteString(value.as_bytes().to_vec()))])),
        ..Secret::default()
    }
}
