use super::*;
use crate::gateway::GatewayConfig;
use crate::gateway::session::Session;
use crate::gateway::session::crypto::generate_key;
use crate::gateway::session::{SESSION_ID_BYTES, now};

/// A gateway whose policy allows `groups`, with one provider of `kind`.
fn gateway(kind: &str, access: &str) -> Gateway {
    crate::telemetry::install_crypto_provider();
    let yaml = format!(
        "listen: 127.0.0.1:4180
externalUrl: http://127.0.0.1:4180
upstream: http://127.0.0.1:9/
authentication: Enabled
providers:
- name: corp
  type: {kind}
  clientId: c
  clientSecret: s
  issuerUrl: https://id.example.com/
  authorizeUrl: https://id.example.com/auth
  tokenUrl: https://id.example.com/token
  jwksUrl: https://id.example.com/jwks
  scopes: [openid]
access: {access}
session: {{cookieName: _authgate, ttlSeconds: 3600, keys: ['{}'], revalidateSeconds: 900}}
",
        generate_key()
    );
    Gateway::new(GatewayConfig::from_yaml(&yaml).expect("config")).expect("gateway")
}

/// A session with an id of its own (as every real one has).
fn session(groups: &[&str], validated_at: u64) -> Session {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    Session {
        id: [NEXT.fetch_add(1, Ordering::Relaxed); SESSION_ID_BYTES],
        validated_at,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        access_expires_at: 0,
        expires_at: u64::MAX,
        ..crate::gateway::session::tests::sample()
    }
}

#[test]
fn a_session_validated_under_this_config_is_not_judged_again() {
    let gw = gateway("oidc", "{allowedGroups: [ops]}");
    let now = now();
    // Not in `ops`, but validated after this config took effect: it was
    // judged by it (and is not due), so no work on the hot path.
    let record = session(&["sre"], now + 1).encode();
    let view = SessionView::decode(&record).unwrap();
    assert_eq!(check(&gw, &view, now + 2), Check::Current);
}

#[test]
fn a_tightened_policy_refuses_old_sessions_on_their_next_request() {
    // The same session under two configs, as a reload builds them.
    let before = now() - 10;
    let sre = session(&["sre", "dev"], before).encode();
    let dev_only = session(&["dev"], before).encode();
    let loose = gateway("oidc", "{allowedGroups: [sre, dev]}");
    let tight = gateway("oidc", "{allowedGroups: [sre]}");
    let now = now();
    for record in [&sre, &dev_only] {
        assert_eq!(check(&loose, &SessionView::decode(record).unwrap(), now), Check::Current);
    }
    assert_eq!(check(&tight, &SessionView::decode(&sre).unwrap(), now), Check::Current);
    assert_eq!(check(&tight, &SessionView::decode(&dev_only).unwrap(), now), Check::SignOut);
    // Cached: judged again with the same answer, also for a cookie replay.
    assert_eq!(check(&tight, &SessionView::decode(&dev_only).unwrap(), now), Check::SignOut);
    assert_eq!(tight.verdicts.cache.read().unwrap().len(), 2);
}

#[test]
fn what_a_session_cannot_prove_forces_a_revalidation_without_grace() {
    // A Google session keeps no Workspace domain: a domain rule cannot be
    // judged from the record, so the provider is asked now.
    let gw = gateway("google", "{allowedDomains: [example.com]}");
    let record = session(&["sre"], now() - 10).encode();
    let due = Due { refresh: false, revalidate: true, forced: true };
    assert_eq!(check(&gw, &SessionView::decode(&record).unwrap(), now()), Check::Renew(due));
    // An OIDC session has no orgs: a new org rule cannot pass either.
    let gw = gateway("oidc", "{allowedOrgs: [acme]}");
    assert_eq!(check(&gw, &SessionView::decode(&record).unwrap(), now()), Check::Renew(due));
}

#[test]
fn due_checks_come_first() {
    let gw = gateway("oidc", "{allowedGroups: [sre]}");
    let now = now();
    let stale = session(&["nobody"], now - 900).encode();
    let due = Due { refresh: false, revalidate: true, forced: false };
    assert_eq!(check(&gw, &SessionView::decode(&stale).unwrap(), now), Check::Renew(due));
    let expiring = Session { access_issued_at: now - 100, access_expires_at: now + 5, ..session(&["sre"], now + 1) };
    let record = expiring.encode();
    let due = Due { refresh: true, revalidate: false, forced: false };
    assert_eq!(check(&gw, &SessionView::decode(&record).unwrap(), now), Check::Renew(due));
}

#[test]
fn stored_principals_sort_groups_back_into_memberships() {
    let record = session(&["acme", "acme/platform", "other"], 0).encode();
    let view = SessionView::decode(&record).unwrap();
    let github = stored_principal(ProviderType::Github, &view).identity;
    assert_eq!(github.orgs, Membership::Known(vec!["acme".into(), "other".into()]));
    assert_eq!(github.teams, Membership::Known(vec!["acme/platform".into()]));
    assert_eq!(github.groups, Membership::Unavailable);
    let gitlab = stored_principal(ProviderType::Gitlab, &view).identity;
    assert_eq!(gitlab.orgs, gitlab.groups);
    let oidc = stored_principal(ProviderType::Oidc, &view).identity;
    assert_eq!((oidc.user.as_str(), oidc.email_verified), ("alice@example.com", true));
    assert_eq!(oidc.orgs, Membership::Unavailable);
    let google = stored_principal(ProviderType::Google, &view).identity;
    assert_eq!(google.domain_proof, DomainProof::Workspace(None));
}

#[test]
fn a_pass_in_the_configs_first_second_is_remembered() {
    let gw = gateway("google", "{allowedDomains: [example.com]}");
    let record = session(&["sre"], gw.verdicts.since).encode();
    let view = SessionView::decode(&record).unwrap();
    assert!(matches!(check(&gw, &view, gw.verdicts.since), Check::Renew(Due { forced: true, .. })));
    // The forced re-validation passed in that same second: no second one.
    gw.verdicts.passed(view.id, view.validated_at);
    assert_eq!(check(&gw, &view, gw.verdicts.since), Check::Current);
}
