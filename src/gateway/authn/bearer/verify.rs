//! The JWS half of a bearer JWT: taking the compact form apart, the header
//! rules (`alg` on the issuer's allowlist, never `none` or HMAC; no key
//! named or carried by the token: `jku`, `x5u`, `jwk`, `x5c`; no `crit`),
//! and the signature under the chosen issuer's keys only.

use openidconnect::JsonWebKey;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::{Map, Value};

use super::BearerError;
use crate::contract::machine::BearerAlgorithm;

/// Header parameters that name or carry a key. The gateway never takes a
/// key from the token it is verifying, and a token that offers one is
/// refused outright.
const KEY_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

pub use crate::idp::jws::Jws;
use crate::idp::jws::usable;

/// Takes `token` apart (three base64url parts, JSON objects).
pub fn split(token: &str) -> Result<Jws<'_>, BearerError> {
    crate::idp::jws::split(token).ok_or(BearerError::Malformed)
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

/// Whether the key named by `kid` is in `keys` at all.
pub fn has_kid(keys: &CoreJsonWebKeySet, kid: Option<&str>) -> bool {
    kid.is_none_or(|kid| keys.keys().iter().any(|k| k.key_id().is_some_and(|id| id.as_str() == kid)))
}
