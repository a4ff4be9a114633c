//! `<policy>-gateway` Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{gateway_name, labels};
use crate::api::AuthPolicy;

/// The desired Service: port 80 to the gateway's `http` port.
pub fn build(policy: &AuthPolicy) -> Service {
    let name = policy.name_any();
    Service {
        metadata: labels::child_meta(policy, gateway_name(&name)),
        spec: Some(ServiceSpec {
            selector: Some(labels::selector(&name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
