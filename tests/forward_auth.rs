//! Forward-auth: an ingress asks the gateway whether each request may pass.
//! Real nginx (`auth_request`), Traefik (`ForwardAuth`) and Chromium; Envoy's `ext_authz` contract
//! through the harness in `tests/fakes/envoy.rs` (no Envoy build here).

mod common;
mod fakes;

use std::time::Duration;

use authgate::api::ForwardAuth;
use authgate::gateway::config::GatewayConfig;
use http::{Method, StatusCode};
use url::Url;

use common::agent::{Accept, Agent};
use common::echo::{Echo, header, header_values, report};
use common::gateway::{self, Gateway};
use common::nginx::{self, Nginx};
use common::op::{self, Op, OpSettings};
use common::traefik::{self, Traefik};
use common::{CLIENT_ID, CLIENT_SECRET, Stack, free_port, require, sre_only};
use fakes::envoy::{self, ExtAuthz};

/// An OP, an upstream, and a forward-auth-only gateway whose external URL
/// is `public` (the ingress in front), trusting `trusted` to ask.
type Setup = Stack;

async fn setup(public: &str, access_token_ttl: u64, trusted: &str) -> Option<Setup> {
    setup_on(free_port(), public, access_token_ttl, trusted).await
}

/// [`setup`] with the gateway on `port`; an empty `public` means the
/// gateway's own URL (checks sent straight to it).
async fn setup_on(port: u16, public: &str, access_token_ttl: u64, trusted: &str) -> Option<Setup> {
    let own = format!("http://127.0.0.1:{port}");
    let public = if public.is_empty() { own.as_str() } else { public };
    let forward_auth_only = |c: &mut GatewayConfig| {
        c.upstream = None;
        c.forward_auth = Some(ForwardAuth { trusted_proxies: vec![trusted.into()] });
        sre_only(c);
    };
    Stack::start_at(port, public, access_token_ttl, forward_auth_only, &[]).await
}

fn port_of(gw: &Gateway) -> u16 {
    Url::parse(&gw.url("/")).unwrap().port().unwrap()
}

async fn behind_nginx(access_token_ttl: u64) -> Option<(Setup, Nginx)> {
    if !require("nginx (Debian's, with auth_request)", nginx::binary().is_some()) {
        return None;
    }
    let nginx_port = free_port();
    let s = setup(&format!("http://127.0.0.1:{nginx_port}"), access_token_ttl, "127.0.0.1/32").await?;
    let echo_port = s.echo.url().port().unwrap();
    let n = Nginx::start(nginx_port, port_of(&s.gateway), echo_port).await;
    Some((s, n))
}

/// Signs `user` in through the ingress at `base` without a browser; the
/// reply of the callback.
async fn sign_in_via(agent: &mut Agent, base: &str, user: &str, rd: &str) -> common::agent::Reply {
    let callback = agent.follow_to_callback(&format!("{base}/oauth2/start?rd={rd}"), user).await;
    agent.get(callback.as_str(), Accept::Html).await
}

