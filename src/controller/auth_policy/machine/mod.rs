//! `gateway.yaml`'s `machine`: what a policy's gateway needs to accept
//! callers without a browser. Each part from a file of its own:
//! the bearer issuers with their keys ([`bearer`]), the ApiTokens in force
//! ([`api_tokens`]) and the device flow ([`device`]); the scopes are the
//! policy's own.

pub mod api_tokens;
pub mod bearer;
pub mod device;

use crate::api::AuthPolicy;
use crate::contract::machine::MachineConfig;
use crate::controller::context::Context;
use crate::controller::error::Result;

use super::Blocked;

/// The policy's machine settings, or why they cannot be rendered.
pub(super) async fn config(ctx: &Context, policy: &AuthPolicy, ns: &str) -> Result<Result<MachineConfig, Blocked>> {
    let bearer = match bearer::issuers(ctx, policy, ns).await? {
        Ok(issuers) => issuers,
        Err(blocked) => return Ok(Err(blocked)),
    };
    let device_flow = match device::config(policy, ctx.settings.gateway_replicas) {
        Ok(device) => device,
        Err(blocked) => return Ok(Err(blocked)),
    };
    Ok(Ok(MachineConfig {
        bearer,
        scopes: policy.spec.scopes.clone(),
        api_tokens: api_tokens::in_force(ctx, policy, ns).await?,
        device_flow,
    }))
}
