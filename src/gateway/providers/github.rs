//! GitHub and GitHub Enterprise: OAuth2 authorization code with PKCE, then
//! the REST API for the user, their verified emails, orgs and teams.
//!
//! - The token endpoint reports failures such as `bad_verification_code`
//!   with HTTP 200; those are turned into errors before parsing.
//! - Lists are paginated with `per_page=100`, following the `Link: rel="next"`
//!   header, only ever to the configured API origin (the token must not
//!   leak elsewhere).
//! - Only verified addresses count: the primary one if verified, else any
//!   verified one, else none.
//! - Orgs and teams are fetched concurrently. A failed call leaves that
//!   membership [`Membership::Unavailable`], which denies whenever a filter
//!   needs it.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenUrl,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::http::read_limited;
use super::{HttpClient, Profile, ProviderError, Refreshed, SignedIn, Tokens};
use crate::access::{DomainProof, Identity, Membership};
use crate::gateway::config::ProviderConfig;
use crate::gateway::session::flow::LoginFlow;

/// github.com's API.
pub const DEFAULT_API: &str = crate::idp::discovery::GITHUB_API;
/// Safety bound on pagination (100 pages of 100 items).
const MAX_PAGES: usize = 100;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A GitHub OAuth app (or GitHub App user authorization).
pub struct GithubProvider {
    config: ProviderConfig,
    client: Client,
    token_http: HttpClient,
    api: reqwest::Client,
    api_base: Url,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

/// A failed API call; detail-free beyond status and path.
#[derive(Debug, thiserror::Error)]
#[error("GitHub API {path}: {problem}")]
struct ApiError {
    path: &'static str,
    problem: String,
    kind: ApiFailure,
}

/// What kind of failure an [`ApiError`] is, for a re-validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiFailure {
    /// GitHub could not be reached (connect, TLS, timeout, body).
    Unreachable,
    /// GitHub answered with this error status.
    Status(reqwest::StatusCode),
    /// The answer was unusable (JSON, pagination).
    Unusable,
}

impl ApiError {
    fn unusable(path: &'static str, problem: String) -> Self {
        Self { path, problem, kind: ApiFailure::Unusable }
    }

    /// The provider error a re-validation sees: 401 is GitHub refusing
    /// the token; a transport failure, 403 (rate limits), 5xx or 429 is
    /// transient.
    fn provider_error(&self) -> ProviderError {
        match self.kind {
            ApiFailure::Unreachable => ProviderError::Unreachable(self.to_string()),
            // GitHub answers rate limiting with 403 too: only 401 says the
            // token is no good.
            ApiFailure::Status(status) if status.as_u16() == 403 => ProviderError::Unreachable(self.to_string()),
            ApiFailure::Status(status) => ProviderError::from_status(status, self.path),
            ApiFailure::Unusable => ProviderError::BadResponse(self.to_string()),
        }
    }

    /// Whether a re-validation must not judge without this call's data:
    /// GitHub refused the token or could not answer. (403 and 404, which
    /// a missing scope causes, leave the membership unavailable, as at
    /// sign-in.)
    fn blocks_revalidation(&self) -> bool {
        match self.kind {
            ApiFailure::Unreachable => true,
            ApiFailure::Status(status) => matches!(status.as_u16(), 401 | 408 | 429) || status.is_server_error(),
            ApiFailure::Unusable => false,
        }
    }
}

