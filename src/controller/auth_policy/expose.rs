//! `spec.expose`: writes the Ingress or HTTPRoute that puts the external
//! URL in front of the gateway Service, and deletes the one no longer
//! wanted.
//!
//! A route is the one child whose name someone else may already use. One
//! that this policy does not control is never changed or deleted; the
//! conflict is reported (`RouteConflict`) while the Secret, Deployment and
//! Service keep being reconciled. A cluster without the Gateway API gets
//! `GatewayAPIMissing` instead of an error loop: the apply is retried at
//! the normal resync, not with backoff.

use k8s_openapi::api::networking::v1::Ingress;
use kube::{Api, ResourceExt};

use super::Blocked;
use crate::api::AuthPolicy;
use crate::api::conditions::{ACCEPTED, RESOLVED_REFS};
use crate::controller::cache::Caches;
use crate::controller::children::apply::{self, Applied, Owned};
use crate::controller::children::httproute::{self, HttpRoute};
use crate::controller::children::{gateway_name, ingress, route};
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};

/// What [`write_route`] did: how many objects it wrote or deleted, and the
/// problem that kept the wanted route from being written, if any.
pub struct RouteOutcome {
    /// Objects applied or deleted.
    pub wrote: usize,
    /// Why the wanted route is not in place.
    pub problem: Option<Blocked>,
}

/// Makes the policy's routes match `spec.expose`: the wanted kind applied,
/// the other kind deleted if this policy controls it.
pub async fn write_route(policy: &AuthPolicy, ns: &str, ctx: &Context) -> Result<RouteOutcome> {
    let name = gateway_name(&policy.name_any());
    let uid = policy.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let expose = policy.spec.expose.as_ref();
    let (want_ingress, want_route) =
        (expose.and_then(|e| e.ingress.as_ref()), expose.and_then(|e| e.http_route.as_ref()));
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), ns);
    let routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), ns);
    let cached_ingress = Caches::get(&ctx.caches.ingresses, ns, &name);
    let cached_route = Caches::get(&ctx.caches.http_routes, ns, &name);

    let mut wrote = 0;
    if want_ingress.is_none() {
        wrote += usize::from(apply::remove_owned(&ingresses, cached_ingress.clone(), &uid).await?);
    }
    if want_route.is_none() {
        wrote += usize::from(apply::remove_owned(&routes, cached_route.clone(), &uid).await?);
    }
    if want_ingress.is_none() && want_route.is_none() {
        return Ok(RouteOutcome { wrote, problem: None });
    }
    let target = match route::target(&policy.spec.external_url) {
        Ok(t) => t,
        Err(message) => return Ok(RouteOutcome { wrote, problem: Some(Blocked::route(ACCEPTED, "Invalid", message)) }),
    };
    let outcome = if let Some(expose) = want_ingress {
        apply::ensure_owned(&ingresses, &name, cached_ingress, &uid, |_| {
            Ok((ingress::build(policy, expose, &target), ()))
        })
        .await
        .map(|o| owned("Ingress", ns, &name, o))?
    } else if let Some(expose) = want_route {
        let applied = apply::ensure_owned(&routes, &name, cached_route, &uid, |_| {
            Ok((httproute::build(policy, expose, &target), ()))
        })
        .await;
        match applied {
            // Not `is_not_found`: an unserved API answers `404 page not
            // found`, not a Status with reason NotFound.
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 404 => Err(gateway_api_missing()),
            other => other.map(|o| owned("HTTPRoute", ns, &name, o))?,
        }
    } else {
        Ok(Applied::Unchanged)
    };
    match outcome {
        Ok(applied) => Ok(RouteOutcome { wrote: wrote + usize::from(applied == Applied::Changed), problem: None }),
        Err(problem) => Ok(RouteOutcome { wrote, problem: Some(problem) }),
    }
}

/// The applied outcome, or the conflict with a route of that name that
/// this policy does not control.
fn owned<K: ResourceExt>(kind: &str, ns: &str, name: &str, outcome: Owned<K>) -> Result<Applied, Blocked> {
    match outcome {
        Owned::Ensured(e) => Ok(e.applied),
        Owned::Foreign(other) => {
            let owner = apply::foreign_owner(other.as_ref());
            Err(Blocked::route(
                ACCEPTED,
                "RouteConflict",
                format!(
                    "{kind} {ns}/{name} already exists and is {owner}; it is left untouched. \
                     Delete or rename it to let this policy write its route"
                ),
            ))
        }
    }
}

/// A 404 error while applying an HTTPRoute: the apiserver does not serve the
/// resource at all (reading a missing object is `None`, not an error, and an
/// apply creates a missing object).
fn gateway_api_missing() -> Blocked {
    Blocked::route(
        RESOLVED_REFS,
        "GatewayAPIMissing",
        "expose.httpRoute needs the Gateway API, but this cluster does not serve \
         httproutes.gateway.networking.k8s.io/v1: install the Gateway API CRDs (standard channel), \
         or use expose.ingress",
    )
}
