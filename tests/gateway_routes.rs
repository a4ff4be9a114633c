//! Path routes with injected credentials, public paths and CORS, through
//! the real gateway process, the real OP and echo upstreams that report
//! what reached them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use authgate::contract::routes::{HeaderValueConfig, RouteConfig};
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, Redacted};
use axum::response::IntoResponse;
use common::echo::{header, header_values, report};
use common::{Accept, Agent, Echo, Gateway, Stack, gateway};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GITHUB_TOKEN: &str = "gh-route-secret-7f3a";
const METRICS_KEY: &str = "metrics-route-secret-91bc";

fn route(prefix: &str, upstream: &Echo, headers: &[(&str, &str)]) -> RouteConfig {
    RouteConfig {
        path_prefix: prefix.into(),
        upstream: upstream.url(),
        tls: None,
        methods: vec![],
        strip_prefix: false,
        headers: headers
            .iter()
            .map(|(name, value)| HeaderValueConfig { name: (*name).into(), value: Redacted::new(*value) })
            .collect(),
        token_auth: None,
        forward_access_token: None,
        timeout_seconds: None,
        connect_timeout_seconds: None,
        cors: None,
    }
}

fn sre_policy(c: &mut GatewayConfig) {
    c.access.allowed_domains = vec!["example.com".into()];
    c.access.allowed_groups = vec!["sre".into()];
}

/// A stack for the sre policy plus `tweak`, and alice signed in to it.
async fn signed_in(tweak: impl FnOnce(&mut GatewayConfig)) -> Option<(Stack, Agent)> {
    let stack = Stack::start(3600, |c| {
        sre_policy(c);
        tweak(c);
    })
    .await?;
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    Some((stack, agent))
}

