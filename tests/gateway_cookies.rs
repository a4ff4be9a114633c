//! Cookies and the login flow (issue: gateway hardening, items 12–18):
//! no lock-out through foreign cookies, long deep links or piled-up login
//! attempts; cookies that reach the whole base path; `rd` under it; no
//! clearing of another policy's session; config that reaches a cookie
//! attribute validated before the gateway starts.

mod common;

use common::sre_only;

use authgate::gateway::GatewayConfig;
use authgate::gateway::config::Redacted;
use common::echo::header;
use common::{Accept, Agent, Browser, Echo, Gateway, Op, OpSettings, Stack, gateway, op};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use url::Url;

fn flow_cookies(agent: &Agent) -> usize {
    agent.jar.keys().filter(|k| k.starts_with("_authgate_flow_")).count()
}

#[tokio::test]
async fn a_non_ascii_cookie_from_a_sibling_does_not_lock_the_user_out() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let mut line = b"pref=\xc3\xbcber; ".to_vec();
    line.extend_from_slice(agent.cookie_header().unwrap().as_bytes());
    line.extend_from_slice(b"; theme=\xff");
    let reply = agent
        .http()
        .get(stack.gateway.url("/x"))
        .header("accept", "application/json")
        .header(COOKIE, reqwest::header::HeaderValue::from_bytes(&line).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK, "the session still counts");
    let echo: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    let cookies = header(&echo, "cookie").unwrap_or_default();
    assert!(!cookies.contains(gateway::COOKIE_NAME), "the session cookie reached the upstream: {cookies}");
    assert!(cookies.contains("pref="), "foreign cookies are passed on: {cookies}");
}

#[tokio::test]
async fn a_very_long_deep_link_still_finishes_login() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut agent = Agent::new();
    let rd = format!("/report?q={}", "x".repeat(3000));
    let mut start = Url::parse(&stack.gateway.url("/oauth2/start")).unwrap();
    start.query_pairs_mut().append_pair("rd", &rd);
    let reply = agent.get(start.as_str(), Accept::Html).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    for c in reply.headers.get_all(SET_COOKIE) {
        assert!(c.len() <= 4096, "a {}-byte cookie is more than a browser keeps", c.len());
    }
    let callback = agent.follow_to_callback(reply.location().unwrap().as_str(), "alice").await;
    let done = agent.get(callback.as_str(), Accept::Html).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert_eq!(done.raw_location().as_deref(), Some("/"), "too long for the flow: the base path instead");
    assert_eq!(agent.get(&stack.gateway.url("/x"), Accept::Json).await.status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_login_starts_do_not_pile_up_flow_cookies() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut agent = Agent::new();
    for _ in 0..30 {
        let reply = agent.get(&stack.gateway.url("/oauth2/start?rd=/x"), Accept::Html).await;
        assert_eq!(reply.status, StatusCode::FOUND);
    }
    assert!(flow_cookies(&agent) <= 4, "{} flow cookies after 30 starts", flow_cookies(&agent));
    // The newest attempt still finishes.
    let reply = agent.sign_in(&stack.gateway, "alice", "/x").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    assert_eq!(agent.get(&stack.gateway.url("/x"), Accept::Json).await.status, StatusCode::OK);
}

/// OP, echo and gateway with the external URL's path `/app` (no trailing
/// slash), the OP knowing its callback.
async fn app_stack(base: &str) -> Option<(Op, Echo, Gateway)> {
    common::init();
    let port = common::free_port();
    let callback = format!("http://127.0.0.1:{port}{}/oauth2/callback", base.trim_end_matches('/'));
    let op = Op::start(OpSettings {
        clients: vec![op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&callback])],
        ..OpSettings::default()
    })
    .await?;
    let echo = Echo::start().await;
    let mut config = gateway::config(
        port,
        &echo.url(),
        vec![gateway::oidc_provider(&op, "corp", common::CLIENT_ID, common::CLIENT_SECRET)],
    );
    config.external_url = Url::parse(&format!("http://127.0.0.1:{port}{base}")).unwrap();
    sre_only(&mut config);
    let gw = Gateway::start(config).await;
    Some((op, echo, gw))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_path_without_a_trailing_slash_does_not_loop() {
    let Some((_op, _echo, gw)) = app_stack("/app").await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.goto(&gw.url("/app")).await;
    browser.sign_in_at_op("alice").await;
    let echo = browser.echo().await;
    assert_eq!(echo["path"], "/app", "landed on /app itself");
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    // And again, with the session alone.
    browser.goto(&gw.url("/app")).await;
    assert_eq!(browser.echo().await["path"], "/app");
    browser.close().await;
}

