//! authgate: a Kubernetes operator and authenticating reverse proxy that puts
//! single sign-on in front of internal services.
//!
//! - [`api`]: the `IdentityProvider` and `AuthPolicy` resources.
//! - [`access`]: filters and redirect validation, shared by both halves.
//! - [`controller`]: reconcilers that turn resources into gateways.
//! - [`gateway`]: the proxy itself.
//! - [`check`]: offline validation of manifests.
//! - [`revoke`]: `authgate revoke`, ending sessions from the command line.
//! - [`yaml_error`]: config and manifest errors that never print values.

pub mod access;
pub mod api;
pub mod check;
pub mod cli;
pub mod contract;
pub mod controller;
pub mod crd;
pub mod gateway;
pub mod idp;
pub mod revoke;
pub mod telemetry;
pub mod yaml_error;
