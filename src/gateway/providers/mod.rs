//! Identity providers: how each kind turns an authorization code into a
//! verified [`Identity`] and tokens, and how tokens are refreshed.
//!
//! - [`oidc`]: any OpenID Connect issuer; the base of [`gitlab`] and
//!   [`google`], which add their own claims handling.
//! - [`github`]: OAuth2 plus the REST API for emails, orgs and teams.

pub mod claims;
pub mod github;
pub mod gitlab;
pub mod google;
pub mod http;
pub mod logout;
pub mod logout_token;
pub mod oidc;

use url::Url;

use crate::access::Identity;
use crate::gateway::config::{ProviderConfig, ProviderType};
use crate::gateway::session::flow::LoginFlow;

pub use http::HttpClient;

/// Tokens from a code exchange or a refresh.
#[derive(Clone)]
pub struct Tokens {
    /// Access token.
    pub access_token: String,
    /// Refresh token, if any.
    pub refresh_token: Option<String>,
    /// Lifetime of the access token in seconds, if the provider said.
    pub expires_in: Option<u64>,
    /// The verified OpenID Connect ID token (compact JWT), for policies
    /// that forward it (`forward.idToken`).
    pub id_token: Option<String>,
}

impl Tokens {
    /// The tokens of an OAuth2 token response.
    pub fn from_response(response: &impl oauth2::TokenResponse) -> Self {
        Self {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            expires_in: response.expires_in().map(|d| d.as_secs()),
            id_token: None,
        }
    }
}

/// Who signed in, as far as the filters and headers are concerned.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Identity the filters judge.
    pub identity: Identity,
    /// Values for `X-Auth-Request-Groups`.
    pub groups: Vec<String>,
}

/// A finished sign-in at the provider.
pub struct SignedIn {
    /// Who signed in, as the provider described them.
    pub profile: Profile,
    /// Their tokens.
    pub tokens: Tokens,
}

/// A finished refresh.
pub struct Refreshed {
    /// New tokens (a refresh token absent here means "keep the old one").
    pub tokens: Tokens,
    /// The user's current profile, when the provider sent a new ID token.
    pub profile: Option<Profile>,
}

/// Why a provider interaction failed. Display texts are safe to log: they
/// never contain tokens, codes, secrets or response bodies.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The token endpoint answered with an OAuth2 error (`invalid_grant`, …).
    #[error("the provider rejected the request: {code}")]
    Rejected {
        /// OAuth2 error code.
        code: String,
    },
    /// The provider could not be reached.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered something unusable.
    #[error("unexpected response from the provider: {0}")]
    BadResponse(String),
    /// The ID token failed verification.
    #[error("the ID token was rejected: {0}")]
    InvalidIdToken(String),
    /// The provider's CA bundle is unusable.
    #[error("the provider's TLS settings are unusable: {0}")]
    Tls(String),
}

impl ProviderError {
    /// Low-cardinality label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "token_rejected",
            Self::Unreachable(_) => "provider_unreachable",
            Self::BadResponse(_) => "provider_bad_response",
            Self::InvalidIdToken(_) => "id_token_invalid",
            Self::Tls(_) => "provider_tls_settings",
        }
    }
}

impl ProviderError {
    /// What a failed API or userinfo answer means for a re-validation: 401
    /// and 403 are the provider refusing the token; 408, 429 and 5xx are
    /// trouble reaching it; anything else is an unusable answer.
    pub fn from_status(status: ::http::StatusCode, what: &str) -> Self {
        match status.as_u16() {
            401 | 403 => Self::Rejected { code: format!("{what}: HTTP {}", status.as_u16()) },
            408 | 429 | 500..=599 => Self::Unreachable(format!("{what}: HTTP {}", status.as_u16())),
            _ => Self::BadResponse(format!("{what}: HTTP {}", status.as_u16())),
        }
    }
}

impl<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static> From<oauth2::RequestTokenError<RE, T>>
    for ProviderError
{
    fn from(e: oauth2::RequestTokenError<RE, T>) -> Self {
        match e {
            oauth2::RequestTokenError::ServerResponse(r) => {
                // The standard error code only; descriptions are free text.
                let code = serde_json::to_value(&r)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "unknown_error".into());
                Self::Rejected { code }
            }
            oauth2::RequestTokenError::Request(e) => Self::Unreachable(e.to_string()),
            // The body may hold tokens: report only where parsing failed.
            oauth2::RequestTokenError::Parse(e, _) => {
                Self::BadResponse(format!("token response did not parse at {}", e.path()))
            }
            oauth2::RequestTokenError::Other(s) => Self::BadResponse(s),
        }
    }
}

/// One configured provider, ready to use.
pub enum Provider {
    /// OIDC, GitLab or Google.
    Oidc(Box<oidc::OidcProvider>),
    /// GitHub or GitHub Enterprise.
    Github(Box<github::GithubProvider>),
}

