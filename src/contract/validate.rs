//! The checks every `gateway.yaml` must pass, shared by the gateway (which
//! refuses to start on a config that fails them) and the controller (which
//! refuses to write one). Pure: the first problem, as a sentence with no
//! secret in it.

use url::Url;

use super::config::{Authentication, GatewayConfig};
use super::routes::TlsConfig;
use super::rules::{ambiguous_routes, open_to_everyone, reserved_token_param};
use super::session::{RedisConfig, StoreConfig};
use crate::access::is_valid_domain_pattern;
use crate::idp::is_secure_url;

/// Whether `pem` holds at least one certificate and nothing unparsable.
pub fn is_certificates(pem: &str) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes()).peekable();
    certs.peek().is_some() && certs.all(|c| c.is_ok())
}

/// Whether `pem` holds a private key.
pub fn is_private_key(pem: &str) -> bool {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).is_ok()
}

/// The first problem of TLS settings towards `what`, whose URL is `url`.
fn tls_problem(what: &str, url: &Url, tls: &TlsConfig) -> Option<String> {
    if url.scheme() != "https" {
        return Some(format!("{what}: tls settings need an https:// upstream"));
    }
    if tls.insecure_skip_verify && tls.ca_pem.is_some() {
        return Some(format!("{what}: insecureSkipVerify and a CA bundle exclude each other"));
    }
    if tls.ca_pem.as_deref().is_some_and(|p| !is_certificates(p)) {
        return Some(format!("{what}: the CA bundle holds no PEM certificate"));
    }
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (None, None) => None,
        (Some(cert), Some(key)) if is_certificates(cert) && is_private_key(key.expose()) => None,
        (Some(_), Some(_)) => Some(format!("{what}: the client certificate or its key is not PEM")),
        _ => Some(format!("{what}: a client certificate needs both its certificate and its key")),
    }
}

/// Whether `path` means the same to the gateway and every upstream: it
/// starts with `/` and has no dot segment (in any encoding) and no empty
/// segment. Route prefixes and public paths must be such paths.
fn is_matchable_path(path: &str) -> bool {
    path.starts_with('/') && !crate::access::has_dot_segment(path) && !path.contains("//")
}

/// The first problem of the routes, public paths and upstream TLS of `config`.
fn routes_problem(config: &GatewayConfig) -> Option<String> {
    if let (Some(url), Some(tls)) = (&config.upstream, &config.upstream_tls)
        && let Some(p) = tls_problem("upstream", url, tls)
    {
        return Some(p);
    }
    if config.public_paths.iter().any(|p| p.trim_end_matches('/').is_empty()) {
        return Some("a public path of '/' opens everything: set authentication: Disabled instead".into());
    }
    if let Some(bad) = config.public_paths.iter().find(|p| !is_matchable_path(p)) {
        return Some(format!("public path {bad:?} must start with '/' and have no dot or empty segment"));
    }
    for r in &config.routes {
        let at = format!("route {:?}", r.path_prefix);
        if !is_matchable_path(&r.path_prefix) {
            return Some(format!("{at}: pathPrefix must start with '/' and have no dot or empty segment"));
        }
        if !matches!(r.upstream.scheme(), "http" | "https") {
            return Some(format!("{at}: the upstream must be http:// or https://"));
        }
        if let Some(p) = r.tls.as_ref().and_then(|t| tls_problem(&at, &r.upstream, t)) {
            return Some(p);
        }
        if let Some(t) = &r.token_auth {
            if !is_secure_url(t.token_url.as_str()) {
                return Some(format!("{at}: tokenAuth.tokenUrl must be https:// (http:// only for loopback hosts)"));
            }
            if let Some(p) = reserved_token_param(t.params.keys()) {
                return Some(format!("{at}: tokenAuth.params may not set {p:?}"));
            }
        }
    }
    if let Some((a, b)) = ambiguous_routes(config.routes.iter().map(|r| (r.path_prefix.as_str(), r.methods.as_slice())))
    {
        return Some(format!("routes {a:?} and {b:?} serve the same path prefix for the same methods"));
    }
    config
        .providers
        .iter()
        .find(|p| p.ca_pem.as_deref().is_some_and(|pem| !is_certificates(pem)))
        .map(|p| format!("provider {:?}: the CA bundle holds no PEM certificate", p.name))
}

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
    if let StoreConfig::Redis(redis) = &config.session.store
        && let Some(problem) = redis_problem(redis)
    {
        return Err(format!("session.store: {problem}"));
    }
    routes_problem(config).map_or(Ok(()), Err)
}

