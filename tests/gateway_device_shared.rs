//! The device flow where state is shared: two gateway replicas over
//! Redis, a config reload, the Redis store itself; and the gateway's
//! answers next to oidc-provider's own RFC 8628 implementation, driven by
//! the same client.

mod common;

use std::time::Duration;

use common::agent::hidden_inputs;
use common::device::*;
use common::echo::header;
use common::{Accept, Agent, Stack};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_a_code_approved_on_one_replica_is_redeemed_once_on_another() {
    use common::{CLIENT_ID, CLIENT_SECRET, Echo, Gateway, Op, OpSettings, free_port, gateway, op};

    common::init();
    let Some(redis) = common::redis::Redis::start().await else { return };
    let ports = [free_port(), free_port()];
    let public = format!("http://127.0.0.1:{}", ports[0]);
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&format!("{public}/oauth2/callback")])],
        ..OpSettings::default()
    })
    .await
    else {
        return;
    };
    let echo = Echo::start().await;
    let mut config =
        gateway::config(ports[0], &echo.url(), vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)]);
    with_device_flow(600, 1)(&mut config);
    config.session.store = authgate::contract::session::StoreConfig::Redis(redis.config());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config.to_yaml().unwrap()).unwrap();
    let one = Gateway::start_from_file(&path, ports[0], &[]).await;
    let two = Gateway::start_from_file(&path, ports[1], &[]).await;
    let http = reqwest::Client::new();
    let codes: Value = http
        .post(one.url("/oauth2/device/code"))
        .form(&[("client_id", CLIENT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device_code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    let poll_at = |gw: &Gateway| {
        http.post(gw.url("/oauth2/token"))
            .form(&[("grant_type", GRANT), ("device_code", device_code), ("client_id", CLIENT)])
            .send()
    };
    let pending: Value = poll_at(&two).await.unwrap().json().await.unwrap();
    assert_eq!(pending["error"], "authorization_pending", "the second replica knows the code");
    // Approved on the first replica.
    let mut alice = Agent::new();
    assert!(alice.sign_in(&one, "alice", "/").await.status.is_redirection());
    let page = alice.get(&format!("{}?user_code={user_code}", one.url("/oauth2/device")), Accept::Html).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.describe());
    let mut form = hidden_inputs(&page.body);
    form.push(("action".into(), "approve".into()));
    assert_eq!(post_form(&mut alice, &one.url("/oauth2/device"), &form).await.status, StatusCode::OK);
    // Polled on both at once: one token in all.
    let polls = futures::future::join_all((0..8).map(|i| poll_at(if i % 2 == 0 { &one } else { &two }))).await;
    let mut tokens = Vec::new();
    for r in polls {
        let r = r.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status == StatusCode::OK {
            tokens.push(body["access_token"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    assert_eq!(tokens.len(), 1);
    // Either replica accepts it.
    for gw in [&one, &two] {
        let r = http.get(gw.url("/r")).bearer_auth(&tokens[0]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let echo = common::echo::report(&r.text().await.unwrap());
        assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    }
}

/// The `oauth2` crate's device client against `device_url`/`token_url`:
/// the error codes of each poll (observed on the wire) and the outcome,
/// polling for at most `within`.
async fn oauth2_device_run(
    device_url: &str,
    token_url: &str,
    client_id: &str,
    between: impl AsyncFnOnce(&str),
    within: Duration,
) -> (Vec<String>, Result<String, String>) {
    use oauth2::basic::BasicClient;
    use oauth2::{
        ClientId, DeviceAuthorizationUrl, RequestTokenError, StandardDeviceAuthorizationResponse, TokenResponse,
        TokenUrl,
    };
    let client = BasicClient::new(ClientId::new(client_id.into()))
        .set_device_authorization_url(DeviceAuthorizationUrl::new(device_url.into()).unwrap())
        .set_token_uri(TokenUrl::new(token_url.into()).unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let token_url = token_url.to_owned();
    let send = |req: oauth2::HttpRequest| {
        let (http, seen, token_url) = (http.clone(), seen.clone(), token_url.clone());
        async move {
            let (parts, body) = req.into_parts();
            let url = parts.uri.to_string();
            let resp = http.request(parts.method, &url).headers(parts.headers).body(body).send().await?;
            let mut out = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let bytes = resp.bytes().await?.to_vec();
            if url == token_url
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                && let Some(e) = v["error"].as_str()
            {
                seen.lock().unwrap().push(e.to_owned());
            }
            Ok::<_, reqwest::Error>(out.body(bytes).unwrap())
        }
    };
    let details: StandardDeviceAuthorizationResponse =
        client.exchange_device_code().request_async(&send).await.expect("device authorization");
    let complete = details.verification_uri_complete().map(|u| u.secret().clone()).expect("verification_uri_complete");
    between(&complete).await;
    let outcome = client
        .exchange_device_access_token(&details)
        .request_async(&send, tokio::time::sleep, Some(within))
        .await
        .map(|t| t.access_token().secret().clone())
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => r.error().to_string(),
            other => format!("{other:?}"),
        });
    let seen = seen.lock().unwrap().clone();
    (seen, outcome)
}

/// oidc-provider's own RFC 8628 implementation and the gateway's, driven
/// by the same client: both say `authorization_pending` before a decision
/// and `access_denied` after a denial.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_answers_pending_and_denied_as_oidc_provider_does() {
    let op_client = serde_json::json!({
        "client_id": "op-device",
        "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
        "token_endpoint_auth_method": "none",
        "response_types": [],
    });
    let Some(stack) = Stack::start(3600, with_device_flow(600, 1)).await else { return };
    let Some(op) = common::Op::start(common::OpSettings { clients: vec![op_client], ..Default::default() }).await
    else {
        return;
    };
    let Some(browser) = common::Browser::start().await else { return };
    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", op.issuer.as_str().trim_end_matches('/')))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let op_device = discovery["device_authorization_endpoint"].as_str().expect("the OP serves the device flow");
    let op_token = discovery["token_endpoint"].as_str().unwrap();
    let meta: Value =
        reqwest::get(stack.gateway.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
    let gw_device = meta["device_authorization_endpoint"].as_str().unwrap();
    let gw_token = meta["token_endpoint"].as_str().unwrap();

    // Nobody decides: pending, until the client gives up.
    let nothing = async |_: &str| {};
    let (op_seen, _) = oauth2_device_run(op_device, op_token, "op-device", nothing, Duration::from_secs(2)).await;
    let (gw_seen, _) = oauth2_device_run(gw_device, gw_token, CLIENT, nothing, Duration::from_secs(2)).await;
    assert_eq!(op_seen.first().map(String::as_str), Some("authorization_pending"), "{op_seen:?}");
    assert_eq!(gw_seen.first().map(String::as_str), Some("authorization_pending"), "{gw_seen:?}");

    // Denied: at the OP with its Abort button, at the gateway with Deny.
    let abort_at_op = async |complete: &str| {
        browser.goto(complete).await;
        browser.click("button[name=abort]").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, op_outcome) =
        oauth2_device_run(op_device, op_token, "op-device", abort_at_op, Duration::from_secs(20)).await;
    let deny_at_gateway = async |complete: &str| {
        let code =
            url::Url::parse(complete).unwrap().query_pairs().find(|(k, _)| k == "user_code").unwrap().1.into_owned();
        let mut alice = signed_in(&stack, "alice").await;
        assert_eq!(decide(&mut alice, &stack, &code, "deny").await.status, StatusCode::OK);
    };
    let (_, gw_outcome) =
        oauth2_device_run(gw_device, gw_token, CLIENT, deny_at_gateway, Duration::from_secs(20)).await;
    assert_eq!(op_outcome, Err("access_denied".to_owned()));
    assert_eq!(gw_outcome, op_outcome);
    browser.close().await;
}

/// Pending codes outlive a config reload (they are kept in the state
/// reloads share); a SessionRevocation of the approving user, applied by a
/// reload, ends the device token like a session; switching the device
/// flow off refuses every device token.
#[tokio::test(flavor = "multi_thread")]
async fn device_tokens_end_with_a_revocation_and_codes_survive_a_reload() {
    use authgate::contract::session::UserRevocation;
    use common::projected::{Projected, wait_for_reloads};
    use common::{CLIENT_ID, CLIENT_SECRET, Echo, Op, OpSettings, free_port, gateway, op};

    common::init();
    let port = free_port();
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&format!("http://127.0.0.1:{port}/oauth2/callback")])],
        ..OpSettings::default()
    })
    .await
    else {
        return;
    };
    let echo = Echo::start().await;
    let mut config =
        gateway::config(port, &echo.url(), vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)]);
    with_device_flow(600, 1)(&mut config);
    let mut file = Projected::new(&config);
    let gw = file.start(&config, &[]).await;
    let at = |path: &str| gw.url(path);
    let http = reqwest::Client::new();
    let codes: Value =
        http.post(at("/oauth2/device/code")).form(&[("client_id", CLIENT)]).send().await.unwrap().json().await.unwrap();
    config.public_paths = vec!["/public".into()];
    file.write_config(&config);
    wait_for_reloads(&gw, "accepted", 1).await;

    let mut alice = Agent::new();
    assert!(alice.sign_in(&gw, "alice", "/").await.status.is_redirection());
    let page = alice
        .get(&format!("{}?user_code={}", at("/oauth2/device"), codes["user_code"].as_str().unwrap()), Accept::Html)
        .await;
    assert_eq!(page.status, StatusCode::OK, "the code survived the reload: {}", page.describe());
    let mut form = hidden_inputs(&page.body);
    form.push(("action".into(), "approve".into()));
    assert_eq!(post_form(&mut alice, &at("/oauth2/device"), &form).await.status, StatusCode::OK);
    let token: Value = http
        .post(at("/oauth2/token"))
        .form(&[("grant_type", GRANT), ("device_code", codes["device_code"].as_str().unwrap()), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let get = || http.get(at("/x")).bearer_auth(&token).send();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    config.session.revocations =
        vec![UserRevocation { user: Some("alice@example.com".into()), email: None, before: now }];
    file.write_config(&config);
    wait_for_reloads(&gw, "accepted", 2).await;
    let r = get().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));

    config.session.revocations.clear();
    file.write_config(&config);
    wait_for_reloads(&gw, "accepted", 3).await;
    assert_eq!(get().await.unwrap().status(), StatusCode::OK, "revocation lifted");
    config.machine.device_flow = None;
    file.write_config(&config);
    wait_for_reloads(&gw, "accepted", 4).await;
    assert_eq!(get().await.unwrap().status(), StatusCode::UNAUTHORIZED, "device flow off: its tokens too");
}

