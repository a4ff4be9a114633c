use http::HeaderValue;
use http::header::AUTHORIZATION;

use super::*;
use crate::contract::session::UserRevocation;
use crate::gateway::session::crypto::generate_key;

fn session() -> SessionConfig {
    SessionConfig { keys: vec![crate::contract::redacted::Redacted::new(generate_key())], ..SessionConfig::default() }
}

fn approval() -> Approval {
    Approval {
        subject: "alice".into(),
        user: "alice@example.com".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["sre".into()],
        provider: "corp".into(),
    }
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

#[tokio::test]
async fn a_minted_token_names_the_approving_user() {
    let s = session();
    let token = mint(&Keyring::new(&s.keys).unwrap(), &approval(), 3600, 1000);
    assert!(token.starts_with(PREFIX));
    let Verdict::Caller(Caller::Machine(caller)) =
        DeviceAuthenticator::new(&s, true).authenticate(&headers(&token), 1001).await
    else {
        panic!("not accepted");
    };
    assert_eq!(caller.principal.proof, Proof::Device);
    assert_eq!(caller.principal.provider, "corp");
    assert_eq!(caller.principal.identity.user, "alice@example.com");
    assert_eq!(caller.principal.identity.groups.values(), ["sre"]);
    assert_eq!(caller.expires_at, 4600);
    assert_eq!(caller.grant, Grant::Full);
}

#[tokio::test]
async fn other_tokens_are_not_mine_and_bad_ones_are_refused() {
    let s = session();
    let a = DeviceAuthenticator::new(&s, true);
    assert!(matches!(a.authenticate(&headers("a.b.c"), 0).await, Verdict::NotMine));
    assert!(matches!(a.authenticate(&headers("agt_xyz"), 0).await, Verdict::NotMine));
    assert!(matches!(a.authenticate(&HeaderMap::new(), 0).await, Verdict::NotMine));
    let forged = a.authenticate(&headers("agd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0).await;
    assert!(matches!(forged, Verdict::Reject(Rejection::InvalidToken("signature"))), "{forged:?}");
    // Another gateway's keys.
    let foreign = mint(&Keyring::new(&session().keys).unwrap(), &approval(), 3600, 0);
    assert!(matches!(
        a.authenticate(&headers(&foreign), 1).await,
        Verdict::Reject(Rejection::InvalidToken("signature"))
    ));
    let token = mint(&Keyring::new(&s.keys).unwrap(), &approval(), 60, 0);
    assert!(matches!(a.authenticate(&headers(&token), 60).await, Verdict::Reject(Rejection::InvalidToken("expired"))));
    let off = DeviceAuthenticator::new(&s, false);
    assert!(matches!(
        off.authenticate(&headers(&token), 1).await,
        Verdict::Reject(Rejection::InvalidToken("device_flow_disabled"))
    ));
}

#[test]
fn not_before_and_user_revocations_end_device_tokens() {
    let mut s = session();
    let token = mint(&Keyring::new(&s.keys).unwrap(), &approval(), 3600, 1000);
    s.not_before = 1001;
    assert_eq!(DeviceAuthenticator::new(&s, true).verify(&token, 1002), Err("revoked"));
    s.not_before = 0;
    s.revocations = vec![UserRevocation { user: None, email: Some("ALICE@example.com".into()), before: 1001 }];
    assert_eq!(DeviceAuthenticator::new(&s, true).verify(&token, 1002), Err("revoked"));
    s.revocations = vec![UserRevocation { user: Some("alice@example.com".into()), email: None, before: 1000 }];
    assert!(DeviceAuthenticator::new(&s, true).verify(&token, 1002).is_ok(), "issued after the revocation");
}
