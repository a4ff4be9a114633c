//! Reconciles `AuthPolicy`: resolves providers and every Secret and
//! ConfigMap the policy names (route credentials, upstream TLS), validates
//! access rules with `crate::access`, writes the Secret, Deployment,
//! Service and route (`expose`), and reports the gateway's readiness.
//!
//! When anything is wrong, nothing is written except status: the last good
//! Secret and Deployment keep serving. The one exception is a route that
//! cannot be written (`expose`): the gateway is still kept up to date.

mod disruption;
mod expose;
mod machine;
pub mod readiness;
pub mod render;
mod render_error;
pub mod revocations;
mod session_store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_routes;
pub mod upstreams;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::cache::Caches;
use super::children::apply::Owned;
use super::children::{self, apply};
use super::context::Context;
use super::error::{Error, Result};
use super::refs::{self, Values};
use super::status;
use crate::api::conditions::{self, ACCEPTED, Desired, READY, RECONCILING, RESOLVED_REFS, STALLED};
use crate::api::{AuthPolicy, AuthPolicyStatus, Authentication};
use crate::contract::rules;
use readiness::Rollout;
use render::ResolvedProvider;

/// Accepted reason of a policy that turns certificate verification off
/// towards an upstream.
pub const INSECURE_SKIP_VERIFY: &str = "InsecureSkipVerify";

/// A problem that stops the policy from being (re)applied, or, with
/// `gateway_written`, only its route.
struct Blocked {
    condition: &'static str,
    reason: &'static str,
    message: String,
    terminal: bool,
    gateway_written: bool,
}

impl Blocked {
    fn new(condition: &'static str, reason: &'static str, message: impl Into<String>, terminal: bool) -> Self {
        Self { condition, reason, message: message.into(), terminal, gateway_written: false }
    }

    /// The route could not be written though the gateway's children were.
    /// Only a person can fix it (remove the foreign route, install the
    /// Gateway API), so it is terminal: looked at again at each resync.
    fn route(condition: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { gateway_written: true, ..Self::new(condition, reason, message, true) }
    }
}

/// Reconciles one AuthPolicy.
pub async fn reconcile(policy: Arc<AuthPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if policy.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Action::await_change());
    }
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;

    let (outcome, deployment) = match resolve(&policy, &ns, &ctx).await? {
        Ok(resolved) => match write_children(&policy, &ns, &ctx, &resolved).await? {
            Ok((current, None)) => (Ok(()), Some(current)),
            Ok((current, Some(route_problem))) => (Err(route_problem), Some(current)),
            Err(blocked) => (Err(blocked), None),
        },
        Err(blocked) => (Err(blocked), None),
    };
    if matches!(&outcome, Err(b) if !b.gateway_written) {
        revocations::deliver_to_last_good(&ctx, &policy, &ns).await?;
    }
    let deployment =
        deployment.or_else(|| Caches::get(&ctx.caches.deployments, &ns, &children::gateway_name(&policy.name_any())));
    let rollout = readiness::rollout(deployment.as_deref());
    // A provider can turn Ready in the providers' cache a moment after this
    // controller's own watch reported it; look again soon rather than
    // waiting a whole resync. Terminal problems wait for a change.
    let requeue = match &outcome {
        Err(b) if !b.terminal => ctx.settings.resync.min(std::time::Duration::from_secs(5)),
        _ => ctx.settings.resync,
    };
    let new = status_for(&policy, &ns, outcome, &rollout);
    status::publish(&ctx, policy.as_ref(), policy.status.as_ref(), &new, |s| status::ready(&s.conditions)).await?;
    // Turning verification off is said once more, as a Warning Event, when it starts.
    let accepted = |s: Option<&AuthPolicyStatus>| {
        s.and_then(|s| conditions::find(&s.conditions, ACCEPTED)).map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = accepted(Some(&new))
        && reason == INSECURE_SKIP_VERIFY
        && accepted(policy.status.as_ref()).is_none_or(|(r, _)| r != INSECURE_SKIP_VERIFY)
    {
        status::warn(&ctx, policy.as_ref(), INSECURE_SKIP_VERIFY, &message).await;
    }
    Ok(Action::requeue(super::jittered(requeue)))
}

/// What a policy needs in hand before it can be rendered.
struct Resolved {
    providers: Vec<ResolvedProvider>,
    values: Values,
}

