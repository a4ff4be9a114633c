//! The checks every `gateway.yaml` must pass, shared by the gateway (which
//! refuses to start on a config that fails them) and the controller (which
//! refuses to write one). Pure: the first problem, as a sentence with no
//! secret in it.

use url::Url;

use super::config::{Authentication, GatewayConfig};
use super::rules::open_to_everyone;
use crate::access::is_valid_domain_pattern;

/// `Ok` when `config` is one a gateway can run, else the first problem.
pub fn check(config: &GatewayConfig) -> Result<(), String> {
    let enabled = config.authentication == Authentication::Enabled;
    if config.session.cookie_name.is_empty()
        || !config.session.cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(format!("cookie name {:?} must be non-empty [A-Za-z0-9_.-]", config.session.cookie_name));
    }
    if config.session.ttl_seconds == 0 {
        return Err("the session lifetime (ttlSeconds) must be at least 1 second".into());
    }
    if let Some(domain) = &config.session.cookie_domain
        && !is_valid_domain_pattern(domain)
    {
        // The value itself may be what breaks a header or a log line.
        return Err("the cookie domain must be a bare hostname such as example.com or .example.com".into());
    }
    if enabled {
        if config.providers.is_empty() {
            return Err("authentication is enabled but no provider is configured".into());
        }
        for p in &config.providers {
            let public = p.provider_type.is_public(p.issuer_url.as_ref().and_then(Url::host_str));
            if open_to_everyone(public, &p.filters, &config.access, config.allow_all_users) {
                return Err(format!(
                    "provider {:?} ({}) is open to anyone with an account and neither it nor the policy restricts access; \
                     restrict access or set allowAllUsers explicitly",
                    p.name, p.provider_type
                ));
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for p in &config.providers {
        if !names.insert(p.name.as_str()) {
            return Err(format!("provider name {:?} is used twice", p.name));
        }
    }
    if config.forward_auth.as_ref().is_some_and(|f| f.trusted_proxies.is_empty()) {
        return Err("forwardAuth.trustedProxies must name at least one proxy".into());
    }
    if let Some(bad) =
        config.forward_auth.iter().flat_map(|f| &f.trusted_proxies).find(|c| c.parse::<ipnet::IpNet>().is_err())
    {
        return Err(format!("forwardAuth.trustedProxies entry {bad:?} is not a CIDR"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> GatewayConfig {
        GatewayConfig::from_yaml(&format!(
            "externalUrl: https://app.example.com\nupstream: http://app:80\nproviders:\n- {{name: corp, type: oidc, clientId: c, clientSecret: s, issuerUrl: 'https://id.corp', authorizeUrl: 'https://id.corp/a', tokenUrl: 'https://id.corp/t', scopes: [openid]}}\nsession: {{cookieName: _a, ttlSeconds: 60, keys: [k]}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_sound_config_passes() {
        assert_eq!(check(&config("")), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let mut c = config("");
        c.session.cookie_name = "a b".into();
        assert!(check(&c).unwrap_err().contains("cookie name"));
        let mut c = config("");
        c.session.ttl_seconds = 0;
        assert!(check(&c).unwrap_err().contains("lifetime"));
        let mut c = config("");
        c.session.cookie_domain = Some("https://x".into());
        assert!(check(&c).unwrap_err().contains("cookie domain"));
        let mut c = config("");
        c.providers.push(c.providers[0].clone());
        assert!(check(&c).unwrap_err().contains("used twice"));
        let mut c = config("");
        c.providers[0].provider_type = crate::api::ProviderType::Github;
        assert!(check(&c).unwrap_err().contains("open to anyone"), "closed by default");
        let c = config("forwardAuth: {trustedProxies: []}\n");
        assert!(check(&c).unwrap_err().contains("at least one proxy"));
        let c = config("forwardAuth: {trustedProxies: [10.0.0.0/33]}\n");
        assert!(check(&c).unwrap_err().contains("not a CIDR"));
    }
}