impl Provider {
    /// Builds a provider from its resolved config. `http` is the shared
    /// client; a provider with a `caPem` gets its own, trusting only that
    /// bundle.
    pub fn new(config: ProviderConfig, redirect: &Url, http: &HttpClient) -> Result<Self, ProviderError> {
        let http = &http.trusting(config.ca_pem.as_deref()).map_err(ProviderError::Tls)?;
        Ok(match config.provider_type {
            ProviderType::Github => Self::Github(Box::new(github::GithubProvider::new(config, redirect, http)?)),
            ProviderType::Oidc | ProviderType::Gitlab | ProviderType::Google => {
                Self::Oidc(Box::new(oidc::OidcProvider::new(config, redirect, http)?))
            }
        })
    }

    /// The provider's settings from `gateway.yaml`: endpoints, client,
    /// scopes, claim mapping and allow-list.
    pub fn config(&self) -> &ProviderConfig {
        match self {
            Self::Oidc(p) => p.config(),
            Self::Github(p) => p.config(),
        }
    }

    /// Name users pick it by.
    pub fn name(&self) -> &str {
        &self.config().name
    }

    /// Whether logins carry an OpenID Connect nonce.
    pub fn uses_nonce(&self) -> bool {
        matches!(self, Self::Oidc(_))
    }

    /// Fetches what should be ready before the first login (OIDC keys).
    /// Failures are logged, not fatal: the keys are fetched again on demand.
    pub async fn warm_up(&self) {
        if let Self::Oidc(p) = self {
            p.warm_up().await;
        }
    }

    /// Where to send the browser to sign in.
    /// `domain_hint` is the one email domain the allow-lists leave, if
    /// there is exactly one (providers that support it preselect it).
    pub fn authorization_url(&self, flow: &LoginFlow, prompt: Option<&str>, domain_hint: Option<&str>) -> Url {
        match self {
            Self::Oidc(p) => p.authorization_url(flow, prompt, domain_hint),
            Self::Github(p) => p.authorization_url(flow, prompt),
        }
    }

    /// Checks the RFC 9207 `iss` parameter of the callback, when present.
    pub fn accepts_issuer_param(&self, iss: Option<&str>) -> bool {
        match (self, iss) {
            (_, None) | (Self::Github(_), _) => true,
            (Self::Oidc(p), Some(iss)) => p.is_issuer(iss),
        }
    }

    /// Exchanges the code and finds out who signed in. Whether they may
    /// enter is not decided here but by [`crate::access::authorize`].
    pub async fn sign_in(&self, code: &str, flow: &LoginFlow) -> Result<SignedIn, ProviderError> {
        match self {
            Self::Oidc(p) => p.sign_in(code, flow).await,
            Self::Github(p) => p.sign_in(code, flow).await,
        }
    }

    /// Uses a refresh token. `subject` is the session's subject; a new ID
    /// token for anyone else is refused.
    pub async fn refresh(&self, refresh_token: &str, subject: &str) -> Result<Refreshed, ProviderError> {
        match self {
            Self::Oidc(p) => p.refresh(refresh_token, subject).await,
            Self::Github(p) => p.refresh(refresh_token).await,
        }
    }

    /// Reads the user's current profile with `access_token`, for a
    /// re-validation: OIDC's userinfo (`None` when the provider has no
    /// userinfo endpoint), GitHub's user, emails, orgs and teams. The
    /// profile must name `subject`. Unreachable means the provider could
    /// not be asked (network, 5xx); `Rejected` that it refused the token.
    pub async fn current_profile(&self, access_token: &str, subject: &str) -> Result<Option<Profile>, ProviderError> {
        match self {
            Self::Oidc(p) => p.userinfo_profile(access_token, subject).await,
            Self::Github(p) => p.current_profile(access_token, subject).await.map(Some),
        }
    }
}

/// Compares an issuer as sent by a provider with the configured one. The
/// config stores a parsed URL, which cannot tell `https://host` from
/// `https://host/`; any other difference is a mismatch.
pub fn issuer_matches(found: &str, configured: &Url) -> bool {
    Url::parse(found).is_ok_and(|u| &u == configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_comparison_is_exact_up_to_the_root_slash() {
        let c = Url::parse("https://id.example.com").unwrap();
        assert!(issuer_matches("https://id.example.com", &c));
        assert!(issuer_matches("https://id.example.com/", &c));
        assert!(!issuer_matches("https://id.example.com/x", &c));
        assert!(!issuer_matches("https://evil.example.com", &c));
        assert!(!issuer_matches("http://id.example.com", &c));
        let realm = Url::parse("https://kc/realms/a").unwrap();
        assert!(!issuer_matches("https://kc/realms/a/", &realm));
        assert!(!issuer_matches("https://kc/realms/b", &realm));
    }
}
