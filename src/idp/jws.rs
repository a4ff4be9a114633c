//! Compact JWS as identity providers send them (ID, logout and access
//! tokens): taking one apart, and which of an issuer's keys may verify it.
//! Nothing here trusts the token; the callers apply their own rules.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JwsSigningAlgorithm};
use serde_json::{Map, Value};

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

/// Takes `token` apart: exactly three base64url parts, the first two JSON
/// objects. `None` for anything else.
pub fn split(token: &str) -> Option<Jws<'_>> {
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let json =
        |part: &str| -> Option<Map<String, Value>> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok() };
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    Some(Jws { header: json(h)?, claims: json(p)?, message: &token[..h.len() + 1 + p.len()], signature })
}

/// A key that may verify `alg` signatures: the token's `kid` (when it
/// names one), the algorithm's key type, a signing key, and the key's own
/// `alg` when it states one.
pub fn usable(key: &CoreJsonWebKey, kid: Option<&str>, alg: &CoreJwsSigningAlgorithm) -> bool {
    kid.is_none_or(|kid| key.key_id().is_some_and(|id| id.as_str() == kid))
        && alg.key_type().as_ref() == Some(key.key_type())
        && key.key_use().is_none_or(|u| *u == CoreJsonWebKeyUse::Signature)
        && match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_json_parts_split() {
        assert!(split("a.b").is_none());
        assert!(split("a.b.c.d").is_none());
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        let token = format!("{h}.{p}.AAAA");
        let jws = split(&token).unwrap();
        assert_eq!(jws.message, format!("{h}.{p}"));
        assert_eq!(jws.claims["iss"], "x");
        assert!(split(&format!("{h}.{p}.***")).is_none(), "the signature must be base64url");
        assert!(split(&format!("{h}.bm90IGpzb24.AAAA")).is_none(), "the payload must be JSON");
    }
}
