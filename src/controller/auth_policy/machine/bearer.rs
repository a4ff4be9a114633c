//! `spec.bearer.issuers` resolved into the gateway's issuers: an
//! IdentityProvider's issuer and keys URL, an issuer URL's discovery, or
//! the cluster's ServiceAccount issuer with its keys fetched here.
//!
//! Not yet implemented: no issuer is rendered.

use crate::api::AuthPolicy;
use crate::contract::machine::BearerIssuerConfig;
use crate::controller::auth_policy::Blocked;
use crate::controller::context::Context;
use crate::controller::error::Result;

/// The gateway's bearer issuers for `policy`, or why they cannot be had.
pub(in crate::controller::auth_policy) async fn issuers(
    _ctx: &Context,
    _policy: &AuthPolicy,
    _ns: &str,
) -> Result<Result<Vec<BearerIssuerConfig>, Blocked>> {
    Ok(Ok(Vec::new()))
}
