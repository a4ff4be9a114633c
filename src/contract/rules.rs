//! Rules the controller (reconciling a resource), `authgate check` (before
//! it reaches a cluster) and the gateway (at start) must apply identically.
//! Pure: no I/O, no Kubernetes client.

use url::Url;

use crate::api::{AllowList, AuthPolicySpec, Authentication, IdentityProviderSpec};

/// Closed by default: whether a provider would let in anyone with an
/// account — it is open to the public (github, google, gitlab.com) and
/// neither its own allow-list nor the policy's restricts who may enter —
/// without the policy saying `allowAllUsers` deliberately. Such a policy is
/// refused.
pub fn open_to_everyone(
    provider_is_public: bool,
    provider: &AllowList,
    policy: &AllowList,
    allow_all_users: bool,
) -> bool {
    provider_is_public && !allow_all_users && provider.is_empty() && policy.is_empty()
}

/// Whether anyone with an account at this provider could sign in.
pub fn is_public(spec: &IdentityProviderSpec) -> bool {
    let host = spec.issuer_url.as_deref().and_then(|i| Url::parse(i).ok());
    spec.provider_type.is_public(host.as_ref().and_then(Url::host_str))
}

/// Parses a duration such as `12h`, `1h30m` or `90s` into whole seconds;
/// zero and anything else is `None`.
pub fn parse_duration_secs(text: &str) -> Option<u64> {
    humantime::parse_duration(text).ok().map(|d| d.as_secs()).filter(|&s| s > 0)
}

/// What is wrong with a provider spec beyond its schema and CEL rules, for
/// a status message or `check`. Empty when nothing is.
pub fn provider_problems(spec: &IdentityProviderSpec) -> Vec<String> {
    spec.allow.problems()
}

/// Token request parameters that `tokenAuth.params` may not set: the
/// grant itself and what the typed fields already say.
pub const RESERVED_TOKEN_PARAMS: &[&str] =
    &["grant_type", "client_id", "client_secret", "scope", "audience", "resource"];

/// The first of `params` that is reserved (compared case-insensitively, as
/// some token endpoints do).
pub fn reserved_token_param<'a>(params: impl IntoIterator<Item = &'a String>) -> Option<&'a String> {
    params.into_iter().find(|p| RESERVED_TOKEN_PARAMS.iter().any(|r| p.eq_ignore_ascii_case(r)))
}

/// Two routes that would serve the same requests: the same path prefix
/// (ignoring a trailing `/`) with a method in common, where no methods
/// means every method. Returns both prefixes as written, first one first.
pub fn ambiguous_routes<'a>(routes: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Option<(String, String)> {
    let routes: Vec<(&str, &[String])> = routes.into_iter().collect();
    for (i, (a, am)) in routes.iter().enumerate() {
        for (b, bm) in &routes[i + 1..] {
            let overlap = am.is_empty() || bm.is_empty() || am.iter().any(|m| bm.contains(m));
            if a.trim_end_matches('/') == b.trim_end_matches('/') && overlap {
                return Some(((*a).to_owned(), (*b).to_owned()));
            }
        }
    }
    None
}

fn upstream_problems(field: &str, upstream: &crate::api::Upstream, problems: &mut Vec<String>) {
    for (name, value) in [("timeout", &upstream.timeout), ("connectTimeout", &upstream.connect_timeout)] {
        if let Some(t) = value
            && parse_duration_secs(t).is_none()
        {
            problems.push(format!("{field}.{name} {t:?} is not a duration such as 30s"));
        }
    }
}

