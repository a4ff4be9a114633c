//! OpenID Connect relying party (also the base of GitLab and Google).
//!
//! The ID token is verified with `openidconnect` against the issuer's JWKS:
//! signature with an asymmetric algorithm only (never `none`, never an HMAC
//! keyed with anything), `iss`, `aud` (no untrusted extra audiences), `azp`,
//! `exp`, `iat` not in the future, and the login's nonce. When the token's
//! `kid` is unknown the JWKS is fetched again (at most every
//! [`JWKS_REFETCH_INTERVAL`]) so key rotation at the issuer just works.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreTokenResponse,
};
use openidconnect::{
    AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, IssuerUrl, JsonWebKeySetUrl, Nonce, NonceVerifier, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, Scope, SignatureVerificationError, TokenResponse, TokenUrl,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use super::claims::{bool_claim, groups_claim, string_claim};
use super::{HttpClient, Profile, ProviderError, Refreshed, SignedIn, Tokens, gitlab, google, issuer_matches};
use crate::access::{DomainProof, Email, Identity, Membership};
use crate::gateway::config::{ProviderConfig, ProviderType};
use crate::gateway::session::flow::LoginFlow;

/// Minimum time between two JWKS fetches.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(2);
/// Tolerated clock skew for `iat`.
const IAT_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Signature algorithms accepted for ID tokens: asymmetric only.
pub(crate) const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointNotSet>;

/// An OpenID Connect provider.
pub struct OidcProvider {
    config: ProviderConfig,
    issuer: Url,
    client: Client,
    http: HttpClient,
    keys: KeyCache,
}

/// The issuer's signing keys, refetched when an unknown key shows up.
struct KeyCache {
    url: Option<JsonWebKeySetUrl>,
    current: RwLock<(u64, Arc<CoreJsonWebKeySet>)>,
    last_fetch: Mutex<Option<Instant>>,
}

impl KeyCache {
    fn snapshot(&self) -> (u64, Arc<CoreJsonWebKeySet>) {
        let guard = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard.0, guard.1.clone())
    }

    /// Fetches the JWKS again, unless another task already did since
    /// `seen` (then its result is used). Waits out the rate limit rather
    /// than failing, so a genuine rotation is always picked up.
    async fn refetch(&self, http: &HttpClient, seen: u64) -> Result<Arc<CoreJsonWebKeySet>, ProviderError> {
        let url = self.url.as_ref().ok_or_else(|| ProviderError::InvalidIdToken("no JWKS URL configured".into()))?;
        let mut last = self.last_fetch.lock().await;
        let (generation, keys) = self.snapshot();
        if generation != seen {
            return Ok(keys);
        }
        if let Some(at) = *last {
            let wait = JWKS_REFETCH_INTERVAL.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        *last = Some(Instant::now());
        let fetched = CoreJsonWebKeySet::fetch_async(url, http).await.map_err(|e| match e {
            openidconnect::DiscoveryError::Request(e) => ProviderError::Unreachable(format!("JWKS: {e}")),
            other => ProviderError::BadResponse(format!("JWKS: {other}")),
        })?;
        let fetched = Arc::new(fetched);
        let mut guard = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (generation + 1, fetched.clone());
        tracing::info!(keys = fetched.keys().len(), "fetched the issuer's signing keys");
        Ok(fetched)
    }
}

/// Nonce check for ID tokens that come with a refresh, which may repeat the
/// original nonce or omit it.
struct AnyNonce;

impl NonceVerifier for AnyNonce {
    fn verify(self, _nonce: Option<&Nonce>) -> Result<(), String> {
        Ok(())
    }
}

impl OidcProvider {
    /// Builds the client from resolved endpoints.
    pub fn new(config: ProviderConfig, redirect: &Url, http: &HttpClient) -> Result<Self, ProviderError> {
        let bad = |what: &str| ProviderError::BadResponse(format!("provider {}: {what}", config.name));
        let issuer = config.issuer_url.clone().ok_or_else(|| bad("an OpenID Connect provider needs an issuer URL"))?;
        let client = CoreClient::new(
            ClientId::new(config.client_id.clone()),
            IssuerUrl::from_url(issuer.clone()),
            CoreJsonWebKeySet::new(Vec::new()),
        )
        .set_client_secret(ClientSecret::new(config.client_secret.expose().to_owned()))
        .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
        .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
        .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        let keys = KeyCache {
            url: config.jwks_url.clone().map(JsonWebKeySetUrl::from_url),
            current: RwLock::new((0, Arc::new(CoreJsonWebKeySet::new(Vec::new())))),
            last_fetch: Mutex::new(None),
        };
        if keys.url.is_none() {
            return Err(bad("an OpenID Connect provider needs a JWKS URL"));
        }
        Ok(Self { config, issuer, client, http: http.clone(), keys })
    }

    /// The provider's settings from `gateway.yaml`: endpoints, client,
    /// scopes, claim mapping and allow-list.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Fetches the signing keys once at startup.
    pub async fn warm_up(&self) {
        if let Err(e) = self.keys.refetch(&self.http, 0).await {
            tracing::warn!(provider = %self.config.name, error = %e, "could not fetch signing keys at startup; will retry at first login");
        }
    }

    /// Whether `iss` names this provider's issuer.
    pub fn is_issuer(&self, iss: &str) -> bool {
        issuer_matches(iss, &self.issuer)
    }

    /// The client for calls to this provider (its CA bundle applied).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The issuer's signing keys, for tokens other than ID tokens (logout
    /// tokens). When `kid` names none of them they are fetched again, as
    /// for ID tokens.
    pub async fn signing_keys(&self, kid: Option<&str>) -> Result<Arc<CoreJsonWebKeySet>, ProviderError> {
        use openidconnect::JsonWebKey as _;
        let (generation, keys) = self.keys.snapshot();
        let known = match kid {
            Some(kid) => keys.keys().iter().any(|k| k.key_id().is_some_and(|id| id.as_str() == kid)),
            None => !keys.keys().is_empty(),
        };
        if known { Ok(keys) } else { self.keys.refetch(&self.http, generation).await }
    }

    /// The authorization request: code flow, S256 PKCE, state and nonce.
    pub fn authorization_url(&self, flow: &LoginFlow, prompt: Option<&str>, domain_hint: Option<&str>) -> Url {
        let state = flow.state.clone();
        let nonce = flow.nonce.clone().unwrap_or_default();
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(flow.pkce_verifier.clone()));
        let scopes = self.config.scopes.iter().filter(|s| *s != "openid").map(|s| Scope::new(s.clone()));
        let mut request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(scopes)
            .set_pkce_challenge(challenge);
        if let Some(prompt) = prompt {
            request = request.add_extra_param("prompt", prompt.to_owned());
        }
        if self.config.provider_type == ProviderType::Google {
            for (name, value) in google::authorization_params(domain_hint, prompt.is_some()) {
                request = request.add_extra_param(name, value);
            }
        }
        request.url().0
    }

    /// Exchanges the code, verifies the ID token against the login's nonce
    /// and builds the user's profile.
    pub async fn sign_in(&self, code: &str, flow: &LoginFlow) -> Result<SignedIn, ProviderError> {
        let response: CoreTokenResponse = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::InvalidIdToken("the token response has no ID token".into()))?;
        let nonce =
            Nonce::new(flow.nonce.clone().ok_or_else(|| ProviderError::InvalidIdToken("login has no nonce".into()))?);
        let claims = self.verify(id_token, || &nonce).await?;
        let tokens = Tokens { id_token: compact(id_token), ..Tokens::from_response(&response) };
        let profile = self.profile(&claims, &tokens.access_token).await?;
        Ok(SignedIn { profile, tokens })
    }

    /// Refreshes the tokens. If a new ID token comes along it is verified
    /// like the first one (except the nonce) and must name the same subject.
    pub async fn refresh(&self, refresh_token: &str, subject: &str) -> Result<Refreshed, ProviderError> {
        let response: CoreTokenResponse = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(&self.http)
            .await?;
        let mut tokens = Tokens::from_response(&response);
        let profile = match response.id_token() {
            None => None,
            Some(id_token) => {
                let claims = self.verify(id_token, || AnyNonce).await?;
                if claims.get("sub").and_then(Value::as_str) != Some(subject) {
                    return Err(ProviderError::InvalidIdToken("the refreshed ID token names another subject".into()));
                }
                tokens.id_token = compact(id_token);
                Some(self.profile(&claims, &tokens.access_token).await?)
            }
        };
        Ok(Refreshed { tokens, profile })
    }

    /// The user's current profile from the userinfo endpoint, read with
    /// `access_token`; `None` when the provider has none. The answer must
    /// name `subject`. Signed (JWT) userinfo answers are not read.
    pub async fn userinfo_profile(&self, access_token: &str, subject: &str) -> Result<Option<Profile>, ProviderError> {
        let Some(url) = &self.config.userinfo_url else {
            return Ok(None);
        };
        let response = self
            .http
            .reqwest()
            .get(url.clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("userinfo: {}", e.without_url())))?;
        let status = response.status();
        let body = super::http::read_limited(response)
            .await
            .map_err(|e| ProviderError::Unreachable(format!("userinfo: {e}")))?;
        if !status.is_success() {
            return Err(ProviderError::from_status(status, "userinfo"));
        }
        let claims: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::BadResponse("userinfo: not a JSON object".into()))?;
        if claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(ProviderError::InvalidIdToken("userinfo names another subject".into()));
        }
        self.profile(&claims, access_token).await.map(Some)
    }

    /// Verifies an ID token; returns its claims as JSON.
    async fn verify<N: NonceVerifier>(
        &self,
        id_token: &CoreIdToken,
        nonce: impl Fn() -> N,
    ) -> Result<Map<String, Value>, ProviderError> {
        let (generation, keys) = self.keys.snapshot();
        match self.check(id_token, &keys, nonce()) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let keys = self.keys.refetch(&self.http, generation).await?;
                self.check(id_token, &keys, nonce()).map_err(|e| ProviderError::InvalidIdToken(e.to_string()))?;
            }
            other => other.map_err(|e| ProviderError::InvalidIdToken(e.to_string()))?,
        }
        verified_payload(id_token)
    }

    fn check<N: NonceVerifier>(
        &self,
        id_token: &CoreIdToken,
        keys: &CoreJsonWebKeySet,
        nonce: N,
    ) -> Result<(), ClaimsVerificationError> {
        let client_id = ClientId::new(self.config.client_id.clone());
        let verifier = CoreIdTokenVerifier::new_public_client(
            client_id.clone(),
            IssuerUrl::from_url(self.issuer.clone()),
            keys.clone(),
        )
        .set_allowed_algs(ALLOWED_ALGS)
        // `iss` is compared below, tolerating only the root-slash
        // ambiguity of the configured URL.
        .require_issuer_match(false)
        .set_issue_time_verifier_fn(|iat| {
            if iat > chrono::Utc::now() + IAT_SKEW {
                Err("the ID token was issued in the future".into())
            } else {
                Ok(())
            }
        });
        let claims = id_token.claims(&verifier, nonce)?;
        if !self.is_issuer(claims.issuer().as_str()) {
            return Err(ClaimsVerificationError::InvalidIssuer(
                "the ID token's issuer is not the configured issuer".into(),
            ));
        }
        // OIDC Core 3.1.3.7 steps 4-5, which openidconnect leaves to us.
        let audiences = claims.audiences();
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != client_id.as_str() => {
                return Err(ClaimsVerificationError::InvalidAudience("azp is not this client".into()));
            }
            None if audiences.len() > 1 => {
                return Err(ClaimsVerificationError::InvalidAudience("several audiences but no azp".into()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Builds the profile from verified claims, per the claim mapping and
    /// the provider's kind.
    async fn profile(&self, claims: &Map<String, Value>, access_token: &str) -> Result<Profile, ProviderError> {
        let mapping = &self.config.claims;
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let email = string_claim(claims, &mapping.email);
        let sent = claims.get("email_verified").map(|_| bool_claim(claims, "email_verified"));
        let email_verified = self.config.email_verified.verified(sent);
        // The user name comes only from a claim that identifies the account:
        // the configured one, or the verified email (in the canonical form
        // the filters match), else the stable subject. Never a self-chosen
        // name such as `preferred_username` unless the policy names it.
        let user = if mapping.username == mapping.email {
            email.as_deref().filter(|_| email_verified).and_then(|e| Email::parse(e).ok()).map(|e| e.to_string())
        } else {
            string_claim(claims, &mapping.username)
        }
        .unwrap_or_else(|| subject.clone());
        let mut groups = groups_claim(claims.get(&mapping.groups));
        let mut orgs = Membership::Unavailable;
        let mut domain_proof = DomainProof::Email;
        match self.config.provider_type {
            ProviderType::Gitlab => {
                if claims.get(&mapping.groups).is_none() {
                    groups = gitlab::groups_from_userinfo(
                        &self.http,
                        self.config.userinfo_url.as_ref(),
                        access_token,
                        &mapping.groups,
                    )
                    .await;
                }
                // GitLab groups double as "orgs" for allowedOrgs.
                orgs = groups.clone();
            }
            ProviderType::Google => domain_proof = google::domain_proof(claims),
            ProviderType::Oidc | ProviderType::Github => {}
        }
        let header_groups = groups.values().to_vec();
        let identity = Identity {
            subject,
            user,
            email,
            email_verified,
            domain_proof,
            groups,
            orgs,
            teams: Membership::Unavailable,
        };
        Ok(Profile { identity, groups: header_groups })
    }
}

/// The payload of an already verified ID token, as a JSON object, so the
/// claim mapping can name any claim.
/// The ID token as it came: its compact JWT serialization.
fn compact(id_token: &CoreIdToken) -> Option<String> {
    serde_json::to_value(id_token).ok()?.as_str().map(str::to_owned)
}

fn verified_payload(id_token: &CoreIdToken) -> Result<Map<String, Value>, ProviderError> {
    let bad = || ProviderError::InvalidIdToken("the ID token payload is not a JSON object".into());
    let compact = serde_json::to_value(id_token).map_err(|_| bad())?;
    let payload = compact.as_str().and_then(|s| s.split('.').nth(1)).ok_or_else(bad)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
