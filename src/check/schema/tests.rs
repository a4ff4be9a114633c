use serde_json::json;

use super::problems;

fn policy(spec: serde_json::Value) -> serde_json::Value {
    let mut base = json!({
        "upstream": {"url": "http://app:8080"},
        "externalUrl": "https://app.example.com",
        "providers": ["corp"],
    });
    base.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
    json!({"apiVersion": "authgate.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "p"}, "spec": base})
}

#[test]
fn a_sound_policy_passes() {
    assert_eq!(problems("AuthPolicy", &policy(json!({}))), Vec::<String>::new());
    let full = policy(json!({
        "session": {"ttl": "8h", "cookieName": "_x"},
        "gateway": {"replicas": 2, "resources": {"requests": {"cpu": "50m"}}},
        "scopes": [{"name": "read", "methods": ["GET"], "pathPrefixes": ["/api"]}],
    }));
    assert_eq!(problems("AuthPolicy", &full), Vec::<String>::new());
}

#[test]
fn unknown_fields_are_refused_at_any_depth() {
    assert_eq!(problems("AuthPolicy", &policy(json!({"sesion": {}}))), ["unknown field \"spec.sesion\""]);
    let nested = policy(json!({"session": {"tll": "8h"}}));
    assert_eq!(problems("AuthPolicy", &nested), ["unknown field \"spec.session.tll\""]);
    let mut top = policy(json!({}));
    top["sepc"] = json!({});
    assert_eq!(problems("AuthPolicy", &top), ["unknown field \"sepc\""]);
}

#[test]
fn types_enums_ranges_lengths_counts_and_required_fields_are_checked() {
    let cases = [
        (json!({"authentication": "Maybe"}), "spec.authentication: Unsupported value"),
        (
            json!({"gateway": {"replicas": 101}}),
            "spec.gateway.replicas: Invalid value: should be less than or equal to 100",
        ),
        (json!({"gateway": {"replicas": "two"}}), "spec.gateway.replicas: Invalid value: must be of type integer"),
        (json!({"session": {"ttl": "1h".repeat(17)}}), "spec.session.ttl: Too long: may not be more than 32 bytes"),
        (json!({"providers": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}), "spec.providers: Too many: 9"),
        (json!({"providers": []}), "spec.providers: Invalid value: must have at least 1 items"),
        (json!({"scopes": [{"methods": ["GET"]}]}), "spec.scopes[0].name: Required value"),
    ];
    for (spec, expected) in cases {
        let found = problems("AuthPolicy", &policy(spec.clone()));
        assert!(found.iter().any(|p| p.starts_with(expected)), "{spec}: expected {expected:?}, got {found:?}");
    }
    let mut no_spec = policy(json!({}));
    no_spec.as_object_mut().unwrap().remove("spec");
    assert_eq!(problems("AuthPolicy", &no_spec), ["spec: Required value"]);
}

#[test]
fn messages_never_quote_the_value() {
    let secretish = "s3cr3t-value-that-must-not-be-echoed-0123456789";
    let found = problems("AuthPolicy", &policy(json!({"session": {"ttl": secretish}})));
    assert!(!found.is_empty());
    assert!(found.iter().all(|p| !p.contains(secretish)), "{found:?}");
}
