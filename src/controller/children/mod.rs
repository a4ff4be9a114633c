//! The objects each AuthPolicy owns, and how they are written.

pub mod apply;
pub mod deployment;
pub mod httproute;
pub mod ingress;
pub mod labels;
pub mod pdb;
pub mod pod_defaults;
pub mod route;
pub mod secret;
pub mod service;

/// Name of a policy's credentials Secret.
pub fn secret_name(policy: &str) -> String {
    format!("{policy}-auth-credentials")
}

/// Name of a policy's gateway Deployment and Service.
pub fn gateway_name(policy: &str) -> String {
    format!("{policy}-gateway")
}

/// Where the Secret is mounted in gateway pods.
pub const CONFIG_DIR: &str = "/etc/authgate";
/// File name of the gateway config inside the Secret.
pub const CONFIG_FILE: &str = "gateway.yaml";
