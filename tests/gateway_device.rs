//! The device flow (RFC 8628) end to end: the real gateway with the real
//! OpenID Provider for the approving sign-in, the echo upstream, an
//! independent RFC 8628 client (the `oauth2` crate), the `authgate login`
//! CLI with Chromium approving, and the refused cases. Replicas, reloads
//! and the comparison with oidc-provider: `gateway_device_shared.rs`.

mod common;

use std::time::Duration;

use common::agent::hidden_inputs;
use common::device::*;
use common::echo::header;
use common::{Accept, Agent, Stack};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_oauth2_crate_runs_the_flow_and_its_token_reaches_the_upstream() {
    use oauth2::basic::BasicClient;
    use oauth2::{ClientId, DeviceAuthorizationUrl, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl};

    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    // Discovery (RFC 8414).
    let meta: Value =
        reqwest::get(stack.gateway.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], stack.gateway.url("").trim_end_matches('/'));
    assert_eq!(meta["grant_types_supported"], serde_json::json!([GRANT]));
    let client = BasicClient::new(ClientId::new(CLIENT.into()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(meta["device_authorization_endpoint"].as_str().unwrap().into()).unwrap(),
        )
        .set_token_uri(TokenUrl::new(meta["token_endpoint"].as_str().unwrap().into()).unwrap());
    let http = reqwest::Client::new();
    let send = |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let (parts, body) = req.into_parts();
            let mut r = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
            r = r.timeout(Duration::from_secs(10));
            let resp = r.send().await?;
            let mut out = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            Ok::<_, reqwest::Error>(out.body(resp.bytes().await?.to_vec()).unwrap())
        }
    };
    let details: StandardDeviceAuthorizationResponse =
        client.exchange_device_code().request_async(&send).await.expect("device authorization");
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {user_code}");
    assert!(details.verification_uri().as_str().ends_with("/oauth2/device"));
    // A person approves while the client polls.
    let approver = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut agent = signed_in(&stack, "alice").await;
        let done = decide(&mut agent, &stack, &user_code, "approve").await;
        assert_eq!(done.status, StatusCode::OK);
        assert!(done.body.contains("device-approved"), "{}", done.body);
    };
    let polling = client.exchange_device_access_token(&details).request_async(
        &send,
        tokio::time::sleep,
        Some(Duration::from_secs(30)),
    );
    let (token, ()) = tokio::join!(polling, approver);
    let token = token.expect("a device token");
    let access = token.access_token().secret();
    assert!(access.starts_with("agd_"));
    let r = reqwest::Client::new().get(stack.gateway.url("/api/x")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echo = common::echo::report(&r.text().await.unwrap());
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "authorization"), None, "the device token stays at the gateway");
    assert_eq!(metric(&stack, "authgate_gateway_device_flow_total{result=\"issued\"} ").await, 1.0);
    // A tampered token is refused, not ignored.
    let tampered = format!("{}A", &access[..access.len() - 1]);
    let r = reqwest::Client::new().get(stack.gateway.url("/api/x")).bearer_auth(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_without_a_session_sends_to_sign_in_and_approves_nothing() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let codes = device_code(&stack).await;
    let user_code = codes["user_code"].as_str().unwrap();
    let mut anonymous = Agent::new();
    let page = anonymous.get(&approve_url(&stack, user_code), Accept::Html).await;
    assert_eq!(page.status, StatusCode::FOUND);
    let to = page.location().unwrap();
    assert_eq!(to.path(), "/oauth2/start");
    let rd = to.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v.into_owned());
    assert_eq!(rd.as_deref(), Some(format!("/oauth2/device?user_code={user_code}").as_str()), "and back");
    // A forged form post without a session decides nothing either.
    let posted = post_form(
        &mut anonymous,
        &stack.gateway.url("/oauth2/device"),
        &[("user_code".into(), user_code.into()), ("action".into(), "approve".into())],
    )
    .await;
    assert_eq!(posted.status, StatusCode::FOUND);
    let (status, body) = poll(&stack, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("authorization_pending")));
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_without_the_csrf_token_is_forbidden() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let codes = device_code(&stack).await;
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let mut alice = signed_in(&stack, "alice").await;
    let url = stack.gateway.url("/oauth2/device");
    let without = [("user_code".to_owned(), user_code.clone()), ("action".to_owned(), "approve".to_owned())];
    assert_eq!(post_form(&mut alice, &url, &without).await.status, StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let mut bob = signed_in(&stack, "alice").await;
    let page = bob.get(&approve_url(&stack, &user_code), Accept::Html).await;
    let mut borrowed = hidden_inputs(&page.body);
    borrowed.push(("action".into(), "approve".into()));
    assert_eq!(post_form(&mut alice, &url, &borrowed).await.status, StatusCode::FORBIDDEN);
    let (_, body) = poll(&stack, codes["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "authorization_pending");
    assert!(metric(&stack, "authgate_gateway_device_flow_total{result=\"csrf\"} ").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_user_codes_is_rate_limited() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let codes = device_code(&stack).await;
    let mut mallory = signed_in(&stack, "alice").await;
    let real = codes["user_code"].as_str().unwrap();
    let wrong = if real.starts_with('B') { "CCCC-CCCC" } else { "BBBB-BBBB" };
    for i in 0..authgate::gateway::device::GUESSES_PER_IP {
        let r = mallory.get(&approve_url(&stack, wrong), Accept::Html).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "guess {i}");
    }
    let r = mallory.get(&approve_url(&stack, wrong), Accept::Html).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Even the right code now waits out the window.
    let r = mallory.get(&approve_url(&stack, real), Accept::Html).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(metric(&stack, "authgate_gateway_device_flow_total{result=\"rate_limited\"} ").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_polls_of_an_approved_code_get_one_token() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let codes = device_code(&stack).await;
    let mut alice = signed_in(&stack, "alice").await;
    let done = decide(&mut alice, &stack, codes["user_code"].as_str().unwrap(), "approve").await;
    assert_eq!(done.status, StatusCode::OK);
    let device_code = codes["device_code"].as_str().unwrap();
    let polls = futures::future::join_all((0..8).map(|_| poll(&stack, device_code))).await;
    let issued: Vec<_> = polls.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
    assert_eq!(issued.len(), 1, "{polls:?}");
    assert!(issued[0].1["access_token"].as_str().unwrap().starts_with("agd_"));
    for (status, body) in polls.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_expired_token_and_cannot_be_approved() {
    let Some(stack) = Stack::start(3600, with_device_flow(2, 1)).await else { return };
    let codes = device_code(&stack).await;
    assert_eq!(codes["expires_in"], 2);
    let mut alice = signed_in(&stack, "alice").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = alice.get(&approve_url(&stack, codes["user_code"].as_str().unwrap()), Accept::Html).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (status, body) = poll(&stack, codes["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("expired_token")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_is_access_denied_and_fast_polls_slow_down() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 5)).await else { return };
    let codes = device_code(&stack).await;
    assert_eq!(codes["interval"], 5);
    let device_code = codes["device_code"].as_str().unwrap();
    assert_eq!(poll(&stack, device_code).await.1["error"], "authorization_pending");
    assert_eq!(poll(&stack, device_code).await.1["error"], "slow_down");
    let mut alice = signed_in(&stack, "alice").await;
    let done = decide(&mut alice, &stack, codes["user_code"].as_str().unwrap(), "deny").await;
    assert!(done.body.contains("device-denied"));
    let (status, body) = poll(&stack, device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("access_denied")));
    assert_eq!(poll(&stack, device_code).await.1["error"], "invalid_grant", "and it is gone");
    // An unknown grant type or client is refused as RFC 6749 says.
    let r = reqwest::Client::new()
        .post(stack.gateway.url("/oauth2/token"))
        .form(&[("grant_type", "password"), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_device_flow_its_endpoints_are_not_served() {
    let Some(stack) = Stack::start(3600, common::sre_only).await else { return };
    let r = reqwest::Client::new()
        .post(stack.gateway.url("/oauth2/device/code"))
        .form(&[("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    // Proxied as any path is: sign-in wanted, never a device code.
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.text().await.unwrap().contains("device_code"));
    let r = reqwest::get(stack.gateway.url("/.well-known/oauth-authorization-server")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no metadata: the upstream's path, behind sign-in");
}

fn authgate(config_home: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.env("XDG_CONFIG_HOME", config_home).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY").kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_logs_in_with_chromium_approving_and_its_token_reaches_the_upstream() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncBufReadExt;

    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let Some(browser) = common::Browser::start().await else { return };
    let home = tempfile::tempdir().unwrap();
    let url = stack.gateway.url("");
    let mut login = authgate(home.path())
        .args(["login", &url, "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("authgate login");
    let mut lines = tokio::io::BufReader::new(login.stderr.take().unwrap()).lines();
    let (mut code, mut complete) = (None, None);
    while complete.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("login prints the code")
            .unwrap()
            .expect("login exited early");
        if let Some(c) = line.strip_prefix("    ") {
            code = Some(c.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("(or open ") {
            complete = Some(u.trim_end_matches(')').to_owned());
        }
    }
    let code = code.expect("the code line");
    let complete = complete.unwrap();
    assert!(complete.ends_with(&format!("user_code={code}")), "{complete}");
    // Chromium opens the approval link, signs in at the OP, comes back.
    browser.goto(&complete).await;
    browser.sign_in_at_op("alice").await;
    assert_eq!(browser.text("#code").await, code);
    assert_eq!(browser.text("#client").await, CLIENT);
    assert_eq!(browser.text("#ip").await, "127.0.0.1");
    assert!(browser.text("#agent").await.starts_with("authgate-cli/"));
    browser.click("#approve").await;
    // Waits for the next page (its own id), not the old one's heading.
    assert_eq!(browser.text("main#device-approved h1").await, "Device approved");
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait()).await.expect("login finishes").unwrap();
    assert!(status.success(), "login failed");
    browser.close().await;

    let file = home.path().join("authgate").join("tokens.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let out = authgate(home.path()).args(["token", &url]).output().await.unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("agd_"), "{token}");
    let r = reqwest::Client::new().get(stack.gateway.url("/cli")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echo = common::echo::report(&r.text().await.unwrap());
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev"));
    // Logged out, `token` fails.
    assert!(authgate(home.path()).args(["logout", &url]).status().await.unwrap().success());
    let out = authgate(home.path()).args(["token", &url]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("authgate login"));
}

/// The guess limit counts per client as the trusted proxies name it, and
/// an untrusted `X-Forwarded-For` does not reset it.
#[tokio::test(flavor = "multi_thread")]
async fn the_guess_limit_follows_the_client_a_trusted_proxy_names() {
    let Some(stack) = Stack::start(3600, |c| {
        with_device_flow(600, 1)(c);
        c.forward.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
    else {
        return;
    };
    let codes = device_code(&stack).await;
    let wrong = if codes["user_code"].as_str().unwrap().starts_with('B') { "CCCC-CCCC" } else { "BBBB-BBBB" };
    let mut agent = signed_in(&stack, "alice").await;
    let url = approve_url(&stack, wrong);
    for _ in 0..authgate::gateway::device::GUESSES_PER_IP {
        let r = agent.send(reqwest::Method::GET, &url, Accept::Html, &[("x-forwarded-for", "10.0.0.1")], None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let r = agent.send(reqwest::Method::GET, &url, Accept::Html, &[("x-forwarded-for", "10.0.0.1")], None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = agent.send(reqwest::Method::GET, &url, Accept::Html, &[("x-forwarded-for", "10.0.0.2")], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another client behind the proxy is not locked out");

    // Without trusted proxies the header is the caller's word and counts for nothing.
    let Some(plain) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let mut agent = signed_in(&plain, "alice").await;
    let url = approve_url(&plain, wrong);
    for i in 0..authgate::gateway::device::GUESSES_PER_IP {
        let xff = format!("10.0.1.{i}");
        let r = agent.send(reqwest::Method::GET, &url, Accept::Html, &[("x-forwarded-for", &xff)], None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let r = agent.send(reqwest::Method::GET, &url, Accept::Html, &[("x-forwarded-for", "10.0.9.9")], None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// One client cannot fill the store with device authorizations.
#[tokio::test(flavor = "multi_thread")]
async fn device_authorizations_are_limited_per_client() {
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let http = reqwest::Client::new();
    for _ in 0..authgate::gateway::device::AUTHORIZATIONS_PER_IP {
        let r =
            http.post(stack.gateway.url("/oauth2/device/code")).form(&[("client_id", CLIENT)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = http.post(stack.gateway.url("/oauth2/device/code")).form(&[("client_id", CLIENT)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "slow_down");
    let r = http.post(stack.gateway.url("/oauth2/device/code")).send().await.unwrap();
    assert_ne!(r.status(), StatusCode::OK, "a client_id is required");
}