/// Resolves every named provider to a Ready one with its secret and CA
/// bundle, checks the access rules, and reads every Secret and ConfigMap
/// key the policy names.
async fn resolve(policy: &AuthPolicy, ns: &str, ctx: &Context) -> Result<Result<Resolved, Blocked>> {
    let problems = rules::policy_problems(&policy.spec);
    if !problems.is_empty() {
        return Ok(Err(Blocked::new(ACCEPTED, "Invalid", problems.join("; "), true)));
    }
    let mut resolved = Vec::with_capacity(policy.spec.providers.len());
    for wanted in &policy.spec.providers {
        let key = kube::runtime::reflector::ObjectRef::<crate::api::IdentityProvider>::new(wanted).within(ns);
        let Some(idp) = ctx.providers.get(&key) else {
            return Ok(Err(Blocked::new(
                RESOLVED_REFS,
                "ProviderNotFound",
                format!("IdentityProvider {wanted:?} does not exist in namespace {ns:?}"),
                false,
            )));
        };
        let conds = idp.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
        if !conditions::is_true(conds, READY) {
            let why = conditions::find(conds, READY)
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_else(|| "not reconciled yet".into());
            return Ok(Err(Blocked::new(
                RESOLVED_REFS,
                "ProviderNotReady",
                format!("IdentityProvider {wanted:?} is not Ready ({why})"),
                false,
            )));
        }
        let wants = refs::of_provider(&idp.spec);
        let values = match ctx.caches.resolve(&ctx.client, ns, &wants).await? {
            Ok(values) => refs::check_usable(&wants, &values).map(|()| values),
            Err(failed) => Err(failed),
        };
        let values = match values {
            Ok(values) => values,
            Err(e) => {
                let message = format!("IdentityProvider {wanted:?}: {}", e.message);
                return Ok(Err(Blocked::new(RESOLVED_REFS, "ProviderNotReady", message, false)));
            }
        };
        let secret_ref = refs::Reference::client_secret(&idp.spec.client_secret_ref);
        let client_secret =
            values.get(secret_ref.source, &secret_ref.name, &secret_ref.key).unwrap_or_default().to_owned();
        let ca_pem = idp.spec.ca_bundle.as_ref().and_then(|b| values.ca_bundle(b)).map(str::to_owned);
        resolved.push(ResolvedProvider { idp, client_secret, ca_pem });
    }
    let specs = resolved.iter().map(|p| (p.idp.name_any(), &p.idp.spec));
    if let Some(message) = rules::unrestricted_public_provider(&policy.spec, specs) {
        return Ok(Err(Blocked::new(ACCEPTED, "NoAccessRestriction", message, true)));
    }
    // The routes' and upstream's Secrets and ConfigMaps. A missing one keeps
    // the last good gateway serving, and is looked at again when it appears
    // (the reference index wakes this policy) or soon.
    let wants = refs::of_policy(&policy.spec);
    let values = match ctx.caches.resolve(&ctx.client, ns, &wants).await? {
        Ok(values) => refs::check_usable(&wants, &values).map(|()| values),
        Err(failed) => Err(failed),
    };
    match values {
        Ok(values) => Ok(Ok(Resolved { providers: resolved, values })),
        Err(e) => Ok(Err(Blocked::new(RESOLVED_REFS, e.reason, e.message, false))),
    }
}

