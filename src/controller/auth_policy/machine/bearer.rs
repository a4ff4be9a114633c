//! `spec.bearer.issuers` resolved into the gateway's issuers:
//!
//! - `provider`: an IdentityProvider of type `oidc` in the namespace, Ready;
//!   its discovered issuer and keys URL, its client id as the login client
//!   (tokens addressed to it are ID tokens), its claim mapping under the
//!   issuer's own `claims`.
//! - `issuerUrl`: that issuer's discovery document (its `issuer` must be
//!   the URL itself) names the keys URL.
//! - `kubernetes`: the apiserver's own discovery and JWKS, read here with
//!   the controller's credentials and embedded, so the gateway needs no API
//!   access (RBAC: `nonResourceURLs` `/.well-known/openid-configuration`
//!   and `/openid/v1/jwks`, as `system:service-account-issuer-discovery`).
//!
//! A fetch that fails blocks the policy until the next try (not terminal).

use serde::Deserialize;
use url::Url;

use crate::api::conditions::{ACCEPTED, READY, RESOLVED_REFS};
use crate::api::identity_provider::{ClaimMapping, ProviderType};
use crate::api::machine::{BearerClaims, BearerIssuer, DEFAULT_BEARER_ALGORITHMS};
use crate::api::{AuthPolicy, conditions};
use crate::contract::machine::{BearerClaimPaths, BearerIssuerConfig};
use crate::controller::auth_policy::Blocked;
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::controller::refs;

/// Why an issuer cannot be resolved.
#[derive(Debug, thiserror::Error)]
enum IssuerError {
    /// Something only a person can fix.
    #[error("{0}")]
    Invalid(String),
    /// A reference that is not there (yet).
    #[error("{0}")]
    Unresolved(String),
    /// A fetch that failed; retried.
    #[error("{0}")]
    Unavailable(String),
}

impl IssuerError {
    fn blocked(self, index: usize) -> Blocked {
        let message = format!("spec.bearer.issuers[{index}]: {self}");
        match self {
            Self::Invalid(_) => Blocked::new(ACCEPTED, "InvalidBearer", message, true),
            Self::Unresolved(_) => Blocked::new(RESOLVED_REFS, "BearerIssuerNotReady", message, false),
            Self::Unavailable(_) => Blocked::new(RESOLVED_REFS, "BearerIssuerUnavailable", message, false),
        }
    }
}

/// The part of a discovery document this needs.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The gateway's bearer issuers for `policy`, or why they cannot be had.
pub(in crate::controller::auth_policy) async fn issuers(
    ctx: &Context,
    policy: &AuthPolicy,
    ns: &str,
) -> Result<Result<Vec<BearerIssuerConfig>, Blocked>> {
    let Some(bearer) = &policy.spec.bearer else { return Ok(Ok(Vec::new())) };
    let mut out = Vec::with_capacity(bearer.issuers.len());
    for (i, wanted) in bearer.issuers.iter().enumerate() {
        match issuer(ctx, wanted, ns).await? {
            Ok(config) => out.push(config),
            Err(e) => return Ok(Err(e.blocked(i))),
        }
    }
    Ok(Ok(out))
}

fn paths(claims: Option<&BearerClaims>, base: BearerClaimPaths) -> BearerClaimPaths {
    let Some(c) = claims else { return base };
    BearerClaimPaths {
        username: c.username.clone().unwrap_or(base.username),
        email: c.email.clone().unwrap_or(base.email),
        groups: c.groups.clone().unwrap_or(base.groups),
        api_key: c.api_key.clone().or(base.api_key),
    }
}

async fn issuer(ctx: &Context, wanted: &BearerIssuer, ns: &str) -> Result<Result<BearerIssuerConfig, IssuerError>> {
    let algorithms =
        if wanted.algorithms.is_empty() { DEFAULT_BEARER_ALGORITHMS.to_vec() } else { wanted.algorithms.clone() };
    if wanted.audiences.is_empty() {
        return Ok(Err(IssuerError::Invalid("at least one audience is required".into())));
    }
    let base = BearerIssuerConfig {
        name: String::new(),
        issuer: String::new(),
        audiences: wanted.audiences.clone(),
        algorithms,
        jwks_url: None,
        jwks: None,
        ca_pem: None,
        claims: paths(wanted.claims.as_ref(), BearerClaimPaths::default()),
        login_client_ids: Vec::new(),
    };
    if let Some(name) = &wanted.provider {
        return from_provider(ctx, wanted, name, ns, base).await;
    }
    if let Some(url) = &wanted.issuer_url {
        return Ok(from_issuer_url(ctx, url, base).await);
    }
    if wanted.kubernetes.is_some() {
        return Ok(from_kubernetes(ctx, base).await);
    }
    Ok(Err(IssuerError::Invalid("names none of provider, issuerUrl or kubernetes".into())))
}

