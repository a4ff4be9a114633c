//! What the platform decides about every gateway pod, whatever a policy
//! says: pull secrets, default resources, priority, spreading, extra labels
//! and annotations, and a drain before shutdown. Set once for the
//! controller (`--gateway-pod-defaults`, the chart's `gateway.podDefaults`)
//! as a JSON document; a policy overrides only what is safe
//! (`spec.gateway.resources`, `nodeSelector`, `tolerations`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Lifecycle, LifecycleHandler, LocalObjectReference, PodSpec, ResourceRequirements, SleepAction,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;

/// Seconds a terminating gateway pod keeps serving before the process is
/// told to stop, so endpoints and ingresses stop sending it new requests
/// first (kube-proxy and ingress controllers notice a removed endpoint
/// only after a moment). The gateway then finishes in-flight requests
/// within the grace period.
pub const PRE_STOP_SECONDS: i64 = 5;

/// The pod's termination grace period: the drain plus in-flight requests.
pub const TERMINATION_GRACE_SECONDS: i64 = 30;

/// The platform's gateway pod defaults.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDefaults {
    /// Secrets (in each policy's namespace) to pull the gateway image with.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Requests and limits of a gateway container whose policy sets none,
    /// so namespaces with a ResourceQuota admit it.
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// PriorityClass of gateway pods (empty: none).
    #[serde(default)]
    pub priority_class_name: Option<String>,
    /// Extra pod labels. The controller's own (`app.kubernetes.io/*`,
    /// `authgate.dev/*`) cannot be replaced.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Extra pod annotations (the config-hash annotation cannot be
    /// replaced).
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Spread replicas across nodes (`kubernetes.io/hostname`, skew 1,
    /// best effort) when there is more than one. Default true.
    #[serde(default = "yes")]
    pub spread_across_nodes: bool,
}

fn yes() -> bool {
    true
}

impl Default for PodDefaults {
    fn default() -> Self {
        Self {
            image_pull_secrets: Vec::new(),
            resources: None,
            priority_class_name: None,
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            spread_across_nodes: true,
        }
    }
}

impl PodDefaults {
    /// Parses the controller's `--gateway-pod-defaults` (JSON; empty means
    /// none). Errors name the field, never a value.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| format!("--gateway-pod-defaults: at {}: {}", e.path(), e.inner()))
    }

    /// Applies the defaults to a gateway pod of `replicas` replicas whose
    /// pods carry `selector`; `policy_resources` wins over the default.
    pub fn apply(
        &self,
        pod: &mut PodSpec,
        selector: &BTreeMap<String, String>,
        replicas: i32,
        policy_resources: Option<ResourceRequirements>,
    ) {
        if !self.image_pull_secrets.is_empty() {
            pod.image_pull_secrets =
                Some(self.image_pull_secrets.iter().map(|name| LocalObjectReference { name: name.clone() }).collect());
        }
        pod.priority_class_name = self.priority_class_name.clone().filter(|p| !p.is_empty());
        pod.termination_grace_period_seconds = Some(TERMINATION_GRACE_SECONDS);
        if self.spread_across_nodes && replicas > 1 {
            pod.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]);
        }
        for container in &mut pod.containers {
            container.resources = policy_resources.clone().or_else(|| self.resources.clone());
            drain_before_stop(container);
        }
    }

    /// `labels` plus the platform's, never replacing one already set.
    pub fn labels(&self, mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.pod_labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        labels
    }

    /// `annotations` plus the platform's, never replacing one already set.
    pub fn annotations(&self, mut annotations: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.pod_annotations {
            annotations.entry(k.clone()).or_insert_with(|| v.clone());
        }
        annotations
    }
}

/// A preStop hook that waits (the kubelet's own sleep action: the image
/// has no shell) so the pod leaves the endpoints before it stops
/// accepting.
fn drain_before_stop(container: &mut Container) {
    container.lifecycle = Some(Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds: PRE_STOP_SECONDS }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_means_spreading_only_and_unknown_fields_are_refused() {
        let none = PodDefaults::parse("").unwrap();
        assert!(none.spread_across_nodes && none.image_pull_secrets.is_empty() && none.resources.is_none());
        let err = PodDefaults::parse(r#"{"imagePullSecret": ["x"]}"#).unwrap_err();
        assert!(err.contains("imagePullSecret"), "{err}");
    }

    #[test]
    fn platform_labels_never_replace_the_controllers_own() {
        let d = PodDefaults::parse(r#"{"podLabels": {"team": "sso", "authgate.dev/policy": "evil"}}"#).unwrap();
        let ours = BTreeMap::from([("authgate.dev/policy".to_owned(), "grafana".to_owned())]);
        let merged = d.labels(ours);
        assert_eq!(merged["authgate.dev/policy"], "grafana");
        assert_eq!(merged["team"], "sso");
    }
}

#[cfg(test)]
mod deployment_tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::controller::children::deployment;
    use crate::controller::fixtures::objects;

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn requests(cpu: &str) -> ResourceRequirements {
        ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu.into()))])),
            ..ResourceRequirements::default()
        }
    }

    #[test]
    fn every_gateway_pod_gets_the_platform_defaults_and_a_drain_before_stop() {
        let mut settings = objects::settings();
        settings.gateway_pod = PodDefaults::parse(
            r#"{"imagePullSecrets": ["registry"], "resources": {"requests": {"cpu": "50m"}},
                "priorityClassName": "platform", "podLabels": {"team": "sso"}, "podAnnotations": {"a": "b"}}"#,
        )
        .unwrap();
        let d = deployment::build(&objects::policy(), &settings, "hash");
        let spec = pod(&d);
        assert_eq!(spec.image_pull_secrets.as_ref().unwrap()[0].name, "registry");
        assert_eq!(spec.priority_class_name.as_deref(), Some("platform"));
        assert_eq!(spec.termination_grace_period_seconds, Some(TERMINATION_GRACE_SECONDS));
        let container = &spec.containers[0];
        assert_eq!(container.resources, Some(requests("50m")), "not BestEffort");
        let sleep = container.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap().sleep.as_ref().unwrap();
        assert_eq!(sleep.seconds, PRE_STOP_SECONDS);
        assert!(spec.topology_spread_constraints.is_none(), "one replica: nothing to spread");
        let meta = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
        assert_eq!(meta.labels.as_ref().unwrap()["team"], "sso");
        assert_eq!(meta.annotations.as_ref().unwrap()["a"], "b");
        assert!(meta.annotations.as_ref().unwrap().contains_key(deployment::CONFIG_HASH));
    }

    #[test]
    fn replicas_spread_over_nodes_and_a_policys_own_resources_win() {
        let mut settings = objects::settings();
        settings.gateway_pod.resources = Some(requests("50m"));
        let mut policy = objects::policy();
        let gw = policy.spec.gateway.get_or_insert_with(Default::default);
        gw.replicas = Some(3);
        gw.resources = Some(requests("200m"));
        let d = deployment::build(&policy, &settings, "hash");
        let spread = &pod(&d).topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!((spread.topology_key.as_str(), spread.max_skew), ("kubernetes.io/hostname", 1));
        assert_eq!(spread.when_unsatisfiable, "ScheduleAnyway", "best effort: never unschedulable");
        assert_eq!(pod(&d).containers[0].resources, Some(requests("200m")));
    }
}
