//! The ApiTokens of a policy in force, hashes only.
//!
//! Not yet implemented: no token is rendered.

use crate::api::AuthPolicy;
use crate::contract::machine::ApiTokenEntry;
use crate::controller::context::Context;
use crate::controller::error::Result;

/// The ApiTokens `policy`'s gateway accepts.
pub async fn in_force(_ctx: &Context, _policy: &AuthPolicy, _ns: &str) -> Result<Vec<ApiTokenEntry>> {
    Ok(Vec::new())
}