async fn from_provider(
    ctx: &Context,
    wanted: &BearerIssuer,
    name: &str,
    ns: &str,
    base: BearerIssuerConfig,
) -> Result<Result<BearerIssuerConfig, IssuerError>> {
    let key = kube::runtime::reflector::ObjectRef::<crate::api::IdentityProvider>::new(name).within(ns);
    let Some(idp) = ctx.providers.get(&key) else {
        return Ok(Err(IssuerError::Unresolved(format!(
            "IdentityProvider {name:?} does not exist in namespace {ns:?}"
        ))));
    };
    if idp.spec.provider_type != ProviderType::Oidc {
        return Ok(Err(IssuerError::Invalid(format!("IdentityProvider {name:?} is not of type oidc"))));
    }
    let status = idp.status.as_ref();
    if !conditions::is_true(status.map(|s| s.conditions.as_slice()).unwrap_or_default(), READY) {
        return Ok(Err(IssuerError::Unresolved(format!("IdentityProvider {name:?} is not Ready"))));
    }
    let endpoints = status.and_then(|s| s.endpoints.as_ref());
    let (Some(issuer), Some(jwks)) =
        (endpoints.and_then(|e| e.issuer.clone()), endpoints.and_then(|e| e.jwks_url.as_deref()))
    else {
        return Ok(Err(IssuerError::Unresolved(format!("IdentityProvider {name:?} has no issuer or JWKS URL yet"))));
    };
    let Ok(jwks_url) = Url::parse(jwks) else {
        return Ok(Err(IssuerError::Invalid(format!("IdentityProvider {name:?}: bad JWKS URL"))));
    };
    let ca_pem = match &idp.spec.ca_bundle {
        None => None,
        Some(bundle) => {
            let wants = refs::of_provider(&idp.spec);
            match ctx.caches.resolve(&ctx.client, ns, &wants).await? {
                Ok(values) => values.ca_bundle(bundle).map(str::to_owned),
                Err(e) => return Ok(Err(IssuerError::Unresolved(format!("IdentityProvider {name:?}: {}", e.message)))),
            }
        }
    };
    let mapping = idp.spec.claims.clone().unwrap_or_else(ClaimMapping::default);
    let from = BearerClaims::from_provider(&mapping);
    let provider_paths = paths(Some(&from), BearerClaimPaths::default());
    Ok(Ok(BearerIssuerConfig {
        name: name.to_owned(),
        issuer,
        jwks_url: Some(jwks_url),
        ca_pem,
        claims: paths(wanted.claims.as_ref(), provider_paths),
        login_client_ids: vec![idp.spec.client_id.clone()],
        ..base
    }))
}

async fn from_issuer_url(
    ctx: &Context,
    url: &str,
    base: BearerIssuerConfig,
) -> Result<BearerIssuerConfig, IssuerError> {
    if !crate::idp::is_secure_url(url) {
        return Err(IssuerError::Invalid(format!("issuerUrl {url} must be https:// (or http:// to loopback)")));
    }
    let at = format!("{}/.well-known/openid-configuration", url.trim_end_matches('/'));
    let unavailable = |why: String| IssuerError::Unavailable(format!("discovery at {at}: {why}"));
    let response = ctx.http.get(&at).send().await.map_err(|e| unavailable(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    let doc: Discovery = response.json().await.map_err(|e| unavailable(e.without_url().to_string()))?;
    if doc.issuer != url {
        return Err(IssuerError::Invalid(format!("discovery names issuer {:?}, not {url:?}", doc.issuer)));
    }
    if !crate::idp::is_secure_url(&doc.jwks_uri) {
        return Err(IssuerError::Invalid(format!("jwks_uri {} is not https://", doc.jwks_uri)));
    }
    let jwks_url = Url::parse(&doc.jwks_uri).map_err(|e| IssuerError::Invalid(format!("jwks_uri: {e}")))?;
    Ok(BearerIssuerConfig { name: url.to_owned(), issuer: doc.issuer, jwks_url: Some(jwks_url), ..base })
}

async fn from_kubernetes(ctx: &Context, base: BearerIssuerConfig) -> Result<BearerIssuerConfig, IssuerError> {
    let get = |path: &'static str| async move {
        let request = http::Request::get(path).body(Vec::new()).map_err(|e| IssuerError::Invalid(e.to_string()))?;
        ctx.client.request_text(request).await.map_err(|e| IssuerError::Unavailable(format!("GET {path}: {e}")))
    };
    let discovery = get("/.well-known/openid-configuration").await?;
    let doc: Discovery = serde_json::from_str(&discovery)
        .map_err(|e| IssuerError::Unavailable(format!("the apiserver's discovery document: {e}")))?;
    let jwks = get("/openid/v1/jwks").await?;
    serde_json::from_str::<serde_json::Value>(&jwks)
        .ok()
        .filter(|v| v["keys"].is_array())
        .ok_or_else(|| IssuerError::Unavailable("the apiserver's JWKS is not a key set".into()))?;
    Ok(BearerIssuerConfig { name: "kubernetes".into(), issuer: doc.issuer, jwks: Some(jwks), ..base })
}
