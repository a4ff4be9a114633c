//! The gateway's PodDisruptionBudget ([`children::pdb`]): written while the
//! gateway has several replicas, removed (if it is ours) once it has one.
//! A budget of the same name that this policy does not own is left alone
//! and named in status, like every other child.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;

use super::Blocked;
use crate::api::AuthPolicy;
use crate::api::conditions::ACCEPTED;
use crate::controller::cache::Caches;
use crate::controller::children::{self, apply, apply::Owned};
use crate::controller::context::Context;
use crate::controller::error::Result;

/// Ensures (or removes) the budget of `policy`, owned by `uid`.
pub(super) async fn write(policy: &AuthPolicy, ns: &str, ctx: &Context, uid: &str) -> Result<Result<(), Blocked>> {
    let name = children::gateway_name(&kube::ResourceExt::name_any(policy));
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
    let cached = Caches::get(&ctx.caches.budgets, ns, &name);
    let replicas = policy.spec.gateway.as_ref().and_then(|g| g.replicas).unwrap_or(ctx.settings.gateway_replicas);
    let Some(desired) = children::pdb::build(policy, replicas) else {
        apply::remove_owned(&api, cached, uid).await?;
        return Ok(Ok(()));
    };
    match apply::ensure_owned(&api, &name, cached, uid, |_| Ok((desired.clone(), ()))).await? {
        Owned::Ensured(_) => Ok(Ok(())),
        Owned::Foreign(other) => Ok(Err(Blocked::new(
            ACCEPTED,
            "NameInUse",
            format!(
                "PodDisruptionBudget {ns}/{name} already exists and is {}; authgate leaves it untouched. Delete or rename it, or rename this AuthPolicy",
                apply::foreign_owner(other.as_ref())
            ),
            true,
        ))),
    }
}
