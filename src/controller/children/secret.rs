//! `<policy>-auth-credentials`: the gateway's complete configuration.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::{CONFIG_FILE, labels, secret_name};
use crate::api::AuthPolicy;
use crate::contract::config::{GatewayConfig, Redacted};
use crate::contract::seed;
use crate::controller::error::Result;

/// Key of the current cookie encryption key.
pub const COOKIE_KEY: &str = seed::COOKIE_KEY;
/// Key of the previous cookie encryption key, kept after a rotation.
pub const PREVIOUS_COOKIE_KEY: &str = seed::PREVIOUS_COOKIE_KEY;
/// Bytes of randomness in a cookie key.
pub const COOKIE_KEY_BYTES: usize = seed::MIN_COOKIE_KEY_BYTES;

/// A fresh random cookie key, base64 (the gateway's own format).
pub use crate::contract::keys::generate_cookie_key;

/// Whether `value` is a usable cookie key (base64 of at least 64 bytes).
pub fn is_valid_cookie_key(value: &str) -> bool {
    seed::check_cookie_key(COOKIE_KEY, value).is_ok()
}

/// Policy annotation that rotates the cookie key: set it to a new value
/// (a date, a counter) and the next reconcile generates a fresh key, keeping
/// the current one as the previous key so existing sessions stay valid.
pub const ROTATE_ANNOTATION: &str = "authgate.dev/rotate-cookie-key";
/// Secret annotation recording the rotation value last acted upon.
pub const ROTATED_ANNOTATION: &str = "authgate.dev/cookie-key-rotation";
/// Policy annotation that retires the key a rotation replaced: set it to
/// the same value as [`ROTATE_ANNOTATION`] and the previous key is dropped,
/// so sessions still sealed with it end. Rotating, then retiring, ends
/// every session in two steps, without rolling the pods.
pub const RETIRE_ANNOTATION: &str = "authgate.dev/retire-cookie-key";

/// The cookie keys to use, newest first: the existing Secret's when valid,
/// else a new one; a rotation when `rotation` differs from the one the
/// Secret records; and without the previous key once `retire` names the
/// rotation that replaced it.
pub fn cookie_keys(existing: Option<&Secret>, rotation: Option<&str>, retire: Option<&str>) -> Vec<Redacted> {
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
        Some(current) if retire.is_some() && retire == recorded => vec![Redacted::new(current)],
        Some(current) => std::iter::once(current).chain(read(PREVIOUS_COOKIE_KEY)).map(Redacted::new).collect(),
        None => vec![Redacted::new(generate_cookie_key())],
    }
}

/// Builds the Secret's data. Key names and separators of the seed format
/// (`contract::seed`: comma-separated scopes, as the Foxglove format says)
/// describe the first provider, so the Secret also runs a gateway through
/// `envFrom`; `gateway.yaml` holds everything.
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
        data.insert(seed::CLIENT_ID.into(), p.client_id.clone());
        data.insert(seed::CLIENT_SECRET.into(), p.client_secret.expose().to_owned());
        data.insert(seed::AUTHORIZE_URL.into(), p.authorize_url.to_string());
        data.insert(seed::TOKEN_URL.into(), p.token_url.to_string());
        data.insert(seed::CALLBACK_URL.into(), config.callback_url().to_string());
        data.insert(seed::REQUESTED_SCOPES.into(), seed::join_scopes(&p.scopes));
    }
    Ok(data)
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

/// The rotation whose replaced key a policy retires, if any.
pub fn retirement_of(policy: &AuthPolicy) -> Option<&str> {
    policy.metadata.annotations.as_ref()?.get(RETIRE_ANNOTATION).map(String::as_str)
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
        assert_eq!(cookie_keys(Some(&existing), None, None)[0].expose(), k);
        let rotated = cookie_keys(Some(&existing), Some("2026-11"), None);
        assert_eq!(rotated.len(), 2);
        assert_ne!(rotated[0].expose(), k);
        assert_eq!(rotated[1].expose(), k);
        let short = Secret {
            data: Some(BTreeMap::from([(COOKIE_KEY.to_owned(), ByteString(b"c2hvcnQ=".to_vec()))])),
            ..Secret::default()
        };
        assert_ne!(cookie_keys(Some(&short), None, None)[0].expose(), "c2hvcnQ=");
    }

    #[test]
    fn retiring_drops_the_key_its_rotation_replaced_and_nothing_else() {
        let (new, old) = (generate_cookie_key(), generate_cookie_key());
        let rotated = |recorded: &str| Secret {
            metadata: kube::api::ObjectMeta {
                annotations: Some(BTreeMap::from([(ROTATED_ANNOTATION.to_owned(), recorded.to_owned())])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                (COOKIE_KEY.to_owned(), ByteString(new.clone().into_bytes())),
                (PREVIOUS_COOKIE_KEY.to_owned(), ByteString(old.clone().into_bytes())),
            ])),
            ..Secret::default()
        };
        let keys = |s: &Secret, rotate, retire| {
            cookie_keys(Some(s), rotate, retire).iter().map(|k| k.expose().to_owned()).collect::<Vec<_>>()
        };
        let s = rotated("r1");
        assert_eq!(keys(&s, Some("r1"), None), [new.clone(), old.clone()]);
        assert_eq!(keys(&s, Some("r1"), Some("r0")), [new.clone(), old.clone()], "another rotation's retirement");
        assert_eq!(keys(&s, Some("r1"), Some("r1")), std::slice::from_ref(&new));
        // Retiring and rotating at once: the rotation wins, keeping the key
        // that was current until now.
        let both = keys(&s, Some("r2"), Some("r1"));
        assert_eq!((both.len(), &both[1]), (2, &new));
    }

    fn config_with_scopes(scopes: &[&str]) -> GatewayConfig {
        let mut c = GatewayConfig::from_yaml(
            "externalUrl: https://app.example.com/grafana\nupstream: http://app:80\nproviders:\n- {name: corp, type: oidc, clientId: c, clientSecret: hunter2, issuerUrl: 'https://id.corp', authorizeUrl: 'https://id.corp/auth', tokenUrl: 'https://id.corp/token', scopes: []}\nsession: {cookieName: _a, ttlSeconds: 60, keys: []}\n",
        )
        .unwrap();
        c.providers[0].scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        c.session.keys = vec![Redacted::new(generate_cookie_key())];
        c
    }

    #[test]
    fn scopes_are_written_comma_separated_as_the_seed_format_says() {
        let data = data(&config_with_scopes(&["openid", "email", "read:org"])).unwrap();
        assert_eq!(data[seed::REQUESTED_SCOPES], "openid,email,read:org");
        assert_eq!(seed::parse_scopes(&data[seed::REQUESTED_SCOPES]).unwrap(), ["openid", "email", "read:org"]);
        assert_eq!(super::data(&config_with_scopes(&["openid"])).unwrap()[seed::REQUESTED_SCOPES], "openid");
    }

    #[test]
    fn the_written_secret_passes_the_seed_format_check() {
        // The same rules `authgate check` and the gateway apply.
        let data = data(&config_with_scopes(&["openid", "email"])).unwrap();
        assert_eq!(seed::problems(|k| data.get(k).cloned()), []);
        assert_eq!(data[seed::CALLBACK_URL], "https://app.example.com/grafana/oauth2/callback");
        assert_eq!(
            seed::external_url_of_callback(&data[seed::CALLBACK_URL]).unwrap().as_str(),
            "https://app.example.com/grafana"
        );
    }
}
