use super::*;

fn policy(json: serde_json::Value) -> CorsPolicy {
    CorsPolicy::new(&serde_json::from_value(json).unwrap()).unwrap()
}

fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
}

#[test]
fn an_allowed_origin_gets_a_preflight_answer() {
    let p = policy(serde_json::json!({
        "allowedOrigins": ["https://app.example.com"], "allowedMethods": ["GET", "PUT"],
        "allowedHeaders": ["Content-Type", "X-Requested-With"], "allowCredentials": true, "maxAgeSeconds": 600
    }));
    let req = request(&[
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type, x-requested-with"),
    ]);
    let (status, h) = p.preflight(&Method::OPTIONS, &req).unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, PUT");
    assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "Content-Type, X-Requested-With");
    assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
    assert_eq!(h[VARY], "Origin");
}

#[test]
fn anything_else_is_not_a_preflight_it_answers() {
    let p =
        policy(serde_json::json!({"allowedOrigins": ["https://app.example.com"], "allowedHeaders": ["content-type"]}));
    let other_origin = request(&[("origin", "https://evil.example"), ("access-control-request-method", "GET")]);
    assert!(p.preflight(&Method::OPTIONS, &other_origin).is_none());
    assert!(p.allowed_origin(&other_origin).is_none());
    let suffix = request(&[("origin", "https://app.example.com.evil"), ("access-control-request-method", "GET")]);
    assert!(p.preflight(&Method::OPTIONS, &suffix).is_none());
    let method = request(&[("origin", "https://app.example.com"), ("access-control-request-method", "DELETE")]);
    assert!(p.preflight(&Method::OPTIONS, &method).is_none(), "DELETE is not in the default GET, HEAD, POST");
    let header = request(&[
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "authorization"),
    ]);
    assert!(p.preflight(&Method::OPTIONS, &header).is_none());
    let plain_options = request(&[("origin", "https://app.example.com")]);
    assert!(p.preflight(&Method::OPTIONS, &plain_options).is_none());
    let ok = request(&[("origin", "https://app.example.com"), ("access-control-request-method", "POST")]);
    assert!(p.preflight(&Method::GET, &ok).is_none(), "only OPTIONS is a preflight");
    assert!(p.preflight(&Method::OPTIONS, &ok).is_some());
}

#[test]
fn responses_get_the_policys_headers_not_the_upstreams() {
    let p = policy(serde_json::json!({"allowedOrigins": ["https://app.example.com"], "exposeHeaders": ["X-Total"]}));
    let mut response = HeaderMap::new();
    response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    p.decorate(HeaderValue::from_static("https://app.example.com"), &mut response);
    assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert!(response.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    assert_eq!(response[ACCESS_CONTROL_EXPOSE_HEADERS], "X-Total");
}

#[test]
fn any_origin_means_no_credentials() {
    let any = policy(serde_json::json!({"allowedOrigins": ["*"]}));
    let req = request(&[("origin", "https://whoever.example"), ("access-control-request-method", "GET")]);
    let (_, h) = any.preflight(&Method::OPTIONS, &req).unwrap();
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    let bad: Cors =
        serde_json::from_value(serde_json::json!({"allowedOrigins": ["*"], "allowCredentials": true})).unwrap();
    assert!(CorsPolicy::new(&bad).is_err());
}
