use super::*;

fn table(upstream: Option<&str>, routes: &str) -> RouteTable {
    let upstream = upstream.map(|u| format!("upstream: {u}\n")).unwrap_or_default();
    let config = GatewayConfig::from_yaml(&format!(
        "externalUrl: https://app.example.com\n{upstream}providers: []\nsession: {{cookieName: _a, ttlSeconds: 60, keys: []}}\nroutes: {routes}\n"
    ))
    .unwrap();
    RouteTable::new(&config).unwrap()
}

fn upstream_of(t: &RouteTable, method: Method, path: &str) -> Option<String> {
    t.select(&method, path).map(|i| t.routes()[i].upstream.to_string())
}

#[test]
fn one_route_serves_every_path() {
    let t = table(Some("http://app:8080"), "[]");
    for path in ["/", "/x", "/oauth2x", "/a/b"] {
        assert_eq!(upstream_of(&t, Method::GET, path).as_deref(), Some("http://app:8080/"), "{path}");
    }
    assert_eq!(table(None, "[]").select(&Method::GET, "/x"), None, "forward-auth only: no route");
}

#[test]
fn the_longest_prefix_wins_on_whole_segments() {
    let t = table(
        Some("http://default"),
        "[{pathPrefix: /api, upstream: 'http://api'}, {pathPrefix: /api/admin/, upstream: 'http://admin'}]",
    );
    let up = |p| upstream_of(&t, Method::GET, p).unwrap();
    assert_eq!(up("/api"), "http://api/");
    assert_eq!(up("/api/x"), "http://api/");
    assert_eq!(up("/api/admin"), "http://admin/");
    assert_eq!(up("/api/admin/users"), "http://admin/");
    assert_eq!(up("/api/adminx"), "http://api/");
    assert_eq!(up("/apix"), "http://default/", "/api does not serve /apix");
    assert_eq!(up("/"), "http://default/");
}

#[test]
fn methods_fall_through_to_a_shorter_prefix() {
    let t = table(Some("http://default"), "[{pathPrefix: /api, methods: [GET, HEAD], upstream: 'http://read'}]");
    assert_eq!(upstream_of(&t, Method::GET, "/api/x").unwrap(), "http://read/");
    assert_eq!(upstream_of(&t, Method::POST, "/api/x").unwrap(), "http://default/");
    let only = table(None, "[{pathPrefix: /api, methods: [GET], upstream: 'http://read'}]");
    assert_eq!(upstream_of(&only, Method::DELETE, "/api"), None);
}

#[test]
fn injected_values_never_show_in_debug_output_or_errors() {
    let t = table(None, "[{pathPrefix: /k, upstream: 'http://k', headers: [{name: X-Api-Key, value: s3cr3t-value}]}]");
    let route = &t.routes()[0];
    assert!(route.credentials.headers[0].1.is_sensitive());
    assert!(!format!("{:?}", route.credentials).contains("s3cr3t"));
    let config = GatewayConfig::from_yaml(
        "externalUrl: https://a.example.com\nproviders: []\nsession: {cookieName: _a, ttlSeconds: 60, keys: []}\nroutes: [{pathPrefix: /k, upstream: 'http://k', headers: [{name: X-Api-Key, value: \"s3cr3t\\nx\"}]}]\n",
    )
    .unwrap();
    let err = RouteTable::new(&config).err().unwrap();
    assert!(err.contains("x-api-key"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn a_route_that_injects_credentials_keeps_the_users_token_to_itself() {
    let t = table(
        Some("http://default"),
        "[{pathPrefix: /k, upstream: 'http://k', headers: [{name: X-Api-Key, value: v}]}, {pathPrefix: /both, upstream: 'http://b', headers: [{name: X-Api-Key, value: v}], forwardAccessToken: true}, {pathPrefix: /plain, upstream: 'http://p'}]",
    );
    let by = |p: &str| &t.routes()[t.select(&Method::GET, p).unwrap()];
    assert!(!by("/k").forward_access_token);
    assert!(by("/both").forward_access_token);
    assert!(by("/plain").forward_access_token);
    assert!(by("/").forward_access_token);
}