/// What the echo reported, for a request sent with the agent's session.
async fn echoed(agent: &mut Agent, gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Value {
    let reply = agent.send(Method::GET, &gw.url(path), Accept::Json, headers, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.describe());
    report(&reply.body)
}

#[tokio::test]
async fn two_routes_reach_their_own_upstreams_with_their_own_credentials() {
    let github = Echo::start().await;
    let metrics = Echo::start().await;
    let gh_route = RouteConfig {
        strip_prefix: true,
        ..route("/github/", &github, &[("Authorization", &format!("token {GITHUB_TOKEN}"))])
    };
    let metrics_route = route("/metrics-api", &metrics, &[("X-Api-Key", METRICS_KEY)]);
    let Some((stack, mut agent)) = signed_in(|c| c.routes = vec![gh_route, metrics_route]).await else {
        return;
    };
    let gw = &stack.gateway;

    // The GitHub route: prefix stripped, its token instead of the user's,
    // a forged Authorization overwritten, the identity still told.
    let gh = echoed(&mut agent, gw, "/github/repos?per_page=1", &[("authorization", "Bearer forged")]).await;
    assert_eq!(gh["path"], "/repos");
    assert_eq!(header_values(&gh, "authorization"), [format!("token {GITHUB_TOKEN}")]);
    assert_eq!(header(&gh, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert!(header(&gh, "x-api-key").is_none());
    let cookies = header(&gh, "cookie").unwrap_or_default();
    assert!(!cookies.contains("_authgate"), "the gateway's cookies stay with the gateway: {cookies}");

    // The metrics route: its key, and no user token at all.
    let m = echoed(&mut agent, gw, "/metrics-api/query", &[]).await;
    assert_eq!(m["path"], "/metrics-api/query");
    assert_eq!(header(&m, "x-api-key").as_deref(), Some(METRICS_KEY));
    assert!(header(&m, "authorization").is_none(), "the user's access token is not forwarded: {m}");

    // Everything else: the policy's upstream, the user's own token, no
    // route credentials.
    let d = echoed(&mut agent, gw, "/metrics-apix", &[("x-api-key", "client-sent")]).await;
    assert_eq!(d["path"], "/metrics-apix", "/metrics-api does not serve /metrics-apix");
    assert!(header(&d, "authorization").is_some_and(|a| a.starts_with("Bearer ") && !a.contains(GITHUB_TOKEN)));
    assert_eq!(header(&d, "x-api-key").as_deref(), Some("client-sent"), "not a route header here");
    assert_eq!((github.hits(), metrics.hits(), stack.echo.hits()), (1, 1, 1));

    // Without a session a route is as closed as the rest.
    let anonymous = Agent::new().get(&gw.url("/github/repos"), Accept::Json).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(github.hits(), 1);

    let logs = gw.logs();
    for secret in [GITHUB_TOKEN, METRICS_KEY] {
        assert!(!logs.contains(secret), "an injected value is in the debug log");
    }
}

#[tokio::test]
async fn the_longest_prefix_wins() {
    let api = Echo::start().await;
    let admin = Echo::start().await;
    let (api_route, admin_route) = (route("/api", &api, &[("X-Cred", "api")]), route("/api/admin/", &admin, &[]));
    let (gw, default) = open_gateway(vec![api_route, admin_route]).await;
    let client = reqwest::Client::new();
    for (path, expected, upstream) in [
        ("/api/admin/users", "/api/admin/users", &admin),
        ("/api/admin", "/api/admin", &admin),
        ("/api/adminx", "/api/adminx", &api),
        ("/api/v1", "/api/v1", &api),
        ("/api", "/api", &api),
    ] {
        let before = upstream.hits();
        let body = client.get(gw.url(path)).send().await.unwrap().text().await.unwrap();
        assert_eq!(report(&body)["path"], expected);
        assert_eq!(upstream.hits(), before + 1, "{path} went to the wrong upstream");
    }
    let body = client.get(gw.url("/apix")).send().await.unwrap().text().await.unwrap();
    assert!(header(&report(&body), "x-cred").is_none());
    assert_eq!(default.hits(), 1, "/api does not serve /apix");
}

/// A gateway with authentication disabled (so raw requests need no
/// session) in front of an echo, with `routes`.
async fn open_gateway(routes: Vec<RouteConfig>) -> (Gateway, Echo) {
    let default = Echo::start().await;
    let mut config = gateway::config(common::free_port(), &default.url(), vec![]);
    config.authentication = Authentication::Disabled;
    config.routes = routes;
    (Gateway::start(config).await, default)
}

/// One raw HTTP/1.1 GET of `target`, exactly as written; the status.
async fn raw_get(gw: &Gateway, target: &str) -> u16 {
    raw_exchange(gw, target).await.0
}

/// One raw HTTP/1.1 GET of `target`, exactly as written; the status and
/// the body.
async fn raw_exchange(gw: &Gateway, target: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw.base.port().unwrap())).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

#[tokio::test]
async fn traversal_never_reaches_another_routes_upstream_with_its_credentials() {
    let api = Echo::start().await;
    let admin = Echo::start().await;
    let (gw, default) = open_gateway(vec![
        route("/api", &api, &[("X-Cred", "api-secret")]),
        route("/admin", &admin, &[("X-Cred", "admin-secret")]),
    ])
    .await;
    // Climbing out of /api, raw or encoded: refused before any route.
    for target in ["/api/../admin", "/api/%2e%2e/admin", "/api/%2E%2e/admin", "/api%2f..%2fadmin", "/api/..%2fadmin"] {
        assert_eq!(raw_get(&gw, target).await, 400, "{target}");
    }
    assert_eq!((api.hits(), admin.hits(), default.hits()), (0, 0, 0), "nothing was forwarded");

    // `//admin` is merged to `/admin` before matching, so the admin route
    // gets exactly the path it matched, and /api never sees it.
    assert_eq!(raw_get(&gw, "//admin").await, 200);
    assert_eq!(raw_get(&gw, "/api//x").await, 200);
    assert_eq!((api.hits(), admin.hits(), default.hits()), (1, 1, 0));
    let client = reqwest::Client::new();
    let merged = report(&client.get(gw.url("/api//x")).send().await.unwrap().text().await.unwrap());
    assert_eq!(merged["path"], "/api/x", "the path the gateway matched is the path the upstream gets");
    assert_eq!(header(&merged, "x-cred").as_deref(), Some("api-secret"));
    // `/api%2fadmin` is one segment: not /api's, so it goes to the policy's
    // upstream without any route's credentials.
    let encoded = report(&client.get(gw.url("/api%2fadmin")).send().await.unwrap().text().await.unwrap());
    assert!(header(&encoded, "x-cred").is_none());
    assert_eq!(default.hits(), 1);
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed_with_credentials() {
    let elsewhere = Echo::start().await;
    let target = elsewhere.url().join("stolen").unwrap();
    let redirects = Arc::new(AtomicUsize::new(0));
    let counter = redirects.clone();
    let app = axum::Router::new().fallback(move || {
        let target = target.to_string();
        counter.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::FOUND, [(axum::http::header::LOCATION, target)]).into_response() }
    });
    let (addr, _guard) = common::serve::serve(app).await;
    let mut redirecting = route("/r", &elsewhere, &[("X-Api-Key", METRICS_KEY)]);
    redirecting.upstream = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let (gw, _default) = open_gateway(vec![redirecting]).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(gw.url("/r/x")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "the client gets the redirect itself");
    assert_eq!(redirects.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere.hits(), 0, "the gateway never follows it, so the key never travels there");
}

#[tokio::test]
async fn public_paths_open_only_themselves() {
    let Some(stack) = Stack::start(3600, |c| {
        sre_policy(c);
        c.public_paths = vec!["/healthz".into(), "/public/".into()];
    })
    .await
    else {
        return;
    };
    let gw = &stack.gateway;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str| client.get(gw.url(path)).header("accept", "application/json").send();

    let health = get("/healthz?x=/private").await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health = report(&health.text().await.unwrap());
    assert_eq!(health["path"], "/healthz");
    let asset = client.get(gw.url("/public/app.js")).header("x-auth-request-user", "admin").send().await.unwrap();
    let asset = report(&asset.text().await.unwrap());
    assert!(header(&asset, "x-auth-request-user").is_none(), "identity headers are stripped on public paths");
    let hits = stack.echo.hits();

    for closed in ["/private?x=/healthz", "/healthzx", "/publicx/app.js", "/private#/healthz", "/"] {
        assert_eq!(get(closed).await.unwrap().status(), StatusCode::UNAUTHORIZED, "{closed}");
    }
    // A fragment is dropped before anything looks at the path: the public
    // path is what is served, never what follows the `#`. A climb out of
    // the public prefix is refused.
    let (status, body) = raw_exchange(gw, "/public#/../private").await;
    assert_eq!(status, 200);
    assert_eq!(report(&body)["path"], "/public");
    assert_eq!(raw_get(gw, "/public/..%2fprivate").await, 400);
    assert_eq!(raw_get(gw, "/public/../private").await, 400);
    assert_eq!(stack.echo.hits(), hits + 1, "nothing else reached the upstream");
}

#[tokio::test]
async fn cors_preflight_passes_without_a_session_for_allowed_origins_only() {
    let Some(stack) = Stack::start(3600, |c| {
        sre_policy(c);
        c.cors = Some(
            serde_json::from_value(serde_json::json!({
                "allowedOrigins": ["https://app.example.com"], "allowedMethods": ["GET", "PUT"],
                "allowedHeaders": ["Content-Type"], "allowCredentials": true
            }))
            .unwrap(),
        );
    })
    .await
    else {
        return;
    };
    let gw = &stack.gateway;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(Method::OPTIONS, gw.url("/api/items"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    assert_eq!(ok.headers()["access-control-allow-methods"], "GET, PUT");

    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "not a preflight the gateway answers: sign-in required");
    assert!(refused.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{:?}", refused.headers());
    assert_eq!(stack.echo.hits(), 0);

    // A signed-in page's request from the allowed origin gets the headers
    // on the upstream's answer too.
    let mut agent = Agent::new();
    agent.sign_in(gw, "alice", "/").await;
    let reply =
        agent.send(Method::GET, &gw.url("/x"), Accept::Json, &[("origin", "https://app.example.com")], None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["access-control-allow-origin"], "https://app.example.com");
    let other = agent.send(Method::GET, &gw.url("/x"), Accept::Json, &[("origin", "https://evil.example")], None).await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn forwarding_options_reach_the_upstream() {
    let Some((stack, mut agent)) = signed_in(|c| {
        c.forward.id_token = true;
        c.forward.preserve_host = true;
        c.forward.header_names = Some(
            serde_json::from_value(serde_json::json!({
                "user": "X-Forwarded-User", "email": "X-Forwarded-Email", "groups": "X-Forwarded-Groups",
                "preferredUsername": "X-Forwarded-Preferred-Username", "userId": "X-Grafana-Uid"
            }))
            .unwrap(),
        );
    })
    .await
    else {
        return;
    };
    let gw = &stack.gateway;
    let echo = echoed(&mut agent, gw, "/x", &[("x-grafana-uid", "admin")]).await;

    assert_eq!(header(&echo, "x-forwarded-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-forwarded-preferred-username").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-forwarded-email").as_deref(), Some("alice@example.com"));
    assert!(header(&echo, "x-forwarded-groups").is_some_and(|g| g.split(',').any(|g| g == "sre")));
    assert_eq!(header(&echo, "x-grafana-uid").as_deref(), Some("alice"), "the client's spoofed value is gone");
    assert!(header(&echo, "x-auth-request-user").is_none(), "the chosen names replace the defaults");

    // The ID token, as the OP signed it for this client.
    let bearer = header(&echo, "authorization").expect("a bearer");
    let jwt = bearer.strip_prefix("Bearer ").expect("Bearer");
    let claims: Value = {
        use base64::Engine;
        let payload = jwt.split('.').nth(1).expect("a JWT");
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], common::CLIENT_ID);

    // preserveHost: the upstream sees the host the client asked for.
    let host = format!("127.0.0.1:{}", gw.base.port().unwrap());
    assert_eq!(header(&echo, "host").as_deref(), Some(host.as_str()));
}
