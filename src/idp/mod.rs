//! Talking to identity providers over HTTP, shared by the controller (which
//! resolves an IdentityProvider's endpoints) and the gateway (which signs
//! users in): discovery, URL rules, and one way to build an HTTP client.

pub mod discovery;
pub mod jws;

use std::time::Duration;

pub use discovery::{is_loopback, is_secure_url};

/// `User-Agent` of every request authgate makes to a provider.
pub const USER_AGENT: &str = concat!("authgate/", env!("CARGO_PKG_VERSION"));

/// Connect timeout of every provider request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client for provider requests: a user agent, a connect timeout
/// and an overall `timeout`, and no redirects (a provider endpoint that
/// redirects is refused rather than followed with credentials).
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    client_with_ca(timeout, None)
}

/// [`client`], trusting only the PEM certificates of `ca_pem` when given
/// (a provider behind a private CA) instead of the system's roots.
pub fn client_with_ca(timeout: Duration, ca_pem: Option<&str>) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .user_agent(USER_AGENT);
    if let Some(pem) = ca_pem {
        builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem.as_bytes())?);
    }
    builder.build()
}