/// What is wrong with a policy spec beyond its schema and CEL rules, for a
/// status message or `check`. Empty when nothing is.
pub fn policy_problems(spec: &AuthPolicySpec) -> Vec<String> {
    let mut problems = spec.access.allow.problems();
    if parse_duration_secs(&spec.session.ttl).is_none() {
        problems.push(format!("session.ttl {:?} is not a duration such as 12h", spec.session.ttl));
    }
    if let Some(u) = &spec.upstream {
        upstream_problems("upstream", u, &mut problems);
    }
    for route in &spec.routes {
        let at = format!("routes[{:?}]", route.path_prefix);
        upstream_problems(&format!("{at}.upstream"), &route.upstream, &mut problems);
        if let Some(p) = route.token_auth.as_ref().and_then(|t| reserved_token_param(t.params.keys())) {
            problems.push(format!(
                "{at}.tokenAuth.params may not set {p:?}: grant_type, client_id, client_secret, scope, audience and resource come from the tokenAuth fields"
            ));
        }
    }
    if let Some((a, b)) = ambiguous_routes(spec.routes.iter().map(|r| (r.path_prefix.as_str(), r.methods.as_slice()))) {
        problems.push(format!("routes {a:?} and {b:?} serve the same path prefix for the same methods"));
    }
    if let Some(bad) = spec.forward.trusted_proxies.iter().find(|c| c.parse::<ipnet::IpNet>().is_err()) {
        problems.push(format!("forward.trustedProxies entry {bad:?} is not a CIDR such as 10.0.0.0/8"));
    }
    session_store_problems(&spec.session, &mut problems);
    let forward_auth = spec.forward_auth.iter().flat_map(|f| &f.trusted_proxies);
    if let Some(bad) = forward_auth.clone().find(|c| c.parse::<ipnet::IpNet>().is_err()) {
        problems.push(format!("forwardAuth.trustedProxies entry {bad:?} is not a CIDR such as 10.0.0.0/8"));
    }
    problems
}

/// `session.store`/`redis` beyond the CEL rules (which `check` and old
/// apiservers may not run).
fn session_store_problems(session: &crate::api::session::SessionSettings, problems: &mut Vec<String>) {
    let redis_store = session.store == Some(crate::api::SessionStoreKind::Redis);
    match (&session.redis, redis_store) {
        (None, true) => problems.push("session.store Redis needs session.redis".into()),
        (Some(_), false) => problems.push("session.redis is set but session.store is not Redis".into()),
        (Some(r), true) => match (&r.address, &r.sentinel) {
            (Some(_), Some(_)) | (None, None) => {
                problems.push("session.redis must set exactly one of address or sentinel".into());
            }
            (None, Some(s)) if s.addresses.is_empty() || s.master_name.trim().is_empty() => {
                problems.push("session.redis.sentinel needs a masterName and at least one address".into());
            }
            _ => {}
        },
        (None, false) => {}
    }
}

