//! The gateway run from an `auth-credentials` Secret in the Foxglove
//! remote-data-loader format, taken with `envFrom` (key rules in
//! [`crate::contract::seed`]). Each key fills the setting it carries when
//! neither a flag nor an `AUTHGATE_*` variable gave it:
//!
//! **flags > `AUTHGATE_*` > seed keys > `gateway.yaml`.**
//!
//! | key | setting |
//! | --- | --- |
//! | `OAUTH_CLIENT_ID`, `OAUTH_CLIENT_SECRET` | the provider's client |
//! | `OAUTH_AUTHORIZE_URL`, `OAUTH_TOKEN_URL` | its endpoints (they override discovery) |
//! | `OAUTH_REQUESTED_SCOPES` | its scopes (comma-separated) |
//! | `OAUTH_CALLBACK_URL` | the external URL: the callback minus `/oauth2/callback` |
//! | `COOKIE_ENCRYPTION_KEY` (+ `_PREVIOUS`) | the cookie keys |
//! | `DISABLE_AUTH=true` | authentication `Disabled`, logged as a warning |
//!
//! The format names no kind of provider and no issuer. The kind comes from
//! `AUTHGATE_PROVIDER_TYPE`, or from the authorize URL's host when it is
//! github.com, gitlab.com or accounts.google.com; an `oidc` provider also
//! needs `AUTHGATE_PROVIDER_ISSUER_URL`, because ID tokens are verified
//! against the issuer's keys. With a config file and no type, the keys
//! patch the file's one provider instead. The upstream and who may enter
//! are never in the format: `AUTHGATE_UPSTREAM` and `AUTHGATE_ACCESS` (or
//! the file), and the closed-by-default rule still applies.

use url::Url;

use super::GatewaySettings;
use crate::contract::config::{Authentication, ProviderType, Redacted};
use crate::contract::seed::{self, SeedError};
use crate::gateway::error::Error;

fn bad(e: SeedError) -> Error {
    Error::Config(e.to_string())
}