/// Renders and applies the Secret, Deployment, Service and route, and
/// returns the gateway Deployment as it now stands, with the problem that
/// kept the route from being written, if any.
///
/// The Secret is written before the Deployment. Running gateways reload the
/// Secret's `gateway.yaml` as the kubelet refreshes it, so the pod template
/// carries only the hash of what a reload cannot change
/// ([`crate::contract::config::GatewayConfig::restart_fingerprint`]): revocations, rules, providers
/// and keys never roll the pods.
/// The Service and the route do not depend on either and are applied
/// alongside.
async fn write_children(
    policy: &AuthPolicy,
    ns: &str,
    ctx: &Context,
    resolved: &Resolved,
) -> Result<Result<(Arc<Deployment>, Option<Blocked>), Blocked>> {
    let name = policy.name_any();
    let upstream = policy.spec.upstream_url(ns);
    if policy.spec.upstream.is_some() && upstream.is_none() {
        return Ok(Err(Blocked::new(ACCEPTED, "Invalid", "upstream must set exactly one of service or url", true)));
    }
    // The cookie keys come from the existing Secret, inside `ensure`.
    let mut config =
        match render::gateway_config(policy, upstream.as_deref(), &resolved.providers, &resolved.values, Vec::new()) {
            Ok(c) => c,
            Err(e) => return Ok(Err(Blocked::new(ACCEPTED, "Invalid", e.to_string(), true))),
        };
    if let Some(why) = children::deployment::image_refusal(policy, &ctx.settings) {
        return Ok(Err(Blocked::new(ACCEPTED, "ImageNotAllowed", why, true)));
    }
    let collected = revocations::in_force(ctx, policy, ns).await?;
    config.session.revocations = collected.revocations.clone();
    config.machine = match machine::config(ctx, policy, ns).await? {
        Ok(m) => m,
        Err(blocked) => return Ok(Err(blocked)),
    };
    // Never write a config the gateway would refuse to start with.
    if let Err(problem) = crate::contract::validate::check(&config) {
        return Ok(Err(Blocked::new(ACCEPTED, "Invalid", problem, true)));
    }
    let rotation = children::secret::rotation_of(policy);
    let retirement = children::secret::retirement_of(policy);
    let secret_name = children::secret_name(&name);
    let gateway_name = children::gateway_name(&name);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);

    // Each child only if it is ours: an object of the same name that this
    // policy does not control is left exactly as it is, and said in status.
    let uid = policy.uid().unwrap_or_default();
    let foreign = |kind: &str, name: &str, other: &dyn Fn() -> String| {
        Blocked::new(
            ACCEPTED,
            "NameInUse",
            format!(
                "{kind} {ns}/{name} already exists and is {}; authgate leaves it untouched. Delete or rename it, or rename this AuthPolicy",
                other()
            ),
            true,
        )
    };
    let secret_then_deployment = async {
        let cached = Caches::get(&ctx.caches.secrets, ns, &secret_name);
        let secret = match apply::ensure_owned(&secrets, &secret_name, cached, &uid, |existing| {
            let mut config = config.clone();
            config.session.keys = children::secret::cookie_keys(existing, rotation, retirement);
            let data = children::secret::data(&config)?;
            Ok((children::secret::build(policy, &data), config.restart_fingerprint()))
        })
        .await?
        {
            Owned::Ensured(e) => e,
            Owned::Foreign(o) => return Ok(Err(foreign("Secret", &secret_name, &|| apply::foreign_owner(o.as_ref())))),
        };
        let desired = children::deployment::build(policy, &ctx.settings, &secret.extra);
        let mut cached = Caches::get(&ctx.caches.deployments, ns, &gateway_name);
        if let Some(old) = cached.as_ref().filter(|old| children::deployment::selector_changed(old, &desired)) {
            // Written with other selector labels, which cannot be patched.
            tracing::info!(name = %gateway_name, namespace = %ns, "replacing the gateway Deployment: its selector changed");
            apply::remove_owned(&deployments, Some(old.clone()), &uid).await?;
            cached = None;
        }
        match apply::ensure_owned(&deployments, &gateway_name, cached, &uid, |_| Ok((desired.clone(), ()))).await? {
            Owned::Ensured(deployment) => Ok::<_, Error>(Ok((secret.applied, deployment))),
            Owned::Foreign(o) => Ok(Err(foreign("Deployment", &gateway_name, &|| apply::foreign_owner(o.as_ref())))),
        }
    };
    let service = async {
        let cached = Caches::get(&ctx.caches.services, ns, &gateway_name);
        match apply::ensure_owned(&services, &gateway_name, cached, &uid, |_| {
            Ok((children::service::build(policy), ()))
        })
        .await?
        {
            Owned::Ensured(service) => Ok::<_, Error>(Ok(service)),
            Owned::Foreign(o) => Ok(Err(foreign("Service", &gateway_name, &|| apply::foreign_owner(o.as_ref())))),
        }
    };
    let route = expose::write_route(policy, ns, ctx);
    let budget = disruption::write(policy, ns, ctx, &uid);
    let (secret_then_deployment, service, route, budget) =
        tokio::try_join!(secret_then_deployment, service, route, budget)?;
    let ((secret, deployment), service) = match (secret_then_deployment, service, budget) {
        (Ok(sd), Ok(service), Ok(())) => (sd, service),
        (Err(blocked), _, _) | (_, Err(blocked), _) | (_, _, Err(blocked)) => return Ok(Err(blocked)),
    };
    if secret == apply::Applied::Changed
        && let Some(message) = collected.capped_message()
    {
        status::warn(ctx, policy, revocations::CAPPED, &message).await;
    }

    if secret == apply::Applied::Changed {
        let note = format!(
            "wrote {secret_name}; running gateways reload it without a restart once the kubelet refreshes the mounted Secret (about a minute) and their next {}s poll",
            crate::contract::config::RELOAD_POLL_SECONDS
        );
        status::note(ctx, policy, "ConfigUpdated", &note).await;
    }
    let wrote = route.wrote
        + [secret, deployment.applied, service.applied].into_iter().filter(|a| *a == apply::Applied::Changed).count();
    for _ in 0..wrote {
        ctx.metrics.wrote("AuthPolicy");
    }
    if wrote > 0 {
        tracing::info!(name = %name, namespace = %ns, children = wrote, "applied gateway children");
    }
    Ok(Ok((deployment.current, route.problem)))
}

