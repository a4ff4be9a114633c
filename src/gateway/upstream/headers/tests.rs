use super::*;
use http::header::AUTHORIZATION;

fn cookies() -> CookieSettings {
    CookieSettings::new("_ag", None, true, "/", 60)
}

#[test]
fn spoofable_headers_in_every_spelling() {
    for name in [
        "authorization",
        "x-auth-request-user",
        "x-auth-request-email",
        "x_auth_request_email",
        "x.auth.request.email",
        "x-auth_request-groups",
        "x-auth-request-access-token",
        "x-auth-request-preferred-username",
        "x-forwarded-user",
        "x_forwarded_email",
        "x.forwarded.groups",
        "x-forwarded-access-token",
        "x-forwarded-preferred-username",
        "x-forwarded-for",
        "x_forwarded_for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
        "x_real_ip",
        "x-original-url",
        "x-rewrite-url",
        "remote-user",
        "remote_user",
        "x-remote-user",
        "x-remote-group",
        "x-webauth-user",
        "x_webauth_user",
        "x-auth-user",
        "x.auth.user",
        "x-authenticated-userid",
        "true-client-ip",
        "x-goog-authenticated-user-email",
        "x-amzn-oidc-identity",
        "x-ms-client-principal-name",
    ] {
        assert!(is_spoofable(name), "{name}");
    }
    for name in [
        "accept",
        "x-request-id",
        "x-auth-requestx",
        "cookie",
        "content-type",
        "authorizationx",
        "x-auth-token",
        "x-api-key",
        "x-csrf-token",
        "referer",
    ] {
        assert!(!is_spoofable(name), "{name}");
    }
}

#[test]
fn sanitize_removes_identity_hop_by_hop_and_our_cookies_and_joins_the_rest() {
    let mut h = HeaderMap::new();
    h.insert("X-Auth-Request-Email", HeaderValue::from_static("ceo@example.com"));
    h.insert(HeaderName::from_static("x_auth_request_email"), HeaderValue::from_static("ceo@example.com"));
    h.insert("x-auth-request-user", HeaderValue::from_static("ceo"));
    h.insert("remote-user", HeaderValue::from_static("ceo"));
    h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer forged"));
    h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-custom-hop"));
    h.insert("x-custom-hop", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("te", HeaderValue::from_static("trailers"));
    h.insert(http::header::HOST, HeaderValue::from_static("app.example.com"));
    h.insert("accept", HeaderValue::from_static("text/html"));
    h.append(COOKIE, HeaderValue::from_static("a=1; _ag=secret; _ag_0=x"));
    h.append(COOKIE, HeaderValue::from_static("_ag_flow_abc=y"));
    h.append(COOKIE, HeaderValue::from_static("b=2"));
    sanitize(&mut h, &cookies(), &[], false);
    let names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(h.get("accept").unwrap(), "text/html");
    let cookies: Vec<_> = h.get_all(COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies, ["a=1; b=2"]);
}

#[test]
fn several_cookie_fields_become_one() {
    let mut h = HeaderMap::new();
    h.append(COOKIE, HeaderValue::from_static("a=1"));
    h.append(COOKIE, HeaderValue::from_static("b=2"));
    sanitize(&mut h, &cookies(), &[], false);
    assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2"]);
    // One field without ours is left exactly as it was.
    let mut one = HeaderMap::new();
    one.insert(COOKIE, HeaderValue::from_static("a=1;b=2"));
    sanitize(&mut one, &cookies(), &[], false);
    assert_eq!(one.get(COOKIE).unwrap(), "a=1;b=2");
}

#[test]
fn a_non_ascii_cookie_does_not_smuggle_ours_through() {
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_bytes(b"x=\xc3\xbc; _ag=secret; y=2").unwrap());
    sanitize(&mut h, &cookies(), &[], false);
    assert_eq!(h.get(COOKIE).unwrap().as_bytes(), b"x=\xc3\xbc; y=2");
}

#[test]
fn only_websocket_upgrades() {
    let mut h = HeaderMap::new();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert("sec-websocket-key", HeaderValue::from_static("k"));
    assert!(is_websocket_upgrade(&h));
    sanitize(&mut h, &cookies(), &[], true);
    assert_eq!(h.get(UPGRADE).unwrap(), "websocket");
    assert_eq!(h.get(CONNECTION).unwrap(), "upgrade");
    assert!(h.contains_key("sec-websocket-key"));
    for other in ["h2c", "TLS/1.2", "websocket, h2c"] {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, HTTP2-Settings"));
        h.insert(UPGRADE, HeaderValue::from_static(other));
        h.insert("http2-settings", HeaderValue::from_static("AAMAAABkAAQAAP__"));
        assert!(!is_websocket_upgrade(&h), "{other}");
        sanitize(&mut h, &cookies(), &[], false);
        assert!(h.is_empty(), "{other}: {h:?}");
    }
}

#[test]
fn forwarding_headers_come_from_the_gateway_not_the_client() {
    let f = Forwarding::new(&Url::parse("https://app.example.com/base/").unwrap(), &[]).unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let chain = f.trusted_chain(&h, peer);
    assert_eq!(chain, None, "no proxy is trusted by default");
    sanitize(&mut h, &cookies(), &[], false);
    f.apply(&mut h, peer, chain);
    assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.2");
    assert_eq!(h.get("x-real-ip").unwrap(), "10.0.0.2");
    assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
    assert_eq!(h.get("x-forwarded-host").unwrap(), "app.example.com");
    assert_eq!(h.get("x-forwarded-port").unwrap(), "443");
}

#[test]
fn a_trusted_proxy_extends_the_chain() {
    let f = Forwarding::new(&Url::parse("http://127.0.0.1:8080").unwrap(), &["10.0.0.0/8".into()]).unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.1.1.1"));
    let peer: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
    let chain = f.trusted_chain(&h, peer);
    f.apply(&mut h, peer, chain);
    assert_eq!(h.get("x-forwarded-for").unwrap(), "203.0.113.9, 10.1.1.1, 10.0.0.2");
    assert_eq!(h.get("x-real-ip").unwrap(), "203.0.113.9");
    assert_eq!(h.get("x-forwarded-host").unwrap(), "127.0.0.1:8080");
    assert!(Forwarding::new(&Url::parse("http://x").unwrap(), &["10.0.0.0/33".into()]).is_err());
}