/// Fills `settings` from the seed-format variables `env` returns (`None`
/// for unset). Values are trimmed; an empty one counts as unset.
pub fn overlay(settings: &mut GatewaySettings, env: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
    let get = |key: &str| env(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut applied: Vec<&'static str> = Vec::new();
    if let Some(value) = get(seed::DISABLE_AUTH) {
        disable_auth(settings, &value)?;
    }
    if let Some(callback) = get(seed::CALLBACK_URL)
        && external_url(settings, &callback)?
    {
        applied.push(seed::CALLBACK_URL);
    }
    if settings.cookie_keys.is_empty()
        && let Some(key) = get(seed::COOKIE_KEY)
    {
        seed::check_cookie_key(seed::COOKIE_KEY, &key).map_err(bad)?;
        settings.cookie_keys.push(Redacted::new(key));
        applied.push(seed::COOKIE_KEY);
        if let Some(previous) = get(seed::PREVIOUS_COOKIE_KEY) {
            seed::check_cookie_key(seed::PREVIOUS_COOKIE_KEY, &previous).map_err(bad)?;
            settings.cookie_keys.push(Redacted::new(previous));
            applied.push(seed::PREVIOUS_COOKIE_KEY);
        }
    }
    // Sign-in turned off needs no provider: its keys may stay in the Secret.
    if settings.authentication != Some(Authentication::Disabled) {
        provider(settings, &get, &mut applied)?;
    }
    if !applied.is_empty() {
        tracing::info!(keys = ?applied, "settings taken from the auth-credentials variables (seed format)");
    }
    Ok(())
}

fn disable_auth(settings: &mut GatewaySettings, value: &str) -> Result<(), Error> {
    if !seed::parse_disable_auth(value).map_err(bad)? {
        return Ok(());
    }
    match settings.authentication {
        None => {
            settings.authentication = Some(Authentication::Disabled);
            tracing::warn!(
                "DISABLE_AUTH=true: authentication is disabled, every request reaches the upstream without sign-in; unset DISABLE_AUTH to require it"
            );
        }
        Some(Authentication::Enabled) => tracing::warn!(
            "DISABLE_AUTH=true is ignored: AUTHGATE_AUTHENTICATION (or --authentication) says Enabled, and it wins"
        ),
        Some(Authentication::Disabled) => {}
    }
    Ok(())
}

/// Derives the external URL from the callback. An explicit external URL
/// must agree with it, or the provider would redirect where the gateway
/// does not listen. `true` when the callback set it.
fn external_url(settings: &mut GatewaySettings, callback: &str) -> Result<bool, Error> {
    let derived = seed::external_url_of_callback(callback).map_err(bad)?;
    match &settings.external_url {
        None => {
            settings.external_url = Some(derived);
            Ok(true)
        }
        Some(explicit) if callback_of(explicit) == callback_of(&derived) => Ok(false),
        Some(_) => Err(Error::Config(format!(
            "{} is not AUTHGATE_EXTERNAL_URL followed by {}: the provider would redirect where the gateway does not listen; \
             make them agree, or unset AUTHGATE_EXTERNAL_URL to derive it from {}",
            seed::CALLBACK_URL,
            seed::CALLBACK_PATH,
            seed::CALLBACK_URL
        ))),
    }
}

/// The gateway's callback under `external` (as `GatewayConfig::callback_url`).
fn callback_of(external: &Url) -> String {
    let mut url = external.clone();
    url.set_path(&format!("{}{}", external.path().trim_end_matches('/'), seed::CALLBACK_PATH));
    url.set_query(None);
    url.set_fragment(None);
    url.into()
}

fn provider(
    settings: &mut GatewaySettings,
    get: &impl Fn(&str) -> Option<String>,
    applied: &mut Vec<&'static str>,
) -> Result<(), Error> {
    let p = &mut settings.provider;
    let present = [seed::CLIENT_ID, seed::CLIENT_SECRET, seed::AUTHORIZE_URL, seed::TOKEN_URL, seed::REQUESTED_SCOPES]
        .into_iter()
        .any(|k| get(k).is_some());
    if !present {
        return Ok(());
    }
    let mut take = |key: &'static str, slot_is_empty: bool| {
        let value = get(key).filter(|_| slot_is_empty);
        if value.is_some() {
            applied.push(key);
        }
        value
    };
    if let Some(v) = take(seed::CLIENT_ID, p.client_id.is_none()) {
        p.client_id = Some(v);
    }
    if let Some(v) = take(seed::CLIENT_SECRET, p.client_secret.is_none()) {
        p.client_secret = Some(Redacted::new(v));
    }
    if let Some(v) = take(seed::AUTHORIZE_URL, p.authorize_url.is_none()) {
        p.authorize_url = Some(seed::parse_endpoint(seed::AUTHORIZE_URL, &v).map_err(bad)?.into());
    }
    if let Some(v) = take(seed::TOKEN_URL, p.token_url.is_none()) {
        p.token_url = Some(seed::parse_endpoint(seed::TOKEN_URL, &v).map_err(bad)?.into());
    }
    if let Some(v) = take(seed::REQUESTED_SCOPES, p.scopes.is_empty()) {
        p.scopes = seed::parse_scopes(&v).map_err(bad)?;
    }
    if settings.config.is_some() && p.provider_type.is_none() {
        // The keys patch the file's provider, which knows its kind.
        return Ok(());
    }
    if p.provider_type.is_none() {
        p.provider_type = Some(inferred_type(p.authorize_url.as_deref()).ok_or_else(|| {
            Error::Config(format!(
                "the auth-credentials variables say where to sign in but not what kind of provider {} is: \
                 set AUTHGATE_PROVIDER_TYPE (oidc with AUTHGATE_PROVIDER_ISSUER_URL, github, gitlab or google)",
                seed::AUTHORIZE_URL
            ))
        })?);
    }
    if p.provider_type == Some(ProviderType::Oidc) && p.issuer_url.is_none() {
        return Err(Error::Config(format!(
            "an oidc provider needs AUTHGATE_PROVIDER_ISSUER_URL: the auth-credentials format has no issuer, and ID tokens \
             are verified against the issuer's signing keys ({} and {} still override the endpoints it announces)",
            seed::AUTHORIZE_URL,
            seed::TOKEN_URL
        )));
    }
    if settings.cookie_keys.is_empty() && settings.config.is_none() {
        return Err(bad(SeedError::Missing(seed::COOKIE_KEY)));
    }
    Ok(())
}