/// Closed by default, over a policy and the providers it names: if one of
/// them is open to the public and neither it nor the policy restricts who
/// may enter, explains why the policy is refused. `access.allowAllUsers`
/// and `authentication: Disabled` opt out explicitly.
pub fn unrestricted_public_provider<'a>(
    spec: &AuthPolicySpec,
    providers: impl IntoIterator<Item = (String, &'a IdentityProviderSpec)>,
) -> Option<String> {
    if spec.authentication == Authentication::Disabled {
        return None;
    }
    let policy = &spec.access.allow;
    let (name, open) = providers
        .into_iter()
        .find(|(_, p)| open_to_everyone(is_public(p), &p.allow, policy, spec.access.allow_all_users))?;
    Some(format!(
        "IdentityProvider {name:?} ({}) lets anyone with an account sign in, and neither it nor this policy restricts who may enter. Add allowedDomains, allowedOrgs, allowedTeams, allowedGroups or allowedEmails, or set access.allowAllUsers: true deliberately.",
        open.provider_type
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_provider_needs_a_restriction_or_an_explicit_opt_out() {
        let none = AllowList::default();
        let some = AllowList { allowed_orgs: vec!["acme".into()], ..AllowList::default() };
        assert!(open_to_everyone(true, &none, &none, false));
        assert!(!open_to_everyone(true, &some, &none, false), "the provider restricts");
        assert!(!open_to_everyone(true, &none, &some, false), "the policy restricts");
        assert!(!open_to_everyone(true, &none, &none, true), "allowAllUsers is deliberate");
        assert!(!open_to_everyone(false, &none, &none, false), "a private issuer");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("12h"), Some(43200));
        assert_eq!(parse_duration_secs("1h30m"), Some(5400));
        assert_eq!(parse_duration_secs("0s"), None);
        assert_eq!(parse_duration_secs("soon"), None);
    }

    fn policy(yaml: &str) -> AuthPolicySpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn policy_problems_name_the_field() {
        let base = "upstream: {url: 'http://a'}\nexternalUrl: https://x\nproviders: [p]\n";
        assert!(policy_problems(&policy(base)).is_empty());
        let bad = policy(
            "upstream: {url: 'http://a', timeout: 0s}\nexternalUrl: https://x\nproviders: [p]\nsession: {ttl: soon}\naccess: {allowedEmails: ['a@b@c']}\nforward: {trustedProxies: [nope]}\n",
        );
        let problems = policy_problems(&bad).join("\n");
        for field in ["session.ttl", "allowedEmails", "upstream.timeout", "forward.trustedProxies"] {
            assert!(problems.contains(field), "{field} in {problems}");
        }
    }

    #[test]
    fn route_problems_name_the_route_and_field() {
        let spec = policy(
            r#"
externalUrl: https://x
providers: [p]
upstream: {url: 'http://a', connectTimeout: 0s}
routes:
- {pathPrefix: /api, upstream: {url: 'http://b', timeout: 0s}, tokenAuth: {tokenUrl: 'https://id/t', clientId: c, clientSecretRef: {name: s, key: k}, params: {Grant_Type: password}}}
- {pathPrefix: /api/, methods: [GET], upstream: {url: 'http://c'}}
- {pathPrefix: /web, methods: [GET], upstream: {url: 'http://d'}}
- {pathPrefix: /web, methods: [POST], upstream: {url: 'http://e'}}
"#,
        );
        let problems = policy_problems(&spec);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("upstream.connectTimeout \"0s\""), "{problems:?}");
        assert!(problems[1].contains(r#"routes["/api"].upstream.timeout "0s""#), "{problems:?}");
        assert!(problems[2].contains(r#"routes["/api"].tokenAuth.params may not set "Grant_Type""#), "{problems:?}");
        assert_eq!(problems[3], r#"routes "/api" and "/api/" serve the same path prefix for the same methods"#);
        for reserved in RESERVED_TOKEN_PARAMS {
            let param = (*reserved).to_owned();
            assert_eq!(reserved_token_param([&param]), Some(&param));
        }
        assert_eq!(reserved_token_param([&"tenant".to_owned()]), None);
    }

    #[test]
    fn forward_auth_proxies_must_be_cidrs() {
        let spec = policy(
            "externalUrl: https://x\nproviders: [p]\nforwardAuth: {trustedProxies: [10.0.0.0/8, 10.0.0.0/33]}\n",
        );
        let problems = policy_problems(&spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("forwardAuth.trustedProxies entry \"10.0.0.0/33\""), "{problems:?}");
    }

    #[test]
    fn only_public_providers_without_any_list_are_refused() {
        let spec = policy("upstream: {url: 'http://a'}\nexternalUrl: https://x\nproviders: [gh]\n");
        let github: IdentityProviderSpec =
            serde_saphyr::from_str("type: github\nclientId: x\nclientSecretRef: {name: s}\n").unwrap();
        assert!(unrestricted_public_provider(&spec, [("gh".to_owned(), &github)]).unwrap().contains("\"gh\" (github)"));
        let emails: IdentityProviderSpec = serde_saphyr::from_str(
            "type: github\nclientId: x\nclientSecretRef: {name: s}\nallowedEmails: [a@example.com]\n",
        )
        .unwrap();
        assert_eq!(unrestricted_public_provider(&spec, [("gh".to_owned(), &emails)]), None);
        let private: IdentityProviderSpec =
            serde_saphyr::from_str("type: oidc\nclientId: x\nclientSecretRef: {name: s}\nissuerUrl: https://id.corp\n")
                .unwrap();
        assert_eq!(unrestricted_public_provider(&spec, [("corp".to_owned(), &private)]), None);
        let gitlab_self: IdentityProviderSpec = serde_saphyr::from_str(
            "type: gitlab\nclientId: x\nclientSecretRef: {name: s}\nissuerUrl: https://gitlab.corp\n",
        )
        .unwrap();
        assert!(!is_public(&gitlab_self));
    }
}
