//! The `auth-credentials` Secret format of the Foxglove remote data loader,
//! which authgate reads and writes as is: one environment variable per key,
//! so a pod takes the Secret with `envFrom`.
//!
//! | key | meaning |
//! | --- | --- |
//! | `OAUTH_CLIENT_ID`, `OAUTH_CLIENT_SECRET` | the OAuth2 client |
//! | `OAUTH_AUTHORIZE_URL`, `OAUTH_TOKEN_URL` | the provider's endpoints |
//! | `OAUTH_CALLBACK_URL` | the redirect URI registered at the provider |
//! | `COOKIE_ENCRYPTION_KEY` | base64 of at least 64 random bytes |
//! | `OAUTH_REQUESTED_SCOPES` | scopes, **comma**-separated (optional) |
//! | `DISABLE_AUTH` | `true` turns sign-in off (usually set on the container, not in the Secret) |
//!
//! The controller writes these keys (next to `gateway.yaml`), the gateway
//! reads them from its environment (`gateway::settings::seed`) and
//! `authgate check` validates a Secret carrying them; all three use the
//! rules below, so they cannot disagree about a separator or a length.
//! No error here ever contains a value: only the key and what is wrong.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use thiserror::Error;
use url::Url;

use crate::idp::discovery::is_secure_url;

/// OAuth2 client ID.
pub const CLIENT_ID: &str = "OAUTH_CLIENT_ID";
/// OAuth2 client secret.
pub const CLIENT_SECRET: &str = "OAUTH_CLIENT_SECRET";
/// The provider's authorization endpoint.
pub const AUTHORIZE_URL: &str = "OAUTH_AUTHORIZE_URL";
/// The provider's token endpoint.
pub const TOKEN_URL: &str = "OAUTH_TOKEN_URL";
/// The redirect URI registered at the provider.
pub const CALLBACK_URL: &str = "OAUTH_CALLBACK_URL";
/// Scopes to request, comma-separated.
pub const REQUESTED_SCOPES: &str = "OAUTH_REQUESTED_SCOPES";
/// The current cookie encryption key.
pub const COOKIE_KEY: &str = "COOKIE_ENCRYPTION_KEY";
/// The previous cookie encryption key, kept after a rotation (an authgate
/// addition: sessions sealed with it still open).
pub const PREVIOUS_COOKIE_KEY: &str = "COOKIE_ENCRYPTION_KEY_PREVIOUS";
/// `true` disables authentication.
pub const DISABLE_AUTH: &str = "DISABLE_AUTH";

/// Keys a Secret must carry when authentication is on.
pub const REQUIRED: [&str; 6] = [CLIENT_ID, CLIENT_SECRET, AUTHORIZE_URL, TOKEN_URL, CALLBACK_URL, COOKIE_KEY];
/// Fewest decoded bytes of a cookie key the format accepts.
pub const MIN_COOKIE_KEY_BYTES: usize = 64;
/// What separates scopes in `OAUTH_REQUESTED_SCOPES`.
pub const SCOPE_SEPARATOR: char = ',';
/// The path, under the external URL, where the gateway receives the
/// provider's redirect.
pub const CALLBACK_PATH: &str = "/oauth2/callback";

/// What is wrong with one key. Messages name the key, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeedError {
    /// A required key is absent or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The value does not parse as a URL.
    #[error("{0} is not a URL")]
    NotUrl(&'static str),
    /// The URL would send credentials in the clear.
    #[error("{0} must be https:// (http:// only for a loopback host)")]
    Insecure(&'static str),
    /// The callback is not where the gateway receives the redirect.
    #[error(
        "{CALLBACK_URL} must be the external URL followed by {CALLBACK_PATH} (with no query), e.g. https://app.example.com{CALLBACK_PATH}; \
         that is where the gateway receives the provider's redirect, so register it at the provider too"
    )]
    CallbackPath,
    /// A cookie key is not base64.
    #[error("{0} is not base64; generate one with `openssl rand -base64 64`")]
    KeyNotBase64(&'static str),
    /// A cookie key is too short.
    #[error(
        "{0} decodes to {1} bytes; at least {MIN_COOKIE_KEY_BYTES} are required; generate one with `openssl rand -base64 64`"
    )]
    KeyTooShort(&'static str, usize),
    /// A scope holds whitespace, as when the list was space-separated.
    #[error("{REQUESTED_SCOPES} is a comma-separated list (e.g. openid,email); an entry contains whitespace")]
    ScopeWhitespace,
    /// `DISABLE_AUTH` is not a boolean.
    #[error("{DISABLE_AUTH} must be true or false")]
    NotBoolean,
}