/// The kind of a provider known by its authorization endpoint's host.
/// Only public services whose kind the host settles; anything else must
/// be named.
fn inferred_type(authorize_url: Option<&str>) -> Option<ProviderType> {
    let url = Url::parse(authorize_url?).ok()?;
    match url.host_str()?.to_ascii_lowercase().as_str() {
        "github.com" => Some(ProviderType::Github),
        "gitlab.com" => Some(ProviderType::Gitlab),
        "accounts.google.com" => Some(ProviderType::Google),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::*;
    use crate::gateway::settings::{GatewayArgs, merge};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GatewayArgs,
    }

    fn flags(argv: &[&str]) -> GatewaySettings {
        *Cli::parse_from(std::iter::once("gateway").chain(argv.iter().copied())).args.settings
    }

    fn key() -> String {
        crate::contract::keys::generate_cookie_key()
    }

    /// A Secret as written by hand from the Foxglove template.
    fn secret(cookie_key: &str) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("OAUTH_CLIENT_ID", "loader".to_owned()),
            ("OAUTH_CLIENT_SECRET", "hunter2-client-secret".to_owned()),
            ("OAUTH_AUTHORIZE_URL", "https://id.example.com/oauth/authorize".to_owned()),
            ("OAUTH_TOKEN_URL", "https://id.example.com/oauth/token".to_owned()),
            ("OAUTH_CALLBACK_URL", "https://data.example.com/oauth2/callback".to_owned()),
            ("COOKIE_ENCRYPTION_KEY", cookie_key.to_owned()),
            ("OAUTH_REQUESTED_SCOPES", "openid,email, profile".to_owned()),
        ])
    }

    fn apply(argv: &[&str], env: &BTreeMap<&'static str, String>) -> Result<GatewaySettings, Error> {
        let mut s = flags(argv);
        overlay(&mut s, |k| env.get(k).cloned()).map(|()| s)
    }

    const OIDC: [&str; 4] = ["--provider-type", "oidc", "--provider-issuer-url", "https://id.example.com/"];

    #[test]
    fn every_key_fills_its_setting() {
        let k = key();
        let s = apply(&OIDC, &secret(&k)).unwrap();
        assert_eq!(s.external_url.as_ref().map(Url::as_str), Some("https://data.example.com/"));
        assert_eq!(s.cookie_keys.iter().map(Redacted::expose).collect::<Vec<_>>(), [k.as_str()]);
        let p = &s.provider;
        assert_eq!(p.client_id.as_deref(), Some("loader"));
        assert_eq!(p.client_secret.as_ref().map(Redacted::expose), Some("hunter2-client-secret"));
        assert_eq!(p.authorize_url.as_deref(), Some("https://id.example.com/oauth/authorize"));
        assert_eq!(p.token_url.as_deref(), Some("https://id.example.com/oauth/token"));
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert!(!format!("{s:?}").contains("hunter2"), "the client secret stays redacted");
    }

    #[test]
    fn the_derived_external_url_serves_the_registered_callback() {
        for callback in ["https://data.example.com/oauth2/callback", "https://example.com/grafana/oauth2/callback"] {
            let mut env = BTreeMap::new();
            env.insert("OAUTH_CALLBACK_URL", callback.to_owned());
            let s = apply(&["--upstream", "http://app:8080"], &env).unwrap();
            let config = merge(None, &s, None).unwrap();
            assert_eq!(config.callback_url().as_str(), callback);
            assert_eq!(callback_of(&config.external_url), callback);
        }
    }

    #[test]
    fn authgate_settings_win_over_the_keys() {
        let mut argv = OIDC.to_vec();
        argv.extend(["--provider-client-id", "explicit", "--provider-scopes", "openid", "--cookie-keys", "k1"]);
        argv.extend(["--external-url", "https://data.example.com"]);
        let s = apply(&argv, &secret(&key())).unwrap();
        assert_eq!(s.provider.client_id.as_deref(), Some("explicit"));
        assert_eq!(s.provider.scopes, ["openid"]);
        assert_eq!(s.cookie_keys.iter().map(Redacted::expose).collect::<Vec<_>>(), ["k1"]);
        // ... and the secret the flags left unset still comes from the keys.
        assert_eq!(s.provider.client_secret.as_ref().map(Redacted::expose), Some("hunter2-client-secret"));
        let mut argv = OIDC.to_vec();
        argv.extend(["--external-url", "https://elsewhere.example.com"]);
        let err = apply(&argv, &secret(&key())).unwrap_err().to_string();
        assert!(err.contains("OAUTH_CALLBACK_URL is not AUTHGATE_EXTERNAL_URL"), "{err}");
    }

    #[test]
    fn the_kind_of_provider_is_named_or_settled_by_a_public_host() {
        let err = apply(&[], &secret(&key())).unwrap_err().to_string();
        assert!(err.contains("set AUTHGATE_PROVIDER_TYPE"), "{err}");
        let err = apply(&["--provider-type", "oidc"], &secret(&key())).unwrap_err().to_string();
        assert!(err.contains("needs AUTHGATE_PROVIDER_ISSUER_URL"), "{err}");
        let mut github = secret(&key());
        github.insert("OAUTH_AUTHORIZE_URL", "https://github.com/login/oauth/authorize".into());
        github.insert("OAUTH_TOKEN_URL", "https://github.com/login/oauth/access_token".into());
        assert_eq!(apply(&[], &github).unwrap().provider.provider_type, Some(ProviderType::Github));
        // With a config file the keys patch its provider; no kind needed.
        let s = apply(&["--config", "/etc/authgate/gateway.yaml"], &secret(&key())).unwrap();
        assert_eq!(s.provider.provider_type, None);
        assert_eq!(s.provider.client_id.as_deref(), Some("loader"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key_only() {
        let cases = [
            ("COOKIE_ENCRYPTION_KEY", "aHVudGVyMi1zaG9ydA==", "decodes to 13 bytes"),
            ("OAUTH_TOKEN_URL", "hunter2://", "must be https://"),
            ("OAUTH_AUTHORIZE_URL", "hunter2", "is not a URL"),
            ("OAUTH_CALLBACK_URL", "https://data.example.com/v1/login/callback", "followed by /oauth2/callback"),
            ("OAUTH_REQUESTED_SCOPES", "openid email", "comma-separated"),
            ("DISABLE_AUTH", "hunter2", "must be true or false"),
        ];
        for (name, value, expect) in cases {
            let mut env = secret(&key());
            env.insert(name, value.into());
            let err = apply(&OIDC, &env).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
            assert!(!err.contains("hunter2") && !err.contains("aHVudGVy"), "{name}: a value leaked: {err}");
        }
        let mut env = secret(&key());
        env.remove("COOKIE_ENCRYPTION_KEY");
        let err = apply(&OIDC, &env).unwrap_err().to_string();
        assert!(err.contains("COOKIE_ENCRYPTION_KEY is required"), "{err}");
    }

    #[test]
    fn disable_auth_turns_sign_in_off_unless_told_otherwise() {
        let mut env = secret(&key());
        env.insert("DISABLE_AUTH", "true".into());
        // No provider kind needed: the provider keys are not used.
        let s = apply(&[], &env).unwrap();
        assert_eq!(s.authentication, Some(Authentication::Disabled));
        assert_eq!(s.provider.client_id, None);
        let s = apply(&["--authentication", "enabled", "--provider-type", "github"], &env).unwrap();
        assert_eq!(s.authentication, Some(Authentication::Enabled), "the explicit setting wins");
        env.insert("DISABLE_AUTH", "false".into());
        assert_eq!(apply(&OIDC, &env).unwrap().authentication, None);
    }

    #[test]
    fn nothing_changes_without_the_keys() {
        let s = apply(&[], &BTreeMap::new()).unwrap();
        assert!(s.external_url.is_none() && s.cookie_keys.is_empty() && s.provider.client_id.is_none());
    }
}
