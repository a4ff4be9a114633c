//! `<policy>-gateway` Deployment: hardened pods running `authgate gateway`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{CONFIG_DIR, CONFIG_FILE, gateway_name, labels, secret_name};
use crate::api::AuthPolicy;
use crate::contract::config::{DEFAULT_OPS_PORT, DEFAULT_PORT};
use crate::controller::context::Settings;

/// Pod-template annotation with the hash of the part of the gateway config
/// that a running gateway cannot reload (its listen addresses and listener
/// timeouts). A change rolls the pods; any other config change does not.
pub const CONFIG_HASH: &str = "authgate.dev/config-hash";

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("ops".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// The desired Deployment.
pub fn build(policy: &AuthPolicy, settings: &Settings, config_hash: &str) -> Deployment {
    let name = policy.name_any();
    let gw = policy.spec.gateway.clone().unwrap_or_default();
    let container = Container {
        name: "gateway".into(),
        image: Some(gw.image.unwrap_or_else(|| settings.gateway_image.clone())),
        image_pull_policy: settings.gateway_image_pull_policy.clone(),
        args: Some(vec!["gateway".into(), "--config".into(), format!("{CONFIG_DIR}/{CONFIG_FILE}")]),
        // `http` serves users; `ops` serves probes and metrics, and is not
        // behind the Service.
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(DEFAULT_PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("ops".into()),
                container_port: i32::from(DEFAULT_OPS_PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz", 5)),
        liveness_probe: Some(probe("/healthz", 10)),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let defaults = &settings.gateway_pod;
    let pod_labels = defaults.labels(labels::labels(&name));
    let replicas = gw.replicas.unwrap_or(settings.gateway_replicas);
    let mut pod = PodSpec {
        containers: vec![container],
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        node_selector: gw.node_selector,
        tolerations: gw.tolerations,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![Volume {
            name: "config".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name(&name)),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    defaults.apply(&mut pod, &labels::selector(&name), replicas, gw.resources);
    let annotations = defaults.annotations(BTreeMap::from([(CONFIG_HASH.to_owned(), config_hash.to_owned())]));
    Deployment {
        metadata: labels::child_meta(policy, gateway_name(&name)),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels::selector(&name)), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// Whether `live`'s pod selector differs from `desired`'s. A Deployment's
/// selector cannot be changed, so one written by a controller version with
/// other selector labels is replaced (once, at upgrade) rather than patched.
pub fn selector_changed(live: &Deployment, desired: &Deployment) -> bool {
    let selector = |d: &Deployment| d.spec.as_ref().map(|s| s.selector.clone());
    selector(live) != selector(desired)
}

/// Why `policy` may not run the gateway image it asks for, if it may not:
/// only the controller's default image or one of `settings`'
/// `gateway_allowed_images` runs next to the policy's credentials.
pub fn image_refusal(policy: &AuthPolicy, settings: &Settings) -> Option<String> {
    let image = policy.spec.gateway.as_ref()?.image.as_deref()?;
    if image == settings.gateway_image || settings.gateway_allowed_images.iter().any(|a| a == image) {
        return None;
    }
    let allowed = if settings.gateway_allowed_images.is_empty() {
        "the platform allows no other image".to_owned()
    } else {
        format!("the platform allows only {}", settings.gateway_allowed_images.join(", "))
    };
    Some(format!(
        "spec.gateway.image {image:?} is not the default gateway image, and {allowed} (the controller's --gateway-allowed-images); remove the field to run the default one"
    ))
}
