//! The payload half of a bearer JWT, after its signature verified: time
//! (`exp` required, `nbf`, with [`LEEWAY_SECONDS`]), audience, the ID-token
//! rule, and the claim mapping into an identity.
//!
//! **The ID-token rule.** A token typed `at+jwt` (RFC 9068, header `typ`
//! `at+jwt` or `application/at+jwt`) is an access token. Any other token
//! is refused when its `aud` names one of the issuer's login client ids
//! (an ID token is addressed to the client that signed the user in) or
//! when it carries a `nonce` (only ID tokens do).

use serde_json::{Map, Value};

use super::BearerError;
use crate::access::{DomainProof, Identity, Membership, is_canonical};
use crate::contract::machine::{BearerClaimPaths, BearerIssuerConfig};

/// Tolerated clock skew for `exp` and `nbf`, seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// Checks time, audience and the ID-token rule; returns the `exp` to
/// honour (with the leeway added).
pub fn check(
    issuer: &BearerIssuerConfig,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<u64, BearerError> {
    let exp = claims.get("exp").and_then(Value::as_u64).ok_or(BearerError::Expired)?;
    let until = exp.saturating_add(LEEWAY_SECONDS);
    if now >= until {
        return Err(BearerError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_u64().ok_or(BearerError::NotYetValid)?;
        if nbf > now.saturating_add(LEEWAY_SECONDS) {
            return Err(BearerError::NotYetValid);
        }
    }
    let audiences = audiences(claims.get("aud")).ok_or(BearerError::Audience)?;
    if !audiences.iter().any(|a| issuer.audiences.iter().any(|c| c == a)) {
        return Err(BearerError::Audience);
    }
    let typed_access = header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typed_access
        && (claims.contains_key("nonce") || audiences.iter().any(|a| issuer.login_client_ids.iter().any(|c| c == a)))
    {
        return Err(BearerError::IdToken);
    }
    Ok(until)
}

/// `aud` as a list: a string or an array of strings; anything else (or
/// nothing) is no audience.
fn audiences(aud: Option<&Value>) -> Option<Vec<&str>> {
    match aud? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// The claim at a dotted `path` (`realm_access.roles`). A claim whose own
/// name contains a dot is found too, tried before descending.
pub fn at<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    at(claims.get(head)?.as_object()?, rest)
}

/// A value fit for an identity header: canonical (no control characters,
/// no surrounding whitespace) and without the `,` that separates header
/// list values.
fn clean(value: &str) -> bool {
    is_canonical(value) && !value.contains(',')
}

/// The identity the claims describe, per `paths`. Refuses (rather than
/// drops) any value that could not travel in a header as it is.
pub fn identity(claims: &Map<String, Value>, paths: &BearerClaimPaths) -> Result<Identity, BearerError> {
    let text = |path: &str| -> Result<Option<String>, BearerError> {
        match at(claims, path) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if clean(s) => Ok(Some(s.clone())),
            Some(_) => Err(BearerError::Claims),
        }
    };
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if clean(s) => s.clone(),
        _ => return Err(BearerError::Claims),
    };
    let email = text(&paths.email)?;
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let user =
        if paths.username == paths.email { email.clone().filter(|_| email_verified) } else { text(&paths.username)? }
            .unwrap_or_else(|| subject.clone());
    let groups = match at(claims, &paths.groups) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(BearerError::Claims)?,
        Some(_) => return Err(BearerError::Claims),
    };
    if !groups.iter().all(|g| clean(g)) {
        return Err(BearerError::Claims);
    }
    Ok(Identity {
        subject,
        user,
        email,
        email_verified,
        domain_proof: DomainProof::Email,
        groups: Membership::Known(groups),
        orgs: Membership::Unavailable,
        teams: Membership::Unavailable,
    })
}

/// The API-key claim's value, when the issuer maps one and the token has
/// it.
pub fn api_key<'c>(claims: &'c Map<String, Value>, paths: &BearerClaimPaths) -> Result<Option<&'c str>, BearerError> {
    let Some(path) = &paths.api_key else { return Ok(None) };
    match at(claims, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if clean(s) => Ok(Some(s)),
        Some(_) => Err(BearerError::ApiKey),
    }
}