/// Parses `OAUTH_REQUESTED_SCOPES`: entries trimmed, empty ones dropped
/// (a trailing comma is harmless); an entry with whitespace inside is
/// refused (a scope cannot contain a space, RFC 6749 §3.3, so it is a
/// space-separated list by mistake).
pub fn parse_scopes(value: &str) -> Result<Vec<String>, SeedError> {
    let scopes: Vec<String> =
        value.split(SCOPE_SEPARATOR).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if scopes.iter().any(|s| s.contains(char::is_whitespace)) {
        return Err(SeedError::ScopeWhitespace);
    }
    Ok(scopes)
}

/// Renders scopes for `OAUTH_REQUESTED_SCOPES`.
pub fn join_scopes(scopes: &[String]) -> String {
    scopes.join(&SCOPE_SEPARATOR.to_string())
}

/// Parses a provider endpoint: a URL, https except for loopback hosts.
pub fn parse_endpoint(key: &'static str, value: &str) -> Result<Url, SeedError> {
    let url = Url::parse(value.trim()).map_err(|_| SeedError::NotUrl(key))?;
    if !is_secure_url(url.as_str()) {
        return Err(SeedError::Insecure(key));
    }
    Ok(url)
}

/// The external URL a callback URL belongs to: the callback with its
/// trailing [`CALLBACK_PATH`] removed, so that the gateway's own
/// `externalUrl + /oauth2/callback` is exactly the registered URI.
pub fn external_url_of_callback(value: &str) -> Result<Url, SeedError> {
    let mut url = parse_endpoint(CALLBACK_URL, value)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SeedError::CallbackPath);
    }
    let base = url.path().strip_suffix(CALLBACK_PATH).ok_or(SeedError::CallbackPath)?.to_owned();
    url.set_path(if base.is_empty() { "/" } else { &base });
    Ok(url)
}

/// Decodes a cookie key (standard or URL-safe base64, padding optional,
/// as the gateway's keyring reads it) and checks its length.
pub fn check_cookie_key(key: &'static str, value: &str) -> Result<(), SeedError> {
    let text = value.trim();
    let unpadded = text.trim_end_matches('=');
    let decoded = if text.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(unpadded).ok()
    } else {
        STANDARD.decode(text).ok().or_else(|| STANDARD_NO_PAD.decode(unpadded).ok())
    };
    let bytes = decoded.ok_or(SeedError::KeyNotBase64(key))?;
    if bytes.len() < MIN_COOKIE_KEY_BYTES {
        return Err(SeedError::KeyTooShort(key, bytes.len()));
    }
    Ok(())
}

/// Parses `DISABLE_AUTH` (`true`/`false`, `1`/`0`, `yes`/`no`, any case).
/// Anything else is an error rather than a guess in either direction.
pub fn parse_disable_auth(value: &str) -> Result<bool, SeedError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(SeedError::NotBoolean),
    }
}

