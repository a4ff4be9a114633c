//! `<policy>-gateway` Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{gateway_name, labels};
use crate::api::AuthPolicy;

/// Port of the Service, which routes and users reach.
pub const PORT: i32 = 80;
/// Name of that port, and of the gateway container's port behind it.
pub const PORT_NAME: &str = "http";

/// The desired Service: port [`PORT`] to the gateway's `http` port.
pub fn build(policy: &AuthPolicy) -> Service {
    let name = policy.name_any();
    Service {
        metadata: labels::child_meta(policy, gateway_name(&name)),
        spec: Some(ServiceSpec {
            selector: Some(labels::selector(&name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: PORT,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
