//! `<policy>-gateway` PodDisruptionBudget, while the gateway runs more than
//! one replica: a node drain or a cluster upgrade then takes at most one
//! gateway pod at a time, so sign-in and proxying never stop. With one
//! replica there is nothing to keep (a budget would only block drains), and
//! the controller removes the one it wrote.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{gateway_name, labels};
use crate::api::AuthPolicy;

/// The budget for `replicas` gateway pods, or `None` when there should be none.
pub fn build(policy: &AuthPolicy, replicas: i32) -> Option<PodDisruptionBudget> {
    if replicas <= 1 {
        return None;
    }
    let name = policy.name_any();
    Some(PodDisruptionBudget {
        metadata: labels::child_meta(policy, gateway_name(&name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(labels::selector(&name)), ..LabelSelector::default() }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::objects;

    #[test]
    fn a_budget_only_with_several_replicas_and_it_lets_one_pod_go_at_a_time() {
        let policy = objects::policy();
        assert!(build(&policy, 1).is_none());
        assert!(build(&policy, 0).is_none());
        let pdb = build(&policy, 3).unwrap();
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.selector.unwrap().match_labels.unwrap(), labels::selector(&policy.name_any()));
        assert_eq!(pdb.metadata.name.as_deref(), Some(gateway_name(&policy.name_any()).as_str()));
    }
}
