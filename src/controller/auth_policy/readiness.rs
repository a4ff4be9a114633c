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
    /// The rollout had completed, and pods that were available are not any more.
    Unavailable(String),
}

/// The Deployment `Progressing` reason once a rollout has completed.
const COMPLETE: &str = "NewReplicaSetAvailable";

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
    let conds = st.conditions.as_deref().unwrap_or_default();
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
        let message = format!("{available} of {desired} gateway pods available");
        // Until the first rollout completes, waiting for pods is progress,
        // as for `kubectl rollout status`; after that it is an outage.
        let completed = conds.iter().any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(COMPLETE));
        return if completed { Rollout::Unavailable(message) } else { Rollout::Progressing(message) };
    }
    Rollout::Available
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    use super::*;

    fn deployment(available: i32, progressing_reason: &str) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec { replicas: Some(1), ..DeploymentSpec::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(1),
                updated_replicas: Some(1),
                available_replicas: Some(available),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Progressing".into(),
                    status: "True".into(),
                    reason: Some(progressing_reason.into()),
                    ..DeploymentCondition::default()
                }]),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        d.metadata.generation = Some(1);
        d
    }

    #[test]
    fn first_rollout_waiting_for_pods_is_progress() {
        let r = rollout(Some(&deployment(0, "ReplicaSetUpdated")));
        assert_eq!(r, Rollout::Progressing("0 of 1 gateway pods available".into()));
    }

    #[test]
    fn losing_pods_after_a_completed_rollout_is_unavailable() {
        let r = rollout(Some(&deployment(0, COMPLETE)));
        assert_eq!(r, Rollout::Unavailable("0 of 1 gateway pods available".into()));
        assert_eq!(rollout(Some(&deployment(1, COMPLETE))), Rollout::Available);
    }

    #[test]
    fn unobserved_spec_change_is_progress() {
        let mut d = deployment(1, COMPLETE);
        d.metadata.generation = Some(2);
        assert!(matches!(rollout(Some(&d)), Rollout::Progressing(_)));
        assert!(matches!(rollout(None), Rollout::Progressing(_)));
    }
}