#[tokio::test(flavor = "multi_thread")]
async fn through_nginx_a_browser_signs_in_and_the_upstream_gets_the_identity() {
    let Some((s, nginx)) = behind_nginx(3600).await else { return };
    let Some(browser) = common::browser::Browser::start().await else { return };
    browser.goto(&nginx.url("/private?x=1")).await;
    browser.sign_in_at_op("alice").await;
    let echo = browser.echo().await;
    assert_eq!(echo["path"], "/private", "{echo:#}\n{}", nginx.logs());
    assert_eq!(echo["query"], "x=1");
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"), "{echo:#}");
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert!(header(&echo, "x-auth-request-groups").is_some_and(|g| g.split(',').any(|g| g == "sre")));
    let token = header(&echo, "authorization").unwrap();
    let claims = s.op.verify_access_token(token.strip_prefix("Bearer ").unwrap()).await;
    assert_eq!(claims["sub"], "alice");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn through_nginx_an_api_call_without_a_session_gets_401_and_a_refused_user_403() {
    let Some((s, nginx)) = behind_nginx(3600).await else { return };
    let reply = Agent::new().get(&nginx.url("/api/data"), Accept::Json).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(s.echo.hits(), 0, "nothing reached the upstream");

    let mut bob = Agent::new();
    let denied = sign_in_via(&mut bob, &nginx.base, "bob", "/api/data").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let after = bob.get(&nginx.url("/api/data"), Accept::Json).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_nginx_a_refresh_during_the_check_reaches_the_browser() {
    let Some((s, nginx)) = behind_nginx(4).await else { return };
    let mut alice = Agent::new();
    let signed_in = sign_in_via(&mut alice, &nginx.base, "alice", "/api/first").await;
    assert_eq!(signed_in.status, StatusCode::FOUND, "{}\n{}", signed_in.body, s.gateway.logs());
    let first = alice.get(&nginx.url("/api/first"), Accept::Json).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first_token = header(&report(&first.body), "authorization").unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = alice.get(&nginx.url("/api/second"), Accept::Json).await;
    assert_eq!(second.status, StatusCode::OK, "{}\n{}", second.body, s.gateway.logs());
    assert!(
        second.set_cookies().iter().any(|c| c.name().starts_with(gateway::COOKIE_NAME) && !c.value().is_empty()),
        "the refreshed session cookie is relayed: {:?}",
        second.headers
    );
    let second_token = header(&report(&second.body), "authorization").unwrap();
    assert_ne!(first_token, second_token, "a new access token reached the upstream");
    let third = alice.get(&nginx.url("/api/third"), Accept::Json).await;
    assert_eq!(
        header(&report(&third.body), "authorization").unwrap(),
        second_token,
        "the browser kept the new session"
    );
    // nginx's auth subrequest keeps the original method: a POST is checked too.
    let post = alice.send(Method::POST, &nginx.url("/api/form"), Accept::Json, &[], Some(b"a=1".to_vec())).await;
    assert_eq!(post.status, StatusCode::OK, "{}\n{}", post.body, nginx.logs());
    assert_eq!(report(&post.body)["method"], "POST");
}

/// The filter as Envoy Gateway's `SecurityPolicy` with `extAuth` would set
/// it up: `Cookie` must be named in `headersToExtAuth`.
fn envoy_config(authz: String, upstream: String) -> envoy::Config {
    envoy::Config {
        authz,
        path_prefix: "/oauth2/ext_authz".into(),
        upstream,
        allowed_headers: vec!["cookie", "accept"],
        allowed_upstream_headers: vec![
            "x-auth-request-user",
            "x-auth-request-email",
            "x-auth-request-groups",
            "authorization",
        ],
        allowed_client_headers: vec!["location", "set-cookie", "content-type"],
        allowed_client_headers_on_success: vec!["set-cookie"],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn through_envoy_ext_authz_the_decision_and_the_headers() {
    // The filter must know the gateway, and the gateway the filter's URL:
    // bind the filter first, then start the gateway for that URL.
    let slot: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let public = std::sync::Arc::clone(&slot);
    let gw_port = free_port();
    let echo_for_filter = Echo::start().await;
    let filter = ExtAuthz::start(|base| {
        *public.lock().unwrap() = Some(base.to_owned());
        envoy_config(format!("http://127.0.0.1:{gw_port}"), echo_for_filter.url().to_string())
    })
    .await;
    let public = slot.lock().unwrap().clone().unwrap();
    common::init();
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&format!("{public}/oauth2/callback")])],
        ..OpSettings::default()
    })
    .await
    else {
        return;
    };
    let mut config = gateway::config(
        gw_port,
        &echo_for_filter.url(),
        vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)],
    );
    config.external_url = Url::parse(&public).unwrap();
    config.upstream = None;
    config.forward_auth = Some(ForwardAuth { trusted_proxies: vec!["127.0.0.1/32".into()] });
    sre_only(&mut config);
    let gw = Gateway::start(config).await;

    let api = Agent::new().get(&filter.url("/api/x"), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}\n{}", api.body, gw.logs());
    let browser = Agent::new().get(&filter.url("/app/page?y=2"), Accept::Html).await;
    assert_eq!(browser.status, StatusCode::FOUND, "{}", browser.body);
    let to = browser.location().unwrap();
    assert_eq!(to.path(), "/oauth2/start");
    assert_eq!(
        to.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).as_deref(),
        Some("/app/page?y=2")
    );
    assert_eq!(echo_for_filter.hits(), 0);

    // Sign-in itself goes to the gateway directly (a route for /oauth2/).
    let mut alice = Agent::new();
    let start = format!("{}?rd=/app/page", gw.url("/oauth2/start"));
    let callback = alice.follow_to_callback(&start, "alice").await;
    // The browser reaches the callback at the public URL; the route sends it on.
    let callback = gw.url(&format!("{}?{}", callback.path(), callback.query().unwrap_or_default()));
    let signed_in = alice.get(&callback, Accept::Html).await;
    assert_eq!(signed_in.status, StatusCode::FOUND, "{}\n{}", signed_in.body, gw.logs());
    // Cookies are kept per port; hand the session to the filter's port.
    let cookie = alice.cookie_header_for(Url::parse(&gw.url("/")).unwrap().port()).unwrap();
    let mut through = Agent::new();
    let reply =
        through.send(Method::PUT, &filter.url("/app/item?z=3"), Accept::Json, &[("cookie", &cookie)], None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}\n{}", reply.body, gw.logs());
    let echo = report(&reply.body);
    assert_eq!((echo["method"].as_str(), echo["path"].as_str()), (Some("PUT"), Some("/app/item")));
    assert_eq!(header_values(&echo, "x-auth-request-user"), ["alice@example.com"]);
    assert!(header(&echo, "authorization").is_some_and(|a| a.starts_with("Bearer ")));
}

