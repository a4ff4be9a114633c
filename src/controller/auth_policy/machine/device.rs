//! `spec.deviceFlow` as the gateway serves it.
//!
//! Not yet implemented: the device flow is never rendered.

use crate::api::AuthPolicy;
use crate::contract::machine::DeviceFlowConfig;
use crate::controller::auth_policy::Blocked;

/// The device flow of `policy`, or why it cannot be served.
pub(in crate::controller::auth_policy) fn config(_policy: &AuthPolicy) -> Result<Option<DeviceFlowConfig>, Blocked> {
    Ok(None)
}