impl GithubProvider {
    /// Builds the OAuth2 client and the API base.
    pub fn new(config: ProviderConfig, redirect: &Url, http: &HttpClient) -> Result<Self, ProviderError> {
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()))
            .set_auth_type(AuthType::RequestBody);
        let api_base = match &config.api_url {
            Some(u) => u.clone(),
            None => Url::parse(DEFAULT_API).expect("valid default"),
        };
        Ok(Self { config, client, token_http: http.promoting_error_bodies(), api: http.reqwest().clone(), api_base })
    }

    /// The provider's settings from `gateway.yaml`: endpoints, client,
    /// scopes, claim mapping and allow-list.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The authorization request: code flow, S256 PKCE and state.
    pub fn authorization_url(&self, flow: &LoginFlow, prompt: Option<&str>) -> Url {
        let state = flow.state.clone();
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(flow.pkce_verifier.clone()));
        let mut request = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.config.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge);
        if let Some(prompt) = prompt {
            request = request.add_extra_param("prompt", prompt.to_owned());
        }
        request.url().0
    }

    /// Exchanges the code and reads the user's profile from the API.
    pub async fn sign_in(&self, code: &str, flow: &LoginFlow) -> Result<SignedIn, ProviderError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.token_http)
            .await?;
        let tokens = Tokens::from_response(&response);
        let profile = self.profile(&tokens.access_token).await?;
        Ok(SignedIn { profile, tokens })
    }

    /// Refreshes an expiring user token (GitHub Apps). The identity stays
    /// as established at sign-in.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, ProviderError> {
        let response = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(&self.token_http)
            .await?;
        let tokens = Tokens::from_response(&response);
        Ok(Refreshed { tokens, profile: None })
    }

    /// Reads the profile again for a re-validation, with the session's
    /// access token. Unlike at sign-in, a call GitHub refused (401) or
    /// could not answer (network, 5xx) fails the whole read, so that an
    /// outage is not taken for lost memberships; the user must still be
    /// `subject`.
    pub async fn current_profile(&self, token: &str, subject: &str) -> Result<Profile, ProviderError> {
        let profile = self.read_profile(token, true).await?;
        if profile.identity.subject != subject {
            return Err(ProviderError::InvalidIdToken("the API names another user".into()));
        }
        Ok(profile)
    }

    async fn profile(&self, token: &str) -> Result<Profile, ProviderError> {
        self.read_profile(token, false).await
    }

    async fn read_profile(&self, token: &str, revalidating: bool) -> Result<Profile, ProviderError> {
        let (user, emails, orgs, teams) = tokio::join!(
            self.get_one::<User>("user", token),
            self.get_all::<Email>("user/emails", token),
            self.get_all::<Org>("user/orgs", token),
            self.get_all::<Team>("user/teams", token),
        );
        let user = user
            .map_err(|e| if revalidating { e.provider_error() } else { ProviderError::BadResponse(e.to_string()) })?;
        if revalidating {
            for e in [emails.as_ref().err(), orgs.as_ref().err(), teams.as_ref().err()].into_iter().flatten() {
                if e.blocks_revalidation() {
                    return Err(e.provider_error());
                }
            }
        }
        let email = match emails {
            Ok(emails) => choose_email(&emails),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the user's emails");
                None
            }
        };
        let orgs = membership(orgs.map(|o| o.into_iter().map(|o| o.login).collect()));
        let teams =
            membership(teams.map(|t| t.into_iter().map(|t| format!("{}/{}", t.organization.login, t.slug)).collect()));
        let groups = orgs.values().iter().chain(teams.values()).cloned().collect();
        let identity = Identity {
            subject: user.id.to_string(),
            user: user.login,
            email_verified: email.is_some(),
            email,
            domain_proof: DomainProof::Email,
            groups: Membership::Unavailable,
            orgs,
            teams,
        };
        Ok(Profile { identity, groups })
    }

    fn endpoint(&self, path: &str) -> Result<Url, ApiError> {
        let base = self.api_base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{path}")).map_err(|e| ApiError::unusable("base", e.to_string()))
    }

    async fn get(&self, url: Url, path: &'static str, token: &str) -> Result<(Vec<u8>, Option<String>), ApiError> {
        let err = |problem: String| ApiError { path, problem, kind: ApiFailure::Unreachable };
        let response = self
            .api
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| err(e.without_url().to_string()))?;
        let status = response.status();
        let link = response.headers().get("link").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_limited(response).await.map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(ApiError { path, problem: format!("HTTP {status}"), kind: ApiFailure::Status(status) });
        }
        Ok((body, link))
    }

    async fn get_one<T: DeserializeOwned>(&self, path: &'static str, token: &str) -> Result<T, ApiError> {
        let (body, _) = self.get(self.endpoint(path)?, path, token).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::unusable(path, format!("unexpected JSON ({})", e.classify_name())))
    }

    async fn get_all<T: DeserializeOwned>(&self, path: &'static str, token: &str) -> Result<Vec<T>, ApiError> {
        let mut url = self.endpoint(path)?;
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let (body, link) = self.get(url, path, token).await?;
            let page: Vec<T> = serde_json::from_slice(&body)
                .map_err(|e| ApiError::unusable(path, format!("unexpected JSON ({})", e.classify_name())))?;
            items.extend(page);
            match link.as_deref().and_then(next_link) {
                None => return Ok(items),
                Some(next) => {
                    let next = Url::parse(&next).map_err(|_| ApiError::unusable(path, "bad Link header".into()))?;
                    if next.origin() != self.api_base.origin() {
                        return Err(ApiError::unusable(path, "pagination points outside the API origin".into()));
                    }
                    url = next;
                }
            }
        }
        Err(ApiError::unusable(path, format!("more than {MAX_PAGES} pages")))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