/// What the policy deliberately leaves open, loudest first, as (Accepted
/// reason, message). Each is accepted, and said in status.
fn warnings(spec: &crate::api::AuthPolicySpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let insecure = upstreams::insecure_fields(spec);
    if !insecure.is_empty() {
        out.push((
            INSECURE_SKIP_VERIFY,
            format!(
                "WARNING: tls.insecureSkipVerify is set on {}: the gateway accepts any certificate there, so anyone on the network path can read and change that traffic, injected credentials included",
                insecure.join(", ")
            ),
        ));
    }
    if spec.authentication == Authentication::Disabled {
        out.push((
            "AuthenticationDisabled",
            "WARNING: authentication is Disabled; every request reaches the upstream without sign-in".into(),
        ));
    } else if spec.access.allow_all_users {
        out.push((
            "AllowAllUsers",
            "WARNING: access.allowAllUsers lets anyone who can sign in with these providers enter".into(),
        ));
    }
    out
}

/// `Accepted=True`, with the policy's warnings if it has any.
fn accepted(spec: &crate::api::AuthPolicySpec) -> Desired {
    match warnings(spec).as_slice() {
        [] => Desired::truthy(ACCEPTED, "Valid", ""),
        all @ [(reason, _), ..] => {
            let message = all.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
            Desired::truthy(ACCEPTED, reason, message)
        }
    }
}

fn status_for(policy: &AuthPolicy, ns: &str, outcome: Result<(), Blocked>, rollout: &Rollout) -> AuthPolicyStatus {
    let previous = policy.status.clone().unwrap_or_default();
    let spec = &policy.spec;
    let desired = match outcome {
        Err(b) => {
            let keep = if b.gateway_written {
                "; the gateway itself is up to date"
            } else {
                "; the last good gateway configuration keeps serving"
            };
            let msg = format!("{}{keep}", b.message);
            let mut d = Vec::new();
            if b.condition == ACCEPTED {
                d.push(Desired::falsy(ACCEPTED, b.reason, b.message.clone()));
            } else {
                d.push(accepted(spec));
                d.push(Desired::falsy(b.condition, b.reason, b.message.clone()));
            }
            d.push(Desired::falsy(READY, b.reason, msg));
            // kstatus: a terminal error is Stalled; anything else is still in progress.
            d.push(if b.terminal {
                Desired::truthy(STALLED, b.reason, b.message)
            } else {
                Desired::truthy(RECONCILING, b.reason, b.message)
            });
            d
        }
        Ok(()) => {
            let mut d = vec![accepted(spec), Desired::truthy(RESOLVED_REFS, "Resolved", "")];
            match rollout {
                Rollout::Available => d.push(Desired::truthy(READY, "Available", "gateway is available")),
                Rollout::Progressing(m) => {
                    d.push(Desired::falsy(READY, "GatewayProgressing", m.clone()));
                    d.push(Desired::truthy(RECONCILING, "GatewayProgressing", m.clone()));
                }
                Rollout::Unavailable(m) => {
                    d.push(Desired::falsy(READY, "GatewayUnavailable", m.clone()));
                    d.push(Desired::truthy(RECONCILING, "GatewayUnavailable", m.clone()));
                }
                Rollout::Failed(m) => {
                    d.push(Desired::falsy(READY, "GatewayFailed", m.clone()));
                    d.push(Desired::truthy(STALLED, "GatewayFailed", m.clone()));
                }
            }
            d
        }
    };
    let generation = policy.metadata.generation;
    AuthPolicyStatus {
        observed_generation: generation,
        conditions: status::merged(&previous.conditions, &desired, generation),
        upstream: spec.upstream_url(ns),
    }
}