/// The Redis device store itself: a take is single under concurrency, and
/// counters always carry their window's expiry.
#[tokio::test(flavor = "multi_thread")]
async fn the_redis_device_store_takes_once_and_counters_expire() {
    use authgate::gateway::device::Store;
    use authgate::gateway::session::RedisSessions;

    common::init();
    let Some(redis) = common::redis::Redis::start().await else { return };
    let session = authgate::contract::session::SessionConfig::default();
    let sessions = RedisSessions::new(&session, &redis.config()).expect("valid");
    let store = Store::Redis { backend: sessions.backend(), prefix: "t:".into() };
    store.set("grant:x", b"approved", 60, 0).await.unwrap();
    let takes = futures::future::join_all((0..8).map(|_| store.take("grant:x", 0))).await;
    assert_eq!(takes.iter().filter(|t| matches!(t, Ok(Some(_)))).count(), 1, "{takes:?}");
    assert_eq!(store.count("guess:1.2.3.4", 300, 0).await.unwrap(), 1);
    assert_eq!(store.count("guess:1.2.3.4", 300, 0).await.unwrap(), 2);
    let ttl: i64 = ::redis::cmd("TTL").arg("t:device:guess:1.2.3.4").query(&mut redis.connection().unwrap()).unwrap();
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    assert!(store.set_if_absent("poll:x", b"", 5, 0).await.unwrap());
    assert!(!store.set_if_absent("poll:x", b"", 5, 0).await.unwrap());
}
