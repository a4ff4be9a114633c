//! Whether a gateway Deployment is serving, in kstatus terms.

use k8s_openapi::api::apps::v1::Deployment;

/// The gateway's rollout state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every desired pod is updated and available.
    Available,
    /// Still rolling out or scaling; the message says how far.
    Progressing(String),
    /// The rollout will not finish without a change (deadline exceeded).
    Failed(String),
    /// Pods that were ready are not any more.
    Unavailable(String),
}

/// Reads a Deployment's status the way `kubectl rollout status` does.
pub fn rollout(dep: Option<&Deployment>) -> Rollout {
    let Some(dep) = dep else { return Rollout::Progressing("gateway Deployment is being created".into()) };
    let desired = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = dep.status.as_ref() else {
        return Rollout::Progressing("gateway Deployment has no status yet".into());
    };
    if st.observed_generation.unwrap_or(0) < dep.metadata.generation.unwrap_or(0) {
        return Rollout::Progressing("gateway Deployment spec change not yet observed".into());
    }
    let conds = st.conditions.clone().unwrap_or_default();
    if let Some(p) = conds.iter().find(|c| c.type_ == "Progressing")
        && p.status == "False"
        && p.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Rollout::Failed(format!(
            "gateway rollout exceeded its progress deadline: {}",
            p.message.clone().unwrap_or_default()
        ));
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    if updated < desired {
        return Rollout::Progressing(format!("{updated} of {desired} gateway pods updated"));
    }
    if total > updated {
        return Rollout::Progressing(format!("{} old gateway pods pending termination", total - updated));
    }
    if available < desired {
        return Rollout::Unavailable(format!("{available} of {desired} gateway pods available"));
    }
    Rollout::Available
}