/// What is wrong with a Redis store's settings, if anything. Values never
/// appear (an address may be what breaks a log line).
pub fn redis_problem(redis: &RedisConfig) -> Option<String> {
    let host_port = |a: &String| {
        a.rsplit_once(':').is_some_and(|(host, port)| {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok()
        })
    };
    match &redis.sentinel_master {
        None if redis.addresses.len() != 1 => return Some("a standalone Redis needs exactly one address".into()),
        Some(_) if redis.addresses.is_empty() => return Some("Sentinel needs at least one sentinel address".into()),
        Some(master) if master.trim().is_empty() => return Some("Sentinel needs the primary's (master) name".into()),
        _ => {}
    }
    if !redis.addresses.iter().all(host_port) {
        return Some("every Redis address must be host:port".into());
    }
    if redis.tls.as_ref().and_then(|t| t.ca_pem.as_deref()).is_some_and(|pem| !is_certificates(pem)) {
        return Some("the Redis CA bundle holds no PEM certificate".into());
    }
    if redis.key_prefix.as_deref().is_some_and(str::is_empty) {
        return Some("the Redis key prefix, when set, must not be empty".into());
    }
    None
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
    fn public_paths_and_route_prefixes_must_mean_one_thing() {
        assert!(check(&config("publicPaths: [/]")).unwrap_err().contains("opens everything"));
        assert!(check(&config("publicPaths: ['/a/../b']")).unwrap_err().contains("public path"));
        assert!(check(&config("publicPaths: ['//a']")).unwrap_err().contains("public path"));
        let route = |p: &str| format!("routes: [{{pathPrefix: '{p}', upstream: 'http://api:80'}}]");
        assert!(check(&config(&route("/api/%2e%2e/x"))).unwrap_err().contains("pathPrefix must start"));
        assert!(check(&config(&route("api"))).unwrap_err().contains("pathPrefix must start"));
        assert_eq!(check(&config(&route("/api/"))), Ok(()));
        assert_eq!(check(&config("publicPaths: [/healthz, /static/]")), Ok(()));
    }

    #[test]
    fn a_redis_store_needs_usable_addresses() {
        let redis = |fields: &str| {
            let mut c = config("");
            c.session.store = serde_saphyr::from_str(&format!("{{type: redis, {fields}}}")).expect("a store");
            check(&c)
        };
        assert_eq!(redis("addresses: ['redis:6379']"), Ok(()));
        assert_eq!(redis("addresses: ['[::1]:6379', 's2:26379'], sentinelMaster: m"), Ok(()));
        for (bad, why) in [
            ("addresses: []", "exactly one address"),
            ("addresses: ['a:1', 'b:2']", "exactly one address"),
            ("addresses: [], sentinelMaster: m", "at least one sentinel"),
            ("addresses: ['s:26379'], sentinelMaster: ' '", "master"),
            ("addresses: ['redis']", "host:port"),
            ("addresses: ['redis:99999']", "host:port"),
            ("addresses: ['r:1'], tls: {caPem: nope}", "PEM"),
            ("addresses: ['r:1'], keyPrefix: ''", "prefix"),
        ] {
            let e = redis(bad).unwrap_err();
            assert!(e.starts_with("session.store: ") && e.contains(why), "{bad}: {e}");
        }
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

    #[test]
    fn routes_and_tls_are_checked() {
        let issued = rcgen::generate_simple_self_signed(vec!["api.test".to_owned()]).unwrap();
        let (cert, key) = (issued.cert.pem(), issued.signing_key.serialize_pem());
        assert!(is_certificates(&cert) && is_certificates(&format!("{cert}{cert}")));
        assert!(!is_certificates("") && !is_certificates("junk") && !is_certificates(&key));
        assert!(is_private_key(&key) && !is_private_key(&cert));

        let route =
            |extra: &str| config(&format!("routes:\n- {{pathPrefix: /api, upstream: 'https://api:443'{extra}}}\n"));
        assert_eq!(check(&route("")), Ok(()));
        let mut c = route("");
        c.routes[0].tls = Some(TlsConfig { ca_pem: Some(cert.clone()), ..TlsConfig::default() });
        assert_eq!(check(&c), Ok(()));
        c.routes[0].tls = Some(TlsConfig { ca_pem: Some("junk".into()), ..TlsConfig::default() });
        assert!(check(&c).unwrap_err().contains("CA bundle holds no PEM"), "{c:?}");
        c.routes[0].tls = Some(TlsConfig { client_cert_pem: Some(cert.clone()), ..TlsConfig::default() });
        assert!(check(&c).unwrap_err().contains("both its certificate and its key"));
        let pair = TlsConfig {
            client_cert_pem: Some(cert.clone()),
            client_key_pem: Some(crate::contract::config::Redacted::new(key.clone())),
            ..TlsConfig::default()
        };
        c.routes[0].tls = Some(pair.clone());
        assert_eq!(check(&c), Ok(()));
        c.routes[0].upstream = Url::parse("http://api:80").unwrap();
        assert!(check(&c).unwrap_err().contains("need an https:// upstream"));
        let token = ", tokenAuth: {tokenUrl: 'http://id.corp/token', clientId: c, clientSecret: s}";
        assert!(check(&route(token)).unwrap_err().contains("tokenUrl must be https://"));
        let token =
            ", tokenAuth: {tokenUrl: 'https://id.corp/token', clientId: c, clientSecret: s, params: {client_id: x}}";
        assert!(check(&route(token)).unwrap_err().contains("may not set \"client_id\""));
        let twice = config(
            "routes:\n- {pathPrefix: /api, upstream: 'http://a'}\n- {pathPrefix: /api/, upstream: 'http://b'}\n",
        );
        assert!(check(&twice).unwrap_err().contains("serve the same path prefix"));
        let mut c = config("");
        c.providers[0].ca_pem = Some("junk".into());
        assert!(check(&c).unwrap_err().contains("provider \"corp\": the CA bundle"));
    }
}
