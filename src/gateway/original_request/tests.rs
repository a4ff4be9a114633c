use http::HeaderValue;

use super::*;

fn external() -> Url {
    Url::parse("https://app.example.com/base/").unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn nginx_names_the_request_in_one_url() {
    let h = headers(&[("x-original-url", "https://app.example.com/base/x?y=1#frag"), ("x-original-method", "POST")]);
    let o = from_headers(&h, &external()).unwrap().unwrap();
    assert_eq!(o.method, Method::POST);
    assert_eq!(o.path_and_query, "/base/x?y=1", "the fragment never counts");
}

#[test]
fn traefik_names_it_in_four_headers() {
    let h = headers(&[
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "APP.example.com"),
        ("x-forwarded-uri", "/base/dash"),
    ]);
    assert_eq!(from_headers(&h, &external()).unwrap().unwrap().path_and_query, "/base/dash");
    assert_eq!(from_headers(&HeaderMap::new(), &external()), Ok(None));
}

#[test]
fn another_host_scheme_port_or_base_path_is_foreign() {
    for url in [
        "https://evil.example.com/base/x",
        "http://app.example.com/base/x",
        "https://app.example.com:8443/base/x",
        "https://app.example.com/other",
        "https://app.example.com/basement",
        "https://user@app.example.com/base/x",
    ] {
        let h = headers(&[("x-original-url", url)]);
        assert_eq!(from_headers(&h, &external()), Err(Refused::ForeignHost), "{url}");
    }
    let h = headers(&[("x-forwarded-host", "app.example.com.evil.io"), ("x-forwarded-uri", "/base/")]);
    assert_eq!(from_headers(&h, &external()), Err(Refused::ForeignHost));
}

#[test]
fn dot_segments_and_odd_uris_are_malformed() {
    for uri in ["/base/%2e%2e/admin", "/base/..%2fadmin", "//evil.example.com/base/", "base/x"] {
        let h = headers(&[("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", uri)]);
        let got = from_headers(&h, &external());
        assert!(matches!(got, Err(Refused::Malformed | Refused::ForeignHost)), "{uri}: {got:?}");
    }
    let h = headers(&[("x-forwarded-uri", "/base/x")]);
    assert_eq!(from_headers(&h, &external()), Err(Refused::Malformed), "no host named");
}

#[test]
fn a_query_string_cannot_move_the_request_under_another_path() {
    let h = headers(&[("x-original-url", "https://app.example.com/other?/base/")]);
    assert_eq!(from_headers(&h, &external()), Err(Refused::ForeignHost));
    let h = headers(&[("x-original-url", "https://app.example.com/other#/base/")]);
    assert_eq!(from_headers(&h, &external()), Err(Refused::ForeignHost));
}

#[test]
fn underscore_and_dot_spellings_are_refused() {
    for alias in ["x_original_url", "x.forwarded.uri", "x-forwarded_host", "X_Forwarded_Method"] {
        let h =
            headers(&[(alias, "https://app.example.com/base/"), ("x-original-url", "https://app.example.com/base/")]);
        assert_eq!(from_headers(&h, &external()), Err(Refused::AliasedHeader), "{alias}");
    }
    let h = headers(&[("x_custom_thing", "1"), ("x-original-url", "https://app.example.com/base/")]);
    assert!(from_headers(&h, &external()).is_ok(), "other underscore headers are not ours to judge");
}

#[test]
fn forwarded_prefix_and_rfc7239_never_name_the_request() {
    let h = headers(&[
        ("x-forwarded-prefix", "/base"),
        ("forwarded", "host=app.example.com;proto=https"),
        ("x-original-url", "https://app.example.com/other"),
    ]);
    assert_eq!(from_headers(&h, &external()), Err(Refused::ForeignHost));
    let only_those = headers(&[("x-forwarded-prefix", "/base"), ("forwarded", "host=app.example.com")]);
    assert_eq!(from_headers(&only_those, &external()), Ok(None));
}

#[test]
fn envoy_puts_the_path_after_the_prefix() {
    let h = headers(&[("host", "app.example.com"), ("x-forwarded-proto", "https")]);
    let o =
        from_ext_authz(&Method::PUT, "/base/oauth2/ext_authz/base/api?x=1", "/base/oauth2/ext_authz", &h, &external())
            .unwrap();
    assert_eq!((o.method, o.path_and_query.as_str()), (Method::PUT, "/base/api?x=1"));
    let evil = headers(&[("host", "evil.example.com"), ("x-forwarded-proto", "https")]);
    assert_eq!(
        from_ext_authz(&Method::GET, "/base/oauth2/ext_authz/base/", "/base/oauth2/ext_authz", &evil, &external()),
        Err(Refused::ForeignHost)
    );
    assert_eq!(
        from_ext_authz(&Method::GET, "/base/oauth2/ext_authzX", "/base/oauth2/ext_authz", &h, &external()),
        Err(Refused::Malformed)
    );
}

#[test]
fn a_protocol_relative_path_is_malformed_even_at_the_root() {
    let root = Url::parse("https://app.example.com/").unwrap();
    for uri in ["//evil.example.com/", "/\\evil.example.com/"] {
        let h = headers(&[("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", uri)]);
        assert_eq!(from_headers(&h, &root), Err(Refused::Malformed), "{uri}");
    }
}
