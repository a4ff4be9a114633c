use super::*;
use crate::gateway::session::CookieSettings;
use crate::gateway::upstream::headers::sanitize;

#[test]
fn groups_are_encoded_unambiguously() {
    let v = encode_groups(["sre", "dev,admin", "50%", "Domain Admins", "ops"].into_iter()).unwrap();
    assert_eq!(v, "sre,dev%2Cadmin,50%25,Domain Admins,ops");
    let parsed: Vec<String> = v
        .to_str()
        .unwrap()
        .split(',')
        .map(|g| percent_encoding::percent_decode_str(g).decode_utf8().unwrap().into_owned())
        .collect();
    assert_eq!(parsed, ["sre", "dev,admin", "50%", "Domain Admins", "ops"]);
    assert_eq!(encode_groups(["é"].into_iter()).unwrap(), "%C3%A9");
    assert_eq!(encode_groups(std::iter::empty()), None);
}

#[test]
fn groups_with_control_characters_are_dropped_and_the_rest_kept() {
    let kept = forwardable_groups(vec!["sre".into(), "evil\r\nX-Auth-Request-User: ceo".into(), "dev".into()], "u");
    assert_eq!(kept, ["sre", "dev"]);
}

#[test]
fn identity_headers() {
    let session = crate::gateway::session::tests::sample();
    let buf = session.encode();
    let view = SessionView::decode(&buf).unwrap();
    let mut h = HeaderMap::new();
    add_identity(&mut h, &IdentityHeaders::default(), &Who::session(&view), true, UserToken::Access.of(&view));
    assert_eq!(h.get(&X_AUTH_REQUEST_USER).unwrap(), "alice@example.com");
    assert_eq!(h.get(&X_AUTH_REQUEST_USER_ID).unwrap(), "alice");
    assert_eq!(h.get(&X_AUTH_REQUEST_EMAIL).unwrap(), "alice@example.com");
    assert_eq!(h.get(&X_AUTH_REQUEST_GROUPS).unwrap(), "sre,dev");
    assert_eq!(h.get(AUTHORIZATION).unwrap(), "Bearer at");
    let mut quiet = HeaderMap::new();
    add_identity(&mut quiet, &IdentityHeaders::default(), &Who::session(&view), false, UserToken::Neither.of(&view));
    assert!(quiet.is_empty());
}

#[test]
fn chosen_names_carry_the_identity_and_are_stripped_from_clients() {
    let chosen: IdentityHeaderNames = serde_json::from_value(serde_json::json!({
        "user": "X-Forwarded-User", "email": "X-Forwarded-Email", "groups": "X-Grafana-Groups",
        "preferredUsername": "X-Forwarded-Preferred-Username", "userId": "Remote-User"
    }))
    .unwrap();
    let names = IdentityHeaders::new(Some(&chosen)).unwrap();
    let session = crate::gateway::session::tests::sample();
    let buf = session.encode();
    let view = SessionView::decode(&buf).unwrap();
    let mut h = HeaderMap::new();
    names.add(&mut h, &Who::session(&view));
    assert_eq!(h["x-forwarded-user"], "alice@example.com");
    assert_eq!(h["x-forwarded-preferred-username"], "alice@example.com");
    assert_eq!(h["x-forwarded-email"], "alice@example.com");
    assert_eq!(h["x-grafana-groups"], "sre,dev");
    assert_eq!(h["remote-user"], "alice");
    assert!(h.get(&X_AUTH_REQUEST_USER).is_none(), "the default name is replaced, not added");

    // A client sending the custom name (not in the built-in list) loses it.
    let mut client = HeaderMap::new();
    client.insert("x-grafana-groups", HeaderValue::from_static("admin"));
    client.insert("x-other", HeaderValue::from_static("kept"));
    sanitize(&mut client, &CookieSettings::new("_ag", None, true, "/", 60), names.custom(), false);
    assert!(client.get("x-grafana-groups").is_none());
    assert_eq!(client["x-other"], "kept");
}

#[test]
fn a_bad_chosen_name_is_refused() {
    let chosen = IdentityHeaderNames { user: Some("bad name".into()), ..Default::default() };
    assert!(IdentityHeaders::new(Some(&chosen)).unwrap_err().contains("headerNames.user"));
    let host = IdentityHeaderNames { email: Some("Host".into()), ..Default::default() };
    assert!(IdentityHeaders::new(Some(&host)).is_err());
}