/// Asks the gateway directly, as a proxy at 127.0.0.1 would.
async fn ask(gw: &Gateway, path: &str, accept: Accept, headers: &[(&str, &str)]) -> common::agent::Reply {
    Agent::new().send(Method::GET, &gw.url(path), accept, headers, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_peer_is_refused_whatever_it_names() {
    let Some(s) = setup("", 3600, "10.0.0.0/8").await else { return };
    let own = s.gateway.url("/private");
    for headers in [
        vec![("x-original-url", own.as_str())],
        vec![("x-forwarded-host", "127.0.0.1"), ("x-forwarded-uri", "/private")],
        vec![],
    ] {
        for path in ["/oauth2/auth", "/oauth2/verify", "/oauth2/ext_authz/private"] {
            let reply = ask(&s.gateway, path, Accept::Html, &headers).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {headers:?}: {}", reply.body);
            assert!(reply.location().is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_still_cannot_name_another_host_an_alias_or_a_trick() {
    let port = free_port();
    let Some(s) = setup_on(port, "", 3600, "127.0.0.1/32").await else { return };
    let host = format!("127.0.0.1:{port}");
    let refused = [
        vec![("x-original-url", "http://evil.example.com/private".to_owned())],
        vec![("x-forwarded-host", "evil.example.com".to_owned()), ("x-forwarded-uri", "/private".to_owned())],
        vec![("x-forwarded-host", host.clone()), ("x-forwarded-uri", "//evil.example.com/".to_owned())],
        vec![("x-forwarded-host", host.clone()), ("x-forwarded-uri", "/a/%2e%2e/b".to_owned())],
        vec![("x_original_url", "http://evil.example.com/".to_owned()), ("x-original-url", s.gateway.url("/"))],
        vec![
            ("x.forwarded.uri", "/x".to_owned()),
            ("x-forwarded-host", host.clone()),
            ("x-forwarded-uri", "/x".to_owned()),
        ],
    ];
    for headers in refused {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = ask(&s.gateway, "/oauth2/verify", Accept::Html, &h).await;
        assert!(
            matches!(reply.status, StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST),
            "{h:?}: {} {}",
            reply.status,
            reply.body
        );
        assert!(reply.location().is_none(), "never a redirect for a refused check: {h:?}");
    }
    let envoy_evil = ask(&s.gateway, "/oauth2/ext_authz/private", Accept::Html, &[("host", "evil.example.com")]).await;
    assert_eq!(envoy_evil.status, StatusCode::FORBIDDEN, "{}", envoy_evil.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_redirect_stays_on_the_policys_origin() {
    let port = free_port();
    let Some(s) = setup_on(port, "", 3600, "127.0.0.1/32").await else { return };
    let host = format!("127.0.0.1:{port}");
    // A query string naming another URL, a prefix header, RFC 7239: none of
    // them moves where the browser is sent back to.
    let reply = ask(
        &s.gateway,
        "/oauth2/verify",
        Accept::Html,
        &[
            ("x-forwarded-host", &host),
            ("x-forwarded-uri", "/x?rd=https://evil.example.com/#frag"),
            ("x-forwarded-prefix", "https://evil.example.com"),
            ("forwarded", "host=evil.example.com;proto=https"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let to = reply.location().unwrap();
    assert_eq!(to.host_str(), Some("127.0.0.1"));
    assert_eq!(to.port(), Some(port));
    let rd = to.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).unwrap();
    assert_eq!(rd, "/x?rd=https://evil.example.com/");
    // And the nginx contract never redirects at all.
    let nginx = ask(&s.gateway, "/oauth2/auth", Accept::Html, &[("x-original-url", &s.gateway.url("/x"))]).await;
    assert_eq!(nginx.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_traefik_the_redirecting_check_signs_a_browser_in() {
    if !require("traefik (built by scripts/setup.sh)", traefik::binary().is_some()) {
        return;
    }
    let port = free_port();
    let Some(s) = setup(&format!("http://127.0.0.1:{port}"), 3600, "127.0.0.1/32").await else { return };
    let t = Traefik::start(port, port_of(&s.gateway), s.echo.url().port().unwrap(), gateway::COOKIE_NAME).await;

    let api = Agent::new().get(&t.url("/api/x"), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "an API client is not redirected: {}", api.body);
    let Some(browser) = common::browser::Browser::start().await else { return };
    browser.goto(&t.url("/dash?tab=2")).await;
    browser.sign_in_at_op("alice").await;
    let echo = browser.echo().await;
    assert_eq!((echo["path"].as_str(), echo["query"].as_str()), (Some("/dash"), Some("tab=2")), "{echo:#}");
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"), "{}", t.logs());
    assert!(header(&echo, "authorization").is_some_and(|a| a.starts_with("Bearer ")));
    browser.close().await;
}