#[tokio::test]
async fn post_login_targets_stay_under_the_base_path() {
    let Some((_op, echo, gw)) = app_stack("/app/").await else {
        return;
    };
    for (rd, landing) in [("/other", "/app/"), ("/app/../admin", "/app/"), ("/app/report?x=1", "/app/report?x=1")] {
        let mut agent = Agent::new();
        let mut start = Url::parse(&gw.url("/app/oauth2/start")).unwrap();
        start.query_pairs_mut().append_pair("rd", rd);
        let callback = agent.follow_to_callback(start.as_str(), "alice").await;
        let done = agent.get(callback.as_str(), Accept::Html).await;
        assert_eq!(done.raw_location().as_deref(), Some(landing), "rd={rd}: {}", done.body);
        let sign_out = agent.get(&format!("{}?rd={}", gw.url("/app/oauth2/sign_out"), "%2Fother"), Accept::Html).await;
        assert_ne!(sign_out.raw_location().as_deref(), Some("/other"), "sign-out rd stays under the base path too");
    }
    drop(echo);
}

#[tokio::test]
async fn another_policys_cookie_of_the_same_name_is_left_alone() {
    let Some(a) = Stack::start(3600, sre_only).await else {
        return;
    };
    let Some(b) = Stack::start(3600, sre_only).await else {
        return;
    };
    assert_eq!(
        a.gateway.config.as_ref().unwrap().session.cookie_name,
        b.gateway.config.as_ref().unwrap().session.cookie_name
    );
    let mut agent = Agent::new();
    agent.sign_in(&a.gateway, "alice", "/").await;
    let cookie = agent.cookie_header().unwrap();
    // B cannot decrypt A's cookie (another key): it asks for sign-in but
    // must not delete what is not its own.
    for accept in ["application/json", "text/html"] {
        let reply = agent
            .http()
            .get(b.gateway.url("/x"))
            .header("accept", accept)
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert!(matches!(reply.status(), StatusCode::UNAUTHORIZED | StatusCode::FOUND), "{}", reply.status());
        let cleared: Vec<_> =
            reply.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(
            !cleared.iter().any(|c| c.starts_with(&format!("{}=", gateway::COOKIE_NAME))),
            "B cleared A's session: {cleared:?}"
        );
        let signed_out =
            agent.http().get(b.gateway.url("/oauth2/sign_out")).header(COOKIE, &cookie).send().await.unwrap();
        let cleared: Vec<_> =
            signed_out.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(cleared.is_empty(), "sign-out at B cleared A's session: {cleared:?}");
    }
    // A still accepts it.
    assert_eq!(agent.get(&a.gateway.url("/x"), Accept::Json).await.status, StatusCode::OK);
}

#[tokio::test]
async fn config_that_reaches_a_cookie_attribute_is_validated_at_start() {
    common::init();
    let echo = Echo::start().await;
    let base = || {
        let mut c = gateway::config(common::free_port(), &echo.url(), vec![]);
        c.authentication = authgate::gateway::config::Authentication::Disabled;
        c
    };
    let weak = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [b'a'; 64]);
    type Tweak = Box<dyn Fn(&mut GatewayConfig)>;
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "attribute injection",
            Box::new(|c| c.session.cookie_domain = Some("example.com; Path=/; HttpOnly=false".into())),
            "cookie domain must be a bare hostname",
        ),
        ("control character", Box::new(|c| c.session.cookie_domain = Some("exa\u{7}mple.com".into())), "cookie domain"),
        ("zero lifetime", Box::new(|c| c.session.ttl_seconds = 0), "session lifetime"),
        ("key without entropy", Box::new(move |c| c.session.keys = vec![Redacted::new(weak.clone())]), "is not random"),
        ("__Host- over http", Box::new(|c| c.session.cookie_name = "__Host-ag".into()), "needs an https://"),
    ];
    for (what, tweak, expected) in cases {
        let mut config = base();
        tweak(&mut config);
        let (status, log) = gateway::run_expecting_failure(&config).await;
        assert!(!status.success(), "{what}: the gateway started");
        assert!(log.contains(expected), "{what}: {log}");
        assert!(!log.contains("panicked"), "{what}: {log}");
    }
}