/// Every problem of a complete Secret whose keys `get` returns (values
/// trimmed, `None` for absent or empty). With `DISABLE_AUTH=true` nothing
/// is required, but whatever is present must still be well-formed.
pub fn problems(get: impl Fn(&str) -> Option<String>) -> Vec<SeedError> {
    let get = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    let disabled = match get(DISABLE_AUTH).map(|v| parse_disable_auth(&v)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            out.push(e);
            false
        }
        None => false,
    };
    for key in REQUIRED {
        let Some(value) = get(key) else {
            if !disabled {
                out.push(SeedError::Missing(key));
            }
            continue;
        };
        let result = match key {
            AUTHORIZE_URL | TOKEN_URL => parse_endpoint(key, &value).map(drop),
            CALLBACK_URL => external_url_of_callback(&value).map(drop),
            COOKIE_KEY => check_cookie_key(COOKIE_KEY, &value),
            _ => Ok(()),
        };
        out.extend(result.err());
    }
    if let Some(previous) = get(PREVIOUS_COOKIE_KEY) {
        out.extend(check_cookie_key(PREVIOUS_COOKIE_KEY, &previous).err());
    }
    if let Some(scopes) = get(REQUESTED_SCOPES) {
        out.extend(parse_scopes(&scopes).err());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn key(bytes: usize) -> String {
        STANDARD.encode(vec![7u8; bytes])
    }

    fn good() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (CLIENT_ID, "client".to_owned()),
            (CLIENT_SECRET, "hunter2".to_owned()),
            (AUTHORIZE_URL, "https://abc.auth0.com/oauth/authorize".to_owned()),
            (TOKEN_URL, "https://abc.auth0.com/oauth/token".to_owned()),
            (CALLBACK_URL, "https://data.example.com/oauth2/callback".to_owned()),
            (COOKIE_KEY, key(64)),
            (REQUESTED_SCOPES, "openid, email,profile,".to_owned()),
        ])
    }

    fn problems_of(map: &BTreeMap<&'static str, String>) -> Vec<SeedError> {
        problems(|k| map.get(k).cloned())
    }

    #[test]
    fn a_complete_secret_has_no_problems() {
        assert_eq!(problems_of(&good()), []);
    }

    #[test]
    fn each_problem_names_its_key_and_never_the_value() {
        let mut m = good();
        m.remove(CLIENT_SECRET);
        m.insert(TOKEN_URL, "hunter2-not-a-url".into());
        m.insert(AUTHORIZE_URL, "http://id.example.com/auth".into());
        m.insert(COOKIE_KEY, STANDARD.encode(b"hunter2-short-key"));
        m.insert(REQUESTED_SCOPES, "openid email".into());
        let found = problems_of(&m);
        assert_eq!(
            found,
            [
                SeedError::Missing(CLIENT_SECRET),
                SeedError::Insecure(AUTHORIZE_URL),
                SeedError::NotUrl(TOKEN_URL),
                SeedError::KeyTooShort(COOKIE_KEY, 17),
                SeedError::ScopeWhitespace
            ]
        );
        for e in found {
            let text = e.to_string();
            assert!(!text.contains("hunter2") && !text.contains("id.example.com"), "{text}");
        }
    }

    #[test]
    fn disable_auth_requires_nothing_but_checks_what_is_there() {
        let m = BTreeMap::from([(DISABLE_AUTH, "TRUE".to_owned()), (COOKIE_KEY, key(10))]);
        assert_eq!(problems_of(&m), [SeedError::KeyTooShort(COOKIE_KEY, 10)]);
        let m = BTreeMap::from([(DISABLE_AUTH, "sometimes".to_owned())]);
        assert!(problems_of(&m).contains(&SeedError::NotBoolean));
        assert!(problems_of(&m).contains(&SeedError::Missing(CLIENT_ID)), "an unreadable DISABLE_AUTH is not off");
    }

    #[test]
    fn the_callback_gives_the_external_url() {
        let ext = |v: &str| external_url_of_callback(v).map(|u| u.to_string());
        assert_eq!(ext("https://data.example.com/oauth2/callback"), Ok("https://data.example.com/".into()));
        assert_eq!(ext("https://example.com/grafana/oauth2/callback"), Ok("https://example.com/grafana".into()));
        assert_eq!(ext("http://127.0.0.1:4180/oauth2/callback"), Ok("http://127.0.0.1:4180/".into()));
        // The Foxglove data loader's own path is not the gateway's.
        assert_eq!(ext("https://data.example.com/v1/login/callback"), Err(SeedError::CallbackPath));
        assert_eq!(ext("https://data.example.com/oauth2/callback?x=1"), Err(SeedError::CallbackPath));
        assert_eq!(ext("http://data.example.com/oauth2/callback"), Err(SeedError::Insecure(CALLBACK_URL)));
    }

    #[test]
    fn scopes_are_comma_separated_both_ways() {
        let scopes = parse_scopes(" read:org ,user:email,").unwrap();
        assert_eq!(scopes, ["read:org", "user:email"]);
        assert_eq!(join_scopes(&scopes), "read:org,user:email");
        assert_eq!(parse_scopes("openid email"), Err(SeedError::ScopeWhitespace));
    }

    #[test]
    fn cookie_keys_in_any_base64_alphabet() {
        let raw: Vec<u8> = (0..64).collect();
        assert_eq!(check_cookie_key(COOKIE_KEY, &STANDARD.encode(&raw)), Ok(()));
        assert_eq!(check_cookie_key(COOKIE_KEY, &URL_SAFE_NO_PAD.encode(&raw)), Ok(()));
        assert_eq!(check_cookie_key(COOKIE_KEY, &key(63)), Err(SeedError::KeyTooShort(COOKIE_KEY, 63)));
        assert_eq!(check_cookie_key(COOKIE_KEY, "not base64!"), Err(SeedError::KeyNotBase64(COOKIE_KEY)));
    }
}
