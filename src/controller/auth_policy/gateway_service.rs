//! The second AuthPolicy reconciler: it applies only the gateway Service.
//!
//! Creating a Service allocates a ClusterIP, the slowest write the
//! apiserver does: in the scale benchmark it drained at about 40 Services a
//! second, at 0.8–1.9 s of server time each, against 20–60 ms for a Secret or
//! a Deployment. In the main reconcile it held a concurrency slot for that
//! long, so the Secrets, Deployments and first status of other policies
//! queued behind ClusterIP allocation. Here it has slots of its own.
//!
//! The Service depends only on the policy's name. It is created once the
//! main reconcile has accepted the policy and written its other children
//! (`ResolvedRefs=True`); after that it is kept as long as the policy
//! exists, like the rest of the last good gateway. The main reconcile
//! reports `Ready` only once the Service exists.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use crate::api::AuthPolicy;
use crate::api::conditions::{self, RESOLVED_REFS};
use crate::controller::cache::Caches;
use crate::controller::children::{self, apply};
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};

/// Reconciles the gateway Service of one AuthPolicy.
pub async fn reconcile(policy: Arc<AuthPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if policy.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = children::gateway_name(&policy.name_any());
    let cached = Caches::get(&ctx.caches.services, &ns, &name);
    let accepted = policy.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, RESOLVED_REFS));
    if cached.is_none() && !accepted {
        // Not written yet: the main reconcile's status change wakes this one.
        return Ok(Action::await_change());
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let service = apply::ensure(&services, &name, cached, |_| Ok((children::service::build(&policy), ()))).await?;
    if service.applied == apply::Applied::Changed {
        ctx.metrics.wrote("AuthPolicy");
        tracing::info!(name = %policy.name_any(), namespace = %ns, "applied gateway Service");
    }
    Ok(Action::requeue(super::super::jittered(ctx.settings.resync)))
}
