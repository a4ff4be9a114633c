//! `spec.signOut` of an AuthPolicy: what signing out of the gateway does at
//! the identity provider.

use serde::{Deserialize, Serialize};

/// What `/oauth2/sign_out` does besides deleting the gateway's session.
/// The refresh token is always revoked where the provider has an RFC 7009
/// revocation endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignOutSettings {
    /// Whether signing out also ends the user's session at the identity
    /// provider, when it has an end-session endpoint (OpenID Connect
    /// RP-Initiated Logout): the browser goes there with `id_token_hint`
    /// and comes back to `<externalUrl>/oauth2/signed_out`, which must be
    /// registered at the provider as a post-logout redirect URI. Sessions
    /// then keep the ID token (larger cookies). With false, the provider's
    /// session stays open and the next sign-in may happen without a
    /// question. Default true.
    #[serde(default = "default_true")]
    pub end_provider_session: bool,
}

impl Default for SignOutSettings {
    fn default() -> Self {
        Self { end_provider_session: true }
    }
}

fn default_true() -> bool {
    true
}
