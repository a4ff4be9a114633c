use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;

fn holding(value: &str) -> Secret {
    Secret {
        data: Some(BTreeMap::from([(TOKEN_KEY.to_owned(), ByteString(value.as_bytes().to_vec()))])),
        ..Secret::default()
    }
}

fn status_for(value: &str, rotation: Option<&str>) -> ApiTokenStatus {
    ApiTokenStatus {
        token_sha256: Some(sha256_hex(value)),
        issued_at: Some(Time(Timestamp::from_second(1_000).unwrap())),
        rotation: rotation.map(Into::into),
        ..ApiTokenStatus::default()
    }
}

#[test]
fn a_held_token_matching_status_is_kept() {
    let t = generate();
    let kept = current(Some(&holding(&t)), &status_for(&t, Some("1")), Some("1"));
    assert_eq!(kept, Some((sha256_hex(&t), Timestamp::from_second(1_000).unwrap())));
}

#[test]
fn a_new_token_is_issued_when_missing_replaced_or_rotated() {
    let t = generate();
    // No Secret, or no status yet.
    assert_eq!(current(None, &status_for(&t, None), None), None);
    assert_eq!(current(Some(&holding(&t)), &ApiTokenStatus::default(), None), None);
    // Someone put another value into the Secret.
    assert_eq!(current(Some(&holding(&generate())), &status_for(&t, None), None), None);
    assert_eq!(current(Some(&holding("not-a-token")), &status_for("not-a-token", None), None), None);
    // The rotate annotation changed, appeared or went away.
    assert_eq!(current(Some(&holding(&t)), &status_for(&t, Some("1")), Some("2")), None);
    assert_eq!(current(Some(&holding(&t)), &status_for(&t, None), Some("1")), None);
    assert_eq!(current(Some(&holding(&t)), &status_for(&t, Some("1")), None), None);
}

fn spec(scopes: &[&str]) -> ApiTokenSpec {
    serde_json::from_value(serde_json::json!({"policy": "web", "user": "ci", "scopes": scopes, "ttl": "1h"})).unwrap()
}

fn policy(scopes: &[&str]) -> AuthPolicy {
    let scopes: Vec<_> = scopes.iter().map(|s| serde_json::json!({"name": s})).collect();
    let spec = serde_json::json!({"upstream": {"url": "http://app:8080"}, "externalUrl": "https://web.example.com", "providers": ["gh"], "scopes": scopes});
    AuthPolicy::new("web", serde_json::from_value(spec).unwrap())
}

#[test]
fn ready_until_expiry_then_expired() {
    let exp = Timestamp::from_second(2_000).unwrap();
    let web = policy(&["read"]);
    let before = judge(Timestamp::from_second(1_999).unwrap(), exp, &spec(&["read"]), "team", Some(&web));
    assert_eq!((before[0].type_, before[0].status, before[0].reason), (READY, true, ISSUED));
    assert_eq!((before[1].type_, before[1].status), (EXPIRED, false));
    for at in [2_000, 3_000] {
        // Expired wins over every other finding, even a missing policy.
        for p in [Some(&web), None] {
            let after = judge(Timestamp::from_second(at).unwrap(), exp, &spec(&["read"]), "team", p);
            assert_eq!((after[0].type_, after[0].status, after[0].reason), (READY, false, EXPIRED));
            assert_eq!((after[1].type_, after[1].status), (EXPIRED, true));
        }
    }
}

#[test]
fn a_missing_policy_or_an_undefined_scope_is_said_in_ready() {
    let (now, exp) = (Timestamp::from_second(1_000).unwrap(), Timestamp::from_second(2_000).unwrap());
    let missing = judge(now, exp, &spec(&["read"]), "team", None);
    assert_eq!((missing[0].status, missing[0].reason), (false, POLICY_NOT_FOUND));
    assert!(
        missing[0].message.contains(r#"AuthPolicy "web" does not exist in namespace "team""#),
        "{}",
        missing[0].message
    );
    let unknown = judge(now, exp, &spec(&["read", "write"]), "team", Some(&policy(&["read", "admin"])));
    assert_eq!((unknown[0].status, unknown[0].reason), (false, UNKNOWN_SCOPE));
    assert!(unknown[0].message.contains(r#"["write"]"#) && unknown[0].message.contains("it defines read, admin"));
    // A policy without scopes gives full access: nothing named is unknown.
    let open = judge(now, exp, &spec(&["read"]), "team", Some(&policy(&[])));
    assert_eq!((open[0].status, open[0].reason), (true, ISSUED));
    assert_eq!((unknown[1].status, unknown[1].reason), (false, NOT_EXPIRED));
}
