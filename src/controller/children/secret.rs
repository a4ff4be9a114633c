//! `<policy>-auth-credentials`: the gateway's complete configuration.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::apply::hex;
use super::{CONFIG_FILE, labels, secret_name};
use crate::api::AuthPolicy;
use crate::contract::config::{GatewayConfig, Redacted};
use crate::controller::error::Result;

/// Key of the current cookie encryption key.
pub const COOKIE_KEY: &str = "COOKIE_ENCRYPTION_KEY";
/// Key of the previous cookie encryption key, kept after a rotation.
pub const PREVIOUS_COOKIE_KEY: &str = "COOKIE_ENCRYPTION_KEY_PREVIOUS";
/// Bytes of randomness in a cookie key.
pub const COOKIE_KEY_BYTES: usize = 64;

/// A fresh random cookie key, base64 (the gateway's own format).
pub use crate::contract::keys::generate_cookie_key;

/// Whether `value` is a usable cookie key (base64 of at least 64 bytes).
pub fn is_valid_cookie_key(value: &str) -> bool {
    STANDARD.decode(value.trim()).is_ok_and(|b| b.len() >= COOKIE_KEY_BYTES)
}

/// Policy annotation that rotates the cookie key: set it to a new value
/// (a date, a counter) and the next reconcile generates a fresh key, keeping
/// the current one as the previous key so existing sessions stay valid.
pub const ROTATE_ANNOTATION: &str = "authgate.dev/rotate-cookie-key";
/// Secret annotation recording the rotation value last acted upon.
pub const ROTATED_ANNOTATION: &str = "authgate.dev/cookie-key-rotation";

/// The cookie keys to use, newest first: the existing Secret's when valid,
/// else a new one; and a rotation when `rotation` differs from the one the
/// Secret records.
pub fn cookie_keys(existing: Option<&Secret>, rotation: Option<&str>) -> Vec<Redacted> {
    let read = |key: &str| {
        existing
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|v| is_valid_cookie_key(v))
    };
    let recorded = existing
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(ROTATED_ANNOTATION))
        .map(String::as_str);
    match read(COOKIE_KEY) {
        Some(current) if rotation.is_some() && rotation != recorded => {
            vec![Redacted::new(generate_cookie_key()), Redacted::new(current)]
        }
        Some(current) => std::iter::once(current).chain(read(PREVIOUS_COOKIE_KEY)).map(Redacted::new).collect(),
        None => vec![Redacted::new(generate_cookie_key())],
    }
}

/// Builds the Secret's data. Key names of the seed format describe the
/// first provider; `gateway.yaml` holds everything.
pub fn data(config: &GatewayConfig) -> Result<BTreeMap<String, String>> {
    let mut data = BTreeMap::new();
    data.insert(CONFIG_FILE.to_owned(), config.to_yaml()?);
    if let Some(key) = config.session.keys.first() {
        data.insert(COOKIE_KEY.to_owned(), key.expose().to_owned());
    }
    if let Some(key) = config.session.keys.get(1) {
        data.insert(PREVIOUS_COOKIE_KEY.to_owned(), key.expose().to_owned());
    }
    if let Some(p) = config.providers.first() {
        data.insert("OAUTH_CLIENT_ID".into(), p.client_id.clone());
        data.insert("OAUTH_CLIENT_SECRET".into(), p.client_secret.expose().to_owned());
        data.insert("OAUTH_AUTHORIZE_URL".into(), p.authorize_url.to_string());
        data.insert("OAUTH_TOKEN_URL".into(), p.token_url.to_string());
        data.insert("OAUTH_CALLBACK_URL".into(), config.callback_url().to_string());
        data.insert("OAUTH_REQUESTED_SCOPES".into(), p.scopes.join(" "));
    }
    Ok(data)
}

/// Hash of the Secret's content, for the pod-template annotation. It reveals
/// nothing about the values.
pub fn content_hash(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    hex(&h.finalize())
}

/// The desired Secret.
pub fn build(policy: &AuthPolicy, data: &BTreeMap<String, String>) -> Secret {
    let name = kube::ResourceExt::name_any(policy);
    let mut metadata = labels::child_meta(policy, secret_name(&name));
    if let Some(rotation) = rotation_of(policy) {
        metadata.annotations = Some(BTreeMap::from([(ROTATED_ANNOTATION.to_owned(), rotation.to_owned())]));
    }
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec()))).collect()),
        ..Secret::default()
    }
}

/// The rotation value a policy asks for, if any.
pub fn rotation_of(policy: &AuthPolicy) -> Option<&str> {
    policy.metadata.annotations.as_ref()?.get(ROTATE_ANNOTATION).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_and_preserved() {
        let k = generate_cookie_key();
        assert!(is_valid_cookie_key(&k));
        assert_ne!(k, generate_cookie_key());
        let existing = Secret {
            data: Some(BTreeMap::from([(COOKIE_KEY.to_owned(), ByteString(k.clone().into_bytes()))])),
            ..Secret::default()
        };
        assert_eq!(cookie_keys(Some(&existing), None)[0].expose(), k);
        let rotated = cookie_keys(Some(&existing), Some("2026-11"));
        assert_eq!(rotated.len(), 2);
        assert_ne!(rotated[0].expose(), k);
        assert_eq!(rotated[1].expose(), k);
        let short = Secret {
            data: Some(BTreeMap::from([(COOKIE_KEY.to_owned(), ByteString(b"c2hvcnQ=".to_vec()))])),
            ..Secret::default()
        };
        assert_ne!(cookie_keys(Some(&short), None)[0].expose(), "c2hvcnQ=");
    }

    #[test]
    fn hash_depends_on_content_only() {
        let a = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let b = BTreeMap::from([("a".to_owned(), "2".to_owned())]);
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a), content_hash(&a.clone()));
        assert!(!content_hash(&a).contains('1') || content_hash(&a).len() == 64);
    }
}
