//! Resolving where a provider's endpoints are: type defaults, overrides and
//! OpenID Connect discovery.

use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::api::{IdentityProviderSpec, ProviderType, ResolvedEndpoints};

/// Why endpoints could not be resolved. Shown in status.
#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// The discovery document could not be fetched or parsed.
    #[error("OpenID discovery at {url} failed: {reason}")]
    Failed {
        /// Discovery URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The document's issuer is not the configured one.
    #[error("OpenID discovery returned issuer {found:?}, but issuerUrl is {expected:?}; they must match exactly")]
    IssuerMismatch {
        /// Configured issuer.
        expected: String,
        /// Issuer in the document.
        found: String,
    },
    /// An endpoint would downgrade to plain http on a non-loopback host.
    #[error("endpoint {0} is not https:// (http:// is accepted only for loopback hosts)")]
    Insecure(String),
}

impl DiscoveryError {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "DiscoveryFailed",
            Self::IssuerMismatch { .. } => "IssuerMismatch",
            Self::Insecure(_) => "InsecureEndpoint",
        }
    }
    /// Whether only a change by a person can fix it.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
}

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// github.com's REST API.
pub const GITHUB_API: &str = "https://api.github.com";
const GITLAB_ISSUER: &str = "https://gitlab.com";

/// The issuer a provider of this spec uses, if it is OIDC-based.
pub fn issuer_of(spec: &IdentityProviderSpec) -> Option<String> {
    match spec.provider_type {
        ProviderType::Oidc => spec.issuer_url.clone(),
        ProviderType::Gitlab => Some(spec.issuer_url.clone().unwrap_or_else(|| GITLAB_ISSUER.to_owned())),
        ProviderType::Google => Some(GOOGLE_ISSUER.to_owned()),
        ProviderType::Github => None,
    }
}

/// The endpoints of github.com (an Enterprise server overrides them, and
/// `api` is its REST base when given).
pub fn github_endpoints(api: Option<String>) -> ResolvedEndpoints {
    ResolvedEndpoints {
        issuer: None,
        authorize_url: "https://github.com/login/oauth/authorize".into(),
        token_url: "https://github.com/login/oauth/access_token".into(),
        userinfo_url: None,
        jwks_url: None,
        api_url: Some(api.unwrap_or_else(|| GITHUB_API.into())),
        // GitHub's grant deletion API is not RFC 7009; it has no
        // end-session endpoint either.
        revocation_url: None,
        end_session_url: None,
    }
}

/// Resolves endpoints. Only `oidc` performs network discovery; the other
/// types use their documented fixed endpoints, so a cluster without egress
/// to github.com or google.com still reconciles.
pub async fn resolve(http: &reqwest::Client, spec: &IdentityProviderSpec) -> Result<ResolvedEndpoints, DiscoveryError> {
    let mut resolved = match spec.provider_type {
        ProviderType::Oidc => discover(http, spec.issuer_url.as_deref().unwrap_or_default()).await?,
        ProviderType::Github => github_endpoints(spec.endpoints.as_ref().and_then(|e| e.api_url.clone())),
        ProviderType::Gitlab => {
            let issuer = issuer_of(spec).unwrap_or_default();
            let base = issuer.trim_end_matches('/');
            ResolvedEndpoints {
                issuer: Some(issuer.clone()),
                authorize_url: format!("{base}/oauth/authorize"),
                token_url: format!("{base}/oauth/token"),
                userinfo_url: Some(format!("{base}/oauth/userinfo")),
                jwks_url: Some(format!("{base}/oauth/discovery/keys")),
                api_url: Some(format!("{base}/api/v4")),
                // Documented in GitLab's OAuth 2.0 identity provider
                // docs; GitLab offers no RP-initiated logout.
                revocation_url: Some(format!("{base}/oauth/revoke")),
                end_session_url: None,
            }
        }
        ProviderType::Google => ResolvedEndpoints {
            issuer: Some(GOOGLE_ISSUER.into()),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: Some("https://openidconnect.googleapis.com/v1/userinfo".into()),
            jwks_url: Some("https://www.googleapis.com/oauth2/v3/certs".into()),
            api_url: None,
            // Google's documented revocation endpoint; Google has no
            // end-session endpoint.
            revocation_url: Some("https://oauth2.googleapis.com/revoke".into()),
            end_session_url: None,
        },
    };
    if let Some(o) = &spec.endpoints {
        if let Some(u) = &o.authorize_url {
            resolved.authorize_url = u.clone();
        }
        if let Some(u) = &o.token_url {
            resolved.token_url = u.clone();
        }
        if let Some(u) = &o.userinfo_url {
            resolved.userinfo_url = Some(u.clone());
        }
        if let Some(u) = &o.api_url {
            resolved.api_url = Some(u.clone());
        }
    }
    for url in [
        Some(&resolved.authorize_url),
        Some(&resolved.token_url),
        resolved.userinfo_url.as_ref(),
        resolved.jwks_url.as_ref(),
        resolved.api_url.as_ref(),
        resolved.revocation_url.as_ref(),
        resolved.end_session_url.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !is_secure_url(url) {
            return Err(DiscoveryError::Insecure(url.clone()));
        }
    }
    Ok(resolved)
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<ResolvedEndpoints, DiscoveryError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let failed = |reason: String| DiscoveryError::Failed { url: url.clone(), reason };
    let response = http.get(&url).send().await.map_err(|e| failed(chain(e)))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let doc: Document = response.json().await.map_err(|e| failed(e.without_url().to_string()))?;
    if doc.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_owned(), found: doc.issuer });
    }
    Ok(ResolvedEndpoints {
        issuer: Some(doc.issuer),
        authorize_url: doc.authorization_endpoint,
        token_url: doc.token_endpoint,
        userinfo_url: doc.userinfo_endpoint,
        jwks_url: Some(doc.jwks_uri),
        api_url: None,
        revocation_url: doc.revocation_endpoint,
        end_session_url: doc.end_session_endpoint,
    })
}

/// A request error with its causes, e.g. `error sending request: client
/// error (Connect): invalid peer certificate: UnknownIssuer`, so a TLS
/// failure (a private CA without its `caBundle`) says so. URLs are left
/// out; the caller names the one it fetched.
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// https://, or http:// to a loopback host. Same rule as the CRD's CEL.
pub fn is_secure_url(raw: &str) -> bool {
    let Ok(url) = Url::parse(raw) else { return false };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(&url),
        _ => false,
    }
}

/// Whether the URL's host is `localhost` or a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_urls() {
        assert!(is_secure_url("https://id.example.com"));
        assert!(is_secure_url("http://127.0.0.1:9000/x"));
        assert!(is_secure_url("http://localhost"));
        assert!(is_secure_url("http://[::1]:80"));
        assert!(!is_secure_url("http://id.example.com"));
        assert!(!is_secure_url("http://localhost.evil.com"));
        assert!(!is_secure_url("ftp://x"));
        assert!(!is_secure_url("not a url"));
    }
}
