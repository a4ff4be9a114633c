//! Reconciles `IdentityProvider`: validation, one-per-type precedence,
//! Secret and endpoint resolution, status.

pub mod precedence;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use super::error::{Error, Result};
use super::refs;
use super::status;
use crate::api::conditions::{ACCEPTED, Desired, READY, RECONCILING, RESOLVED_REFS, STALLED};
use crate::api::{IdentityProvider, IdentityProviderStatus, ResolvedEndpoints};
use crate::contract::rules;
use crate::idp::discovery;

/// What the reconcile concluded, before it becomes conditions.
enum Verdict {
    Duplicate { winner: String },
    Invalid(String),
    Unresolved { reason: &'static str, message: String, terminal: bool },
    Ready(ResolvedEndpoints),
}

/// Reconciles one IdentityProvider.
pub async fn reconcile(idp: Arc<IdentityProvider>, ctx: Arc<Context>) -> Result<Action> {
    if idp.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = idp.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let verdict = judge(&idp, &ns, &ctx).await?;
    let requeue = match &verdict {
        Verdict::Unresolved { terminal: false, .. } => ctx.settings.resync.min(std::time::Duration::from_secs(30)),
        _ => ctx.settings.resync,
    };
    let new = status_for(&idp, verdict);
    status::publish(&ctx, idp.as_ref(), idp.status.as_ref(), &new, |s| status::ready(&s.conditions)).await?;
    Ok(Action::requeue(requeue))
}

async fn judge(idp: &IdentityProvider, ns: &str, ctx: &Context) -> Result<Verdict> {
    let all = ctx.providers.state();
    if let Some(w) = precedence::winner(idp, &all)
        && w.name_any() != idp.name_any()
    {
        return Ok(Verdict::Duplicate { winner: w.name_any() });
    }
    let problems = rules::provider_problems(&idp.spec);
    if !problems.is_empty() {
        return Ok(Verdict::Invalid(problems.join("; ")));
    }
    // The client secret and the CA bundle, read live: the provider's own
    // watches may run ahead of the policies' caches.
    let wants = refs::of_provider(&idp.spec);
    let mut values = refs::Values::default();
    for r in &wants {
        match refs::read(&ctx.client, ns, r).await? {
            Ok(value) => values.insert(r, value),
            Err(e) => return Ok(Verdict::Unresolved { reason: e.reason(), message: e.in_field(r), terminal: false }),
        }
    }
    if let Err(e) = refs::check_usable(&wants, &values) {
        return Ok(Verdict::Unresolved { reason: e.reason, message: e.message, terminal: true });
    }
    let ca_pem = idp.spec.ca_bundle.as_ref().and_then(|b| values.ca_bundle(b));
    let http = match ctx.discovery_client(ca_pem) {
        Ok(http) => http,
        Err(_) => {
            return Ok(Verdict::Unresolved {
                reason: "InvalidReference",
                message: "caBundle: its certificates cannot be used to verify TLS".into(),
                terminal: true,
            });
        }
    };
    match discovery::resolve(&http, &idp.spec).await {
        Ok(endpoints) => Ok(Verdict::Ready(endpoints)),
        Err(e) => Ok(Verdict::Unresolved { reason: e.reason(), message: e.to_string(), terminal: e.is_terminal() }),
    }
}

fn status_for(idp: &IdentityProvider, verdict: Verdict) -> IdentityProviderStatus {
    let previous = idp.status.clone().unwrap_or_default();
    let kind = idp.spec.provider_type;
    let (desired, endpoints) = match verdict {
        Verdict::Duplicate { winner } => {
            let msg = format!(
                "IdentityProvider {winner:?} is the active {kind} provider in this namespace (oldest wins); only one provider per type is allowed. Delete this one or {winner:?}."
            );
            (
                vec![
                    Desired::falsy(ACCEPTED, "DuplicateType", msg.clone()),
                    Desired::falsy(READY, "DuplicateType", msg.clone()),
                    Desired::truthy(STALLED, "DuplicateType", msg),
                ],
                None,
            )
        }
        Verdict::Invalid(msg) => (
            vec![
                Desired::falsy(ACCEPTED, "Invalid", msg.clone()),
                Desired::falsy(READY, "Invalid", msg.clone()),
                Desired::truthy(STALLED, "Invalid", msg),
            ],
            None,
        ),
        Verdict::Unresolved { reason, message, terminal } => {
            let mut d = vec![
                Desired::truthy(ACCEPTED, "Valid", ""),
                Desired::falsy(RESOLVED_REFS, reason, message.clone()),
                Desired::falsy(READY, reason, message.clone()),
            ];
            // kstatus: a terminal error is Stalled; anything else is still in progress.
            d.push(if terminal {
                Desired::truthy(STALLED, reason, message)
            } else {
                Desired::truthy(RECONCILING, reason, message)
            });
            (d, previous.endpoints.clone())
        }
        Verdict::Ready(endpoints) => (
            vec![
                Desired::truthy(ACCEPTED, "Valid", ""),
                Desired::truthy(RESOLVED_REFS, "Resolved", ""),
                Desired::truthy(READY, "Ready", format!("{kind} provider is ready")),
            ],
            Some(endpoints),
        ),
    };
    let generation = idp.metadata.generation;
    IdentityProviderStatus {
        observed_generation: generation,
        conditions: status::merged(&previous.conditions, &desired, generation),
        endpoints,
    }
}