fn membership(result: Result<Vec<String>, ApiError>) -> Membership {
    match result {
        Ok(values) => Membership::Known(values),
        Err(e) => {
            tracing::warn!(error = %e, "membership unavailable");
            Membership::Unavailable
        }
    }
}

/// The primary address if verified, else the first verified one.
fn choose_email(emails: &[Email]) -> Option<String> {
    emails
        .iter()
        .find(|e| e.primary && e.verified)
        .or_else(|| emails.iter().find(|e| e.verified))
        .map(|e| e.email.clone())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .is_some_and(|v| v.trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next")))
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(email: &str, primary: bool, verified: bool) -> Email {
        Email { email: email.into(), primary, verified }
    }

    #[test]
    fn email_choice_prefers_primary_verified_and_never_unverified() {
        assert_eq!(choose_email(&[e("a@x", false, true), e("p@x", true, true)]).as_deref(), Some("p@x"));
        assert_eq!(choose_email(&[e("p@x", true, false), e("s@x", false, true)]).as_deref(), Some("s@x"));
        assert_eq!(choose_email(&[e("p@x", true, false), e("s@x", false, false)]), None);
        assert_eq!(choose_email(&[]), None);
    }

    #[test]
    fn revalidation_tells_a_refused_token_from_an_outage() {
        let status = |code: u16| ApiError {
            path: "user/orgs",
            problem: format!("HTTP {code}"),
            kind: ApiFailure::Status(reqwest::StatusCode::from_u16(code).unwrap()),
        };
        assert!(matches!(status(401).provider_error(), ProviderError::Rejected { .. }));
        for transient in [403, 429, 500, 502, 503] {
            assert!(matches!(status(transient).provider_error(), ProviderError::Unreachable(_)), "{transient}");
        }
        let unreachable = ApiError { path: "user", problem: "connect".into(), kind: ApiFailure::Unreachable };
        assert!(matches!(unreachable.provider_error(), ProviderError::Unreachable(_)));
        assert!(matches!(ApiError::unusable("user", "x".into()).provider_error(), ProviderError::BadResponse(_)));
        // Orgs or teams out of reach stop the re-validation; a missing
        // scope (403, 404) leaves the membership unavailable, as at sign-in.
        for blocking in [401, 429, 502] {
            assert!(status(blocking).blocks_revalidation(), "{blocking}");
        }
        for scope in [403, 404] {
            assert!(!status(scope).blocks_revalidation(), "{scope}");
        }
        assert!(unreachable.blocks_revalidation());
    }

    #[test]
    fn link_header_next() {
        let h = r#"<https://api.github.com/user/orgs?per_page=100&page=2>; rel="next", <https://api.github.com/user/orgs?per_page=100&page=5>; rel="last""#;
        assert_eq!(next_link(h).as_deref(), Some("https://api.github.com/user/orgs?per_page=100&page=2"));
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<https://a/x>; rel=next").as_deref(), Some("https://a/x"));
    }
}
