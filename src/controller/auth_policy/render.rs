//! From a policy, its resolved providers and the values of the Secrets
//! and ConfigMaps it names to the gateway's config. Pure: every value was
//! read before (see [`crate::controller::cache::Caches::resolve`]).

use url::Url;

pub use super::render_error::RenderError;
use super::render_error::url;
use super::upstreams;
use crate::api::{AuthPolicy, IdentityProvider};
use crate::contract::config::{GatewayConfig, ProviderConfig, Redacted, SessionConfig, Timeouts, policy_cookie_name};
use crate::contract::rules::parse_duration_secs;
use crate::controller::refs::Values;

/// A provider the policy may use: Ready, with its client secret in hand.
pub struct ResolvedProvider {
    /// The IdentityProvider.
    pub idp: std::sync::Arc<IdentityProvider>,
    /// Its client secret.
    pub client_secret: String,
    /// The PEM of its `caBundle`, if it has one.
    pub ca_pem: Option<String>,
}

fn opt_url(field: &'static str, value: Option<&String>) -> Result<Option<Url>, RenderError> {
    value.map(|v| url(field, v)).transpose()
}

/// Renders the complete gateway config.
///
/// `values` holds every key [`crate::controller::refs::of_policy`] names;
/// `upstream` is `spec.upstream` as a URL.
pub fn gateway_config(
    policy: &AuthPolicy,
    upstream: Option<&str>,
    providers: &[ResolvedProvider],
    values: &Values,
    keys: Vec<Redacted>,
) -> Result<GatewayConfig, RenderError> {
    let spec = &policy.spec;
    let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(bad) = spec.forward.trusted_proxies.iter().find(|c| c.parse::<ipnet::IpNet>().is_err()) {
        return Err(RenderError::BadTrustedProxy(bad.clone()));
    }
    let mut timeouts = Timeouts::default();
    if let Some(t) = spec.upstream.as_ref().and_then(|u| u.timeout.as_ref()) {
        timeouts.upstream_seconds = parse_duration_secs(t).ok_or_else(|| RenderError::BadTimeout(t.clone()))?;
    }
    let connect = spec.upstream.as_ref().and_then(|u| u.connect_timeout.as_ref());
    if let Some(s) = upstreams::seconds("upstream.connectTimeout".into(), connect)? {
        timeouts.connect_seconds = s;
    }
    let upstream_tls = spec
        .upstream
        .as_ref()
        .and_then(|u| u.tls.as_ref())
        .map(|t| upstreams::tls(t, "upstream.tls", values))
        .transpose()?;
    let routes = upstreams::routes(spec, namespace, values)?;
    let cookie_name = match &spec.session.cookie_name {
        Some(name) => name.clone(),
        None => policy_cookie_name(namespace, policy.metadata.name.as_deref().unwrap_or_default()),
    };
    let providers = providers
        .iter()
        .map(|p| {
            let name = kube::ResourceExt::name_any(p.idp.as_ref());
            let ep = p
                .idp
                .status
                .as_ref()
                .and_then(|s| s.endpoints.as_ref())
                .ok_or_else(|| RenderError::NoEndpoints(name.clone()))?;
            Ok(ProviderConfig {
                name,
                provider_type: p.idp.spec.provider_type,
                display_name: p.idp.spec.display_name.clone(),
                client_id: p.idp.spec.client_id.clone(),
                client_secret: Redacted::new(p.client_secret.clone()),
                issuer_url: opt_url("issuer", ep.issuer.as_ref())?,
                authorize_url: url("authorizeUrl", &ep.authorize_url)?,
                token_url: url("tokenUrl", &ep.token_url)?,
                userinfo_url: opt_url("userinfoUrl", ep.userinfo_url.as_ref())?,
                jwks_url: opt_url("jwksUrl", ep.jwks_url.as_ref())?,
                api_url: opt_url("apiUrl", ep.api_url.as_ref())?,
                revocation_url: opt_url("revocationUrl", ep.revocation_url.as_ref())?,
                end_session_url: opt_url("endSessionUrl", ep.end_session_url.as_ref())?
                    .filter(|_| spec.sign_out.end_provider_session),
                scopes: p.idp.spec.effective_scopes(),
                claims: p.idp.spec.claims.clone().unwrap_or_default(),
                filters: p.idp.spec.allow.clone(),
                ca_pem: p.ca_pem.clone(),
                email_verified: p.idp.spec.email_verified,
            })
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    Ok(GatewayConfig {
        listen: std::net::SocketAddr::from(([0, 0, 0, 0], crate::contract::config::DEFAULT_PORT)),
        external_url: url("externalUrl", &spec.external_url)?,
        upstream: upstream.map(|u| url("upstream", u)).transpose()?,
        authentication: spec.authentication,
        providers,
        access: spec.access.allow.clone(),
        allow_all_users: spec.access.allow_all_users,
        session: SessionConfig {
            cookie_name,
            cookie_domain: spec.session.cookie_domain.clone(),
            ttl_seconds: parse_duration_secs(&spec.session.ttl)
                .ok_or_else(|| RenderError::BadTtl(spec.session.ttl.clone()))?,
            keys,
            not_before: spec.session.not_before.as_ref().map_or(0, |t| u64::try_from(t.0.as_second()).unwrap_or(0)),
            revalidate_seconds: match &spec.session.revalidate {
                Some(r) => parse_duration_secs(r)
                    .ok_or_else(|| RenderError::BadDuration { field: "session.revalidate".into(), value: r.clone() })?,
                None => crate::contract::session::DEFAULT_REVALIDATE_SECONDS,
            },
            store: super::session_store::store(&spec.session, values)?,
            ..SessionConfig::default()
        },
        forward: spec.forward.clone(),
        ops_listen: std::net::SocketAddr::from(([0, 0, 0, 0], crate::contract::config::DEFAULT_OPS_PORT)),
        timeouts,
        forward_auth: spec.forward_auth.clone(),
        upstream_tls,
        routes,
        public_paths: spec.public_paths.clone(),
        cors: spec.cors.clone(),
        machine: crate::contract::machine::MachineConfig::default(),
        access_log: spec.gateway.as_ref().is_some_and(|g| g.access_log),
        service_name: policy.metadata.name.clone(),
        branding: spec.branding.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ns: &str, name: &str, spec: serde_json::Value) -> AuthPolicy {
        let mut base = serde_json::json!({
            "upstream": {"url": "http://app:8080"},
            "externalUrl": "https://app.example.com",
            "providers": ["corp"],
        });
        base.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
        let mut p = AuthPolicy::new(name, serde_json::from_value(base).unwrap());
        p.metadata.namespace = Some(ns.into());
        p
    }

    #[test]
    fn cookie_names_default_per_policy_and_can_be_chosen() {
        let render =
            |p: &AuthPolicy| gateway_config(p, Some("http://app:8080"), &[], &Values::default(), Vec::new()).unwrap();
        let a = render(&policy("team-a", "grafana", serde_json::json!({})));
        let b = render(&policy("team-b", "grafana", serde_json::json!({})));
        assert_ne!(a.session.cookie_name, b.session.cookie_name);
        assert_eq!(a.session.cookie_name, policy_cookie_name("team-a", "grafana"));
        let chosen = render(&policy("team-a", "grafana", serde_json::json!({"session": {"cookieName": "_mine"}})));
        assert_eq!(chosen.session.cookie_name, "_mine");
    }

    #[test]
    fn timeouts_and_trusted_proxies_are_checked() {
        let p = policy("ns", "p", serde_json::json!({"upstream": {"url": "http://app:8080", "timeout": "2m"}}));
        assert_eq!(
            gateway_config(&p, Some("http://app:8080"), &[], &Values::default(), Vec::new())
                .unwrap()
                .timeouts
                .upstream_seconds,
            120
        );
        let bad = policy("ns", "p", serde_json::json!({"forward": {"trustedProxies": ["10.0.0.0/8", "10.0.0.1/40"]}}));
        let err = gateway_config(&bad, Some("http://app:8080"), &[], &Values::default(), Vec::new()).unwrap_err();
        assert!(matches!(err, RenderError::BadTrustedProxy(ref c) if c == "10.0.0.1/40"), "{err}");
    }

    #[test]
    fn the_end_session_endpoint_reaches_the_gateway_unless_sign_out_keeps_the_provider_session() {
        let mut idp = crate::controller::fixtures::objects::provider();
        let endpoints = idp.status.as_mut().unwrap().endpoints.as_mut().unwrap();
        endpoints.revocation_url = Some("https://id.example.com/revoke".into());
        endpoints.end_session_url = Some("https://id.example.com/logout".into());
        let resolved = [ResolvedProvider { idp: std::sync::Arc::new(idp), client_secret: "s".into(), ca_pem: None }];
        let render = |p: &AuthPolicy| {
            gateway_config(p, Some("http://app:8080"), &resolved, &Values::default(), Vec::new()).unwrap().providers
        };
        let default = render(&policy("ns", "p", serde_json::json!({})));
        assert_eq!(default[0].end_session_url.as_ref().map(Url::as_str), Some("https://id.example.com/logout"));
        assert_eq!(default[0].revocation_url.as_ref().map(Url::as_str), Some("https://id.example.com/revoke"));
        let kept = render(&policy("ns", "p", serde_json::json!({"signOut": {"endProviderSession": false}})));
        assert_eq!(kept[0].end_session_url, None);
        assert!(kept[0].revocation_url.is_some(), "revocation does not depend on it");
    }

    #[test]
    fn display_name_branding_and_service_name_reach_gateway_yaml_and_reload_in_place() {
        let mut idp = crate::controller::fixtures::objects::provider();
        idp.spec.display_name = Some("Corp SSO".into());
        let resolved = [ResolvedProvider { idp: std::sync::Arc::new(idp), client_secret: "s".into(), ca_pem: None }];
        let branding = serde_json::json!({"title": "Grafana", "logoUrl": "https://cdn.example.com/l.png", "footer": "<b>f</b>", "contact": "mailto:a@example.com"});
        let render = |p: &AuthPolicy| {
            gateway_config(p, Some("http://app:8080"), &resolved, &Values::default(), Vec::new()).unwrap()
        };
        let plain = render(&policy("ns", "grafana", serde_json::json!({})));
        let branded = render(&policy("ns", "grafana", serde_json::json!({"branding": branding})));
        assert_eq!(branded.providers[0].display_name.as_deref(), Some("Corp SSO"));
        assert_eq!(branded.service_name.as_deref(), Some("grafana"));
        let b = branded.branding.as_ref().expect("branding");
        assert_eq!((b.title.as_deref(), b.footer.as_deref()), (Some("Grafana"), Some("<b>f</b>")));
        assert_eq!(b.logo_url.as_deref(), Some("https://cdn.example.com/l.png"));
        assert_eq!(b.contact.as_deref(), Some("mailto:a@example.com"));
        let yaml = branded.to_yaml().unwrap();
        assert_eq!(GatewayConfig::from_yaml(&yaml).unwrap(), branded, "round trip through gateway.yaml");
        assert!(yaml.contains("displayName: Corp SSO") && yaml.contains("logoUrl:"), "{yaml}");
        assert!(plain.reloads_into(&branded), "branding changes do not roll the pods");
    }
}
