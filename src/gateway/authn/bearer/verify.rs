//! The JWS half of a bearer JWT: taking the compact form apart, the header
//! rules (`alg` on the issuer's allowlist, never `none` or HMAC; no key
//! named or carried by the token: `jku`, `x5u`, `jwk`, `x5c`; no `crit`),
//! and the signature under the chosen issuer's keys only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JwsSigningAlgorithm};
use serde_json::{Map, Value};

use super::BearerError;
use crate::contract::machine::BearerAlgorithm;

/// Header parameters that name or carry a key. The gateway never takes a
/// key from the token it is verifying, and a token that offers one is
/// refused outright.
const KEY_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// A compact JWS taken apart; nothing verified yet.
pub struct Jws<'t> {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload, as a JSON object.
    pub claims: Map<String, Value>,
    /// What the signature covers: `header.payload` as sent.
    pub message: &'t str,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// Takes `token` apart (three base64url parts, JSON objects).
pub fn split(token: &str) -> Result<Jws<'_>, BearerError> {
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(BearerError::Malformed);
    };
    let json = |part: &str| -> Result<Map<String, Value>, BearerError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| BearerError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| BearerError::Malformed)
    };
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| BearerError::Malformed)?;
    Ok(Jws { header: json(h)?, claims: json(p)?, message: &token[..h.len() + 1 + p.len()], signature })
}

/// The header rules every token must pass before any issuer is chosen:
/// no key headers, no `crit`, and an asymmetric `alg`.
pub fn check_header(header: &Map<String, Value>) -> Result<CoreJwsSigningAlgorithm, BearerError> {
    if KEY_HEADERS.iter().any(|h| header.contains_key(*h)) {
        return Err(BearerError::KeyHeader);
    }
    if header.contains_key("crit") {
        return Err(BearerError::Malformed);
    }
    let alg = header.get("alg").and_then(Value::as_str).ok_or(BearerError::Algorithm)?;
    ALL.iter().find(|(name, _)| *name == alg).map(|(_, a)| a.clone()).ok_or(BearerError::Algorithm)
}

/// Whether `alg` is on an issuer's allowlist.
pub fn allowed(alg: &CoreJwsSigningAlgorithm, list: &[BearerAlgorithm]) -> bool {
    list.iter().any(|a| &jws(*a) == alg)
}

/// The asymmetric algorithms by their `alg` names. `none` and `HS*` are
/// not here, so they are never even parsed.
const ALL: [(&str, CoreJwsSigningAlgorithm); 9] = [
    ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ("RS384", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384),
    ("RS512", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512),
    ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    ("PS384", CoreJwsSigningAlgorithm::RsaSsaPssSha384),
    ("PS512", CoreJwsSigningAlgorithm::RsaSsaPssSha512),
    ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ("ES384", CoreJwsSigningAlgorithm::EcdsaP384Sha384),
    ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
];

fn jws(a: BearerAlgorithm) -> CoreJwsSigningAlgorithm {
    use BearerAlgorithm as B;
    use CoreJwsSigningAlgorithm as C;
    match a {
        B::RS256 => C::RsaSsaPkcs1V15Sha256,
        B::RS384 => C::RsaSsaPkcs1V15Sha384,
        B::RS512 => C::RsaSsaPkcs1V15Sha512,
        B::PS256 => C::RsaSsaPssSha256,
        B::PS384 => C::RsaSsaPssSha384,
        B::PS512 => C::RsaSsaPssSha512,
        B::ES256 => C::EcdsaP256Sha256,
        B::ES384 => C::EcdsaP384Sha384,
        B::EdDSA => C::EdDsa,
    }
}

/// Whether a key of `keys` (the chosen issuer's only) verifies `jws`.
pub fn signature_verifies(keys: &CoreJsonWebKeySet, jws: &Jws<'_>, alg: &CoreJwsSigningAlgorithm) -> bool {
    let kid = jws.header.get("kid").and_then(Value::as_str);
    keys.keys()
        .iter()
        .filter(|k| usable(k, kid, alg))
        .any(|k| k.verify_signature(alg, jws.message.as_bytes(), &jws.signature).is_ok())
}

/// A key that may verify `alg` signatures: the token's `kid` (when it
/// names one), the algorithm's key type, a signing key, and the key's own
/// `alg` when it states one.
fn usable(key: &CoreJsonWebKey, kid: Option<&str>, alg: &CoreJwsSigningAlgorithm) -> bool {
    kid.is_none_or(|kid| key.key_id().is_some_and(|id| id.as_str() == kid))
        && alg.key_type().as_ref() == Some(key.key_type())
        && key.key_use().is_none_or(|u| *u == CoreJsonWebKeyUse::Signature)
        && match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        }
}

/// Whether the key named by `kid` is in `keys` at all.
pub fn has_kid(keys: &CoreJsonWebKeySet, kid: Option<&str>) -> bool {
    kid.is_none_or(|kid| keys.keys().iter().any(|k| k.key_id().is_some_and(|id| id.as_str() == kid)))
}
