use super::*;
use kube::runtime::reflector::ObjectRef;

fn policy(ns: &str, name: &str, ttl: &str) -> Arc<AuthPolicy> {
    let spec = serde_json::from_value(serde_json::json!({
        "upstream": {"url": "http://app:80"}, "externalUrl": "https://app.example.com", "providers": ["gh"],
        "session": {"ttl": ttl},
    }))
    .unwrap();
    let mut p = AuthPolicy::new(name, spec);
    p.metadata.namespace = Some(ns.into());
    Arc::new(p)
}

fn revocation(ns: &str, name: &str, policy: Option<&str>) -> SessionRevocation {
    let spec = serde_json::from_value(serde_json::json!({"user": "alice", "policy": policy})).unwrap();
    let mut r = SessionRevocation::new(name, spec);
    r.metadata.namespace = Some(ns.into());
    r
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

#[test]
fn expiry_is_before_plus_the_longest_ttl_and_the_default_without_policies() {
    let r = revocation("a", "r", None);
    let judged = judge(&r, "a", at(1000), &[policy("a", "p", "1h"), policy("a", "q", "2h")]);
    assert_eq!(judged.expires_at, at(1000 + 7200));
    assert_eq!((judged.ready.status, judged.ready.reason), (true, DELIVERED));
    assert!(judged.ready.message.contains("(2: p, q)"), "{}", judged.ready.message);
    let none = judge(&r, "a", at(1000), &[]);
    assert_eq!(none.expires_at, at(1000 + DEFAULT_TTL_SECONDS as i64));
    assert_eq!((none.ready.status, none.ready.reason), (false, POLICY_NOT_FOUND));
}

#[test]
fn a_missing_named_policy_is_said_in_words() {
    let judged = judge(&revocation("a", "r", Some("grafana")), "a", at(0), &[]);
    assert_eq!((judged.ready.status, judged.ready.reason), (false, POLICY_NOT_FOUND));
    assert!(
        judged.ready.message.starts_with(r#"AuthPolicy "grafana" does not exist in namespace "a""#),
        "{}",
        judged.ready.message
    );
}

#[test]
fn a_revocation_wakes_the_policies_it_names_now_and_named_before() {
    let policies = [policy("a", "p", "1h"), policy("a", "q", "1h"), policy("b", "p", "1h")];
    let names = |refs: Vec<ObjectRef<AuthPolicy>>| {
        let mut v: Vec<String> = refs.into_iter().map(|r| format!("{}/{}", r.namespace.unwrap(), r.name)).collect();
        v.sort();
        v
    };
    let targets = Targets::default();
    assert_eq!(names(targets.policies_for(&policies, &revocation("a", "r", Some("p")))), ["a/p"]);
    assert_eq!(names(targets.policies_for(&policies, &revocation("a", "r", Some("q")))), ["a/p", "a/q"], "left p");
    assert_eq!(names(targets.policies_for(&policies, &revocation("a", "r", Some("q")))), ["a/q"]);
    assert_eq!(names(targets.policies_for(&policies, &revocation("a", "all", None))), ["a/p", "a/q"]);
    let mut gone = revocation("a", "r", Some("q"));
    gone.metadata.deletion_timestamp = Some(status::now());
    assert_eq!(names(targets.policies_for(&policies, &gone)), ["a/q"]);
    assert_eq!(names(targets.policies_for(&policies, &revocation("a", "r", Some("p")))), ["a/p"], "forgotten");

    let revocations = [Arc::new(revocation("a", "r1", Some("p"))), Arc::new(revocation("a", "r2", None))];
    let woken: Vec<String> = revocations_naming(&revocations, &policies[1]).into_iter().map(|r| r.name).collect();
    assert_eq!(woken, ["r2"]);
}
