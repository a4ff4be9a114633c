//! Browser end to end: headless Chromium signs in through the real gateway
//! at the real OpenID Provider (oidc-provider) and reaches an echo
//! upstream.
//!
//! The policy in these tests lets in verified `example.com` addresses in
//! the `sre` group. Users (see `common::op::users`): alice passes; bob is
//! not in `sre`; eve's domain is `evil.org`; carol's email is unverified.

mod common;

use std::time::Duration;

use authgate::gateway::GatewayConfig;
use common::echo::header;
use common::{Browser, Echo, Gateway, Op, Stack, gateway};
use serde_json::json;

fn corp_policy(c: &mut GatewayConfig) {
    c.access.allowed_domains = vec!["example.com".into()];
    c.access.allowed_groups = vec!["sre".into()];
}

/// Starts OP + echo + gateway and a browser, or returns from the test
/// (SKIP) when a component is missing outside CI.
macro_rules! setup {
    ($ttl:expr) => {{
        let Some(stack) = Stack::start($ttl, corp_policy).await else {
            return;
        };
        let Some(browser) = Browser::start().await else {
            return;
        };
        (stack, browser)
    }};
}

async fn metric(gw: &Gateway, line_prefix: &str) -> f64 {
    let text = reqwest::get(gw.ops_url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(line_prefix)).map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn signs_in_lands_on_the_deep_link_and_upstream_gets_a_verifiable_bearer() {
    let (stack, browser) = setup!(3600);
    browser.goto(&stack.gateway.url("/deep/link?x=1&y=two")).await;
    // The gateway sent the browser to the OP's login form.
    let at_op = browser.url().await;
    assert_eq!(at_op.port(), stack.op.issuer.port(), "browser should be at the OP, is at {at_op}");
    browser.sign_in_at_op("alice").await;

    let echo = browser.echo().await;
    let landed = browser.url().await;
    assert_eq!(landed.path(), "/deep/link", "rd honoured");
    assert_eq!(landed.query(), Some("x=1&y=two"));
    assert_eq!(echo["path"], "/deep/link");
    assert_eq!(echo["query"], "x=1&y=two");
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev"));
    let bearer = header(&echo, "authorization").expect("Authorization header");
    let token = bearer.strip_prefix("Bearer ").expect("Bearer scheme");
    let claims = stack.op.verify_access_token(token).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], common::CLIENT_ID);
    // The gateway's own cookies never reach the upstream.
    let cookies = header(&echo, "cookie").unwrap_or_default();
    assert!(!cookies.contains(gateway::COOKIE_NAME), "upstream saw the session cookie: {cookies}");
    // The browser holds the session cookie, and userinfo describes the user.
    assert!(browser.cookie_names().await.iter().any(|n| n == gateway::COOKIE_NAME));
    let info = browser.fetch("/oauth2/userinfo", json!({"headers": {"accept": "application/json"}})).await;
    assert_eq!(info["status"], 200, "{info}");
    let info: serde_json::Value = serde_json::from_str(info["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        info,
        json!({"user": "alice@example.com", "email": "alice@example.com", "groups": ["sre", "dev"], "provider": "corp"})
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_from_a_disallowed_domain_gets_403_naming_their_domain() {
    let (stack, browser) = setup!(3600);
    browser.goto(&stack.gateway.url("/private")).await;
    browser.sign_in_at_op("eve").await;
    let reason = browser.text("#access-denied #reason").await;
    assert!(reason.contains("evil.org"), "the page names the user's domain: {reason}");
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains("example.com"), "the page must not reveal the allowed domains");
    assert!(
        !browser.cookie_names().await.iter().any(|n| n.starts_with(gateway::COOKIE_NAME)),
        "no session for a denied user"
    );
    assert_eq!(stack.echo.hits(), 0, "the upstream was never reached");
    assert_eq!(
        metric(&stack.gateway, r#"authgate_gateway_logins_total{provider="corp",result="domain_not_allowed"}"#).await,
        1.0
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverified_email_is_rejected() {
    let (stack, browser) = setup!(3600);
    browser.goto(&stack.gateway.url("/private")).await;
    browser.sign_in_at_op("carol").await;
    let reason = browser.text("#access-denied #reason").await;
    assert!(reason.contains("not verified"), "{reason}");
    assert_eq!(stack.echo.hits(), 0);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_groups_filter_denies_bob_and_admits_alice() {
    let (stack, browser) = setup!(3600);
    browser.goto(&stack.gateway.url("/private")).await;
    browser.sign_in_at_op("bob").await;
    let reason = browser.text("#access-denied #reason").await;
    assert!(reason.contains("not a member of an allowed group"), "{reason}");
    assert_eq!(stack.echo.hits(), 0);
    // "Sign in with another account" forces the OP's login form again.
    browser.click("#retry").await;
    browser.sign_in_at_op("alice").await;
    let echo = browser.echo().await;
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_ends_the_session() {
    let (stack, browser) = setup!(3600);
    browser.goto(&stack.gateway.url("/private")).await;
    browser.sign_in_at_op("alice").await;
    browser.echo().await;
    let ok = browser.fetch("/private", json!({"headers": {"accept": "application/json"}})).await;
    assert_eq!(ok["status"], 200, "signed in: {ok}");

    browser.goto(&stack.gateway.url("/oauth2/sign_out")).await;
    browser.text("#signed-out").await;
    assert!(
        !browser.cookie_names().await.iter().any(|n| n.starts_with(gateway::COOKIE_NAME)),
        "session cookie cleared"
    );
    // (The gateway's own pages forbid scripts from fetching; ask from a
    // plain JSON page of the same origin.)
    browser.goto(&stack.gateway.url("/oauth2/userinfo")).await;
    let api = browser.fetch("/private", json!({"headers": {"accept": "application/json"}})).await;
    assert_eq!(api["status"], 401, "API call after sign-out: {api}");
    let page = browser.fetch("/private", json!({"headers": {"accept": "text/html"}, "redirect": "manual"})).await;
    assert_eq!(page["type"], "opaqueredirect", "a page after sign-out redirects to sign in: {page}");
    // Signing in again asks for credentials.
    browser.goto(&stack.gateway.url("/oauth2/sign_out")).await;
    browser.click("#sign-in-again").await;
    browser.sign_in_at_op("alice").await;
    assert_eq!(header(&browser.echo().await, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_refreshes_the_access_token_without_a_new_login() {
    let (stack, browser) = setup!(5);
    browser.goto(&stack.gateway.url("/private")).await;
    browser.sign_in_at_op("alice").await;
    let first = header(&browser.echo().await, "authorization").unwrap();
    let first_claims = stack.op.verify_access_token(first.strip_prefix("Bearer ").unwrap()).await;
    assert_eq!(first_claims["exp"].as_i64().unwrap() - first_claims["iat"].as_i64().unwrap(), 5);

    tokio::time::sleep(Duration::from_secs(7)).await;
    browser.goto(&stack.gateway.url("/private?again=1")).await;
    let echo = browser.echo().await;
    assert_eq!(echo["query"], "again=1");
    let second = header(&echo, "authorization").unwrap();
    assert_ne!(first, second, "a new access token after expiry");
    let claims = stack.op.verify_access_token(second.strip_prefix("Bearer ").unwrap()).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        metric(&stack.gateway, r#"authgate_gateway_logins_total{provider="corp",result="success"}"#).await,
        1.0,
        "no second login"
    );
    assert!(metric(&stack.gateway, r#"authgate_gateway_token_refreshes_total{result="success"}"#).await >= 1.0);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_providers_show_a_chooser() {
    common::init();
    let port = common::free_port();
    let Some(op) = Op::with_two_clients(port).await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let echo = Echo::start().await;
    let mut config = gateway::config(
        port,
        &echo.url(),
        vec![
            gateway::oidc_provider(&op, "corp", "corp-client", "corp-secret"),
            gateway::oidc_provider(&op, "partner", "partner-client", "partner-secret"),
        ],
    );
    corp_policy(&mut config);
    let gw = Gateway::start(config).await;

    browser.goto(&gw.url("/reports?q=1")).await;
    assert!(browser.text("#provider-corp").await.contains("Sign in with 127.0.0.1"));
    browser.click("#provider-partner").await;
    browser.sign_in_at_op("alice").await;
    let seen = browser.echo().await;
    assert_eq!(seen["path"], "/reports");
    assert_eq!(seen["query"], "q=1");
    let info = browser.fetch("/oauth2/userinfo", json!({})).await;
    let info: serde_json::Value = serde_json::from_str(info["body"].as_str().unwrap()).unwrap();
    assert_eq!(info["provider"], "partner");
    browser.close().await;
}
