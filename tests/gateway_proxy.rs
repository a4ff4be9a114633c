//! The proxy path with a real session: WebSocket pass-through, streamed
//! large bodies, chunked session cookies, API clients, operations
//! endpoints, and running from environment variables only.

mod common;

use std::time::Duration;

use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, ProviderType};
use common::echo::header;
use common::{Accept, Agent, Echo, Gateway, Op, OpSettings, Stack, gateway, op};
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn sre_policy(c: &mut GatewayConfig) {
    c.access.allowed_domains = vec!["example.com".into()];
    c.access.allowed_groups = vec!["sre".into()];
}

#[tokio::test]
async fn websocket_upgrades_pass_through_with_the_users_identity() {
    let Some(stack) = Stack::start(3600, sre_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let addr = format!("127.0.0.1:{}", stack.gateway.base.port().unwrap());

    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert("cookie", agent.cookie_header().unwrap().parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut ws, response) =
        tokio_tungstenite::client_async(request, tcp).await.expect("WebSocket handshake through the gateway");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::text("whoami")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("alice@example.com"));
    let mut blob = vec![0u8; 256 * 1024];
    rand::rng().fill_bytes(&mut blob);
    ws.send(Message::binary(blob.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(blob));
    ws.close(None).await.unwrap();

    // Without a session the handshake is refused before the upstream.
    let hits = stack.echo.hits();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let refused = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    assert_eq!(stack.echo.hits(), hits);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let Some(stack) = Stack::start(3600, sre_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let mut body = vec![0u8; 2 * 1024 * 1024 + 17];
    rand::rng().fill_bytes(&mut body);
    let digest = format!("{:x}", Sha256::digest(&body));
    let reply = agent
        .send(
            Method::POST,
            &stack.gateway.url("/upload"),
            Accept::Json,
            &[("content-type", "application/octet-stream")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_len"], body.len());
    assert_eq!(echo["body_sha256"], digest);

    // A streamed (chunked) request body of unknown length.
    let chunks: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> =
        body.chunks(100_000).map(|c| Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(c)))).collect();
    let reply = agent
        .http()
        .put(stack.gateway.url("/stream"))
        .header("cookie", agent.cookie_header().unwrap())
        .header("accept", "application/json")
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(futures::stream::iter(chunks))))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let echo: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(echo["body_sha256"], digest);

    // A large response, streamed.
    let n = 8 * 1024 * 1024;
    let reply = agent
        .http()
        .get(stack.gateway.url(&format!("/bytes?n={n}")))
        .header("cookie", agent.cookie_header().unwrap())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let mut reply = reply;
    let mut total = 0;
    while let Some(chunk) = reply.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, n);
}

#[tokio::test]
async fn a_large_session_is_split_into_cookie_chunks() {
    let Some(stack) = Stack::start(3600, sre_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    let reply = agent.sign_in(&stack.gateway, "many", "/").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    for c in reply.set_cookies() {
        assert!(c.to_string().len() <= 4096, "cookie {} is {} bytes", c.name(), c.to_string().len());
        if c.name().starts_with(gateway::COOKIE_NAME) && !c.value().is_empty() {
            assert_eq!(c.http_only(), Some(true));
            assert_eq!(c.same_site(), Some(cookie::SameSite::Lax));
            assert_eq!(c.path(), Some("/"));
        }
    }
    let chunks = agent.session_cookies(gateway::COOKIE_NAME);
    assert!(chunks.len() >= 3, "expected several chunks, got {chunks:?}");
    assert!(!chunks.contains(&gateway::COOKIE_NAME.to_owned()));
    assert!(chunks.contains(&format!("{}_0", gateway::COOKIE_NAME)));

    let reply = agent.get(&stack.gateway.url("/private"), Accept::Json).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let echo = reply.json();
    let groups = header(&echo, "x-auth-request-groups").unwrap();
    assert_eq!(groups.split(',').count(), 301);
    assert!(groups.starts_with("sre,team-with-a-rather-long-group-name-000,"));
    let cookies = header(&echo, "cookie").unwrap_or_default();
    assert!(!cookies.contains(gateway::COOKIE_NAME), "no chunk reaches the upstream: {cookies}");

    // Sign-out removes every chunk.
    let out = agent.get(&stack.gateway.url("/oauth2/sign_out"), Accept::Html).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(agent.session_cookies(gateway::COOKIE_NAME).is_empty(), "left behind: {:?}", agent.jar.keys());
    assert_eq!(agent.get(&stack.gateway.url("/private"), Accept::Json).await.status, StatusCode::UNAUTHORIZED);

    // Chunked again; then a smaller session (another user, forced to the
    // login form) replaces the chunks with one cookie.
    agent.sign_in(&stack.gateway, "many", "/").await;
    assert!(agent.session_cookies(gateway::COOKIE_NAME).len() >= 3);
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start?prompt=login"), "alice").await;
    assert_eq!(agent.get(callback.as_str(), Accept::Html).await.status, StatusCode::FOUND);
    assert_eq!(agent.session_cookies(gateway::COOKIE_NAME), [gateway::COOKIE_NAME]);
    let echo = agent.get(&stack.gateway.url("/private"), Accept::Json).await.json();
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev"));
}

#[tokio::test]
async fn api_clients_get_401_and_browsers_a_redirect() {
    let Some(stack) = Stack::start(3600, sre_policy).await else {
        return;
    };
    let mut anon = Agent::new();
    let api = anon.get(&stack.gateway.url("/api/items?page=2"), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.headers["content-type"], "application/json");
    assert_eq!(api.json()["error"], "unauthorized");
    let xhr = anon
        .send(
            Method::GET,
            &stack.gateway.url("/api/items"),
            Accept::Html,
            &[("X-Requested-With", "XMLHttpRequest")],
            None,
        )
        .await;
    assert_eq!(xhr.status, StatusCode::UNAUTHORIZED);
    let page = anon.get(&stack.gateway.url("/api/items?page=2"), Accept::Html).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.raw_location().as_deref(), Some("/oauth2/start?rd=%2Fapi%2Fitems%3Fpage%3D2"));
    let info = anon.get(&stack.gateway.url("/oauth2/userinfo"), Accept::Json).await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stack.echo.hits(), 0);

    // The start endpoint: PKCE S256, state, nonce, and a flow cookie.
    let start = anon.get(&stack.gateway.url("/oauth2/start?rd=/x"), Accept::Html).await;
    assert_eq!(start.status, StatusCode::FOUND);
    let to = start.location().unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(to.as_str().split('?').next().unwrap(), stack.op.endpoint("auth").as_str());
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], stack.gateway.url("/oauth2/callback"));
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let flow = start.set_cookies().into_iter().find(|c| c.name().starts_with("_authgate_flow_")).expect("flow cookie");
    assert_eq!((flow.http_only(), flow.path()), (Some(true), Some("/oauth2/")));
    assert!(!flow.value().contains(&q["state"]), "the flow cookie is encrypted");
    let unknown = anon.get(&stack.gateway.url("/oauth2/start?provider=nope"), Accept::Html).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_readiness_and_metrics_live_on_their_own_port() {
    let Some(stack) = Stack::start(3600, sre_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    assert_eq!(agent.get(&stack.gateway.ops_url("/healthz"), Accept::Json).await.status, StatusCode::OK);
    assert_eq!(agent.get(&stack.gateway.ops_url("/readyz"), Accept::Json).await.status, StatusCode::OK);
    // On the public port they are the upstream's paths: guarded like any
    // other, never the gateway's metrics.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let anon = Agent::new().get(&stack.gateway.url(path), Accept::Json).await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{path}: {}", anon.body);
        assert!(!anon.body.contains("authgate_gateway"), "{path}");
    }
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let hits = stack.echo.hits();
    let upstream_metrics = agent.get(&stack.gateway.url("/metrics"), Accept::Json).await;
    assert_eq!(upstream_metrics.status, StatusCode::OK);
    assert_eq!(upstream_metrics.json()["path"], "/metrics", "the upstream's own /metrics: {}", upstream_metrics.body);
    assert_eq!(stack.echo.hits(), hits + 1);
    Agent::new().get(&stack.gateway.url("/x"), Accept::Json).await;
    let metrics = agent.get(&stack.gateway.ops_url("/metrics"), Accept::Json).await;
    assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    for line in [
        r#"authgate_gateway_requests_total{outcome="proxied"} 1"#,
        r#"authgate_gateway_requests_total{outcome="unauthorized"} 4"#,
        r#"authgate_gateway_logins_total{provider="corp",result="success"} 1"#,
        "authgate_gateway_upstream_duration_seconds_count 1",
    ] {
        assert!(metrics.body.contains(line), "missing {line}:\n{}", metrics.body);
    }
}

#[tokio::test]
async fn runs_from_environment_variables_alone_with_oidc_discovery() {
    common::init();
    let port = common::free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client("env-client", "env-secret", &[&callback])],
        ..OpSettings::default()
    })
    .await
    else {
        return;
    };
    let echo = Echo::start().await;
    let key = common::cookie_key();
    let old_key = common::cookie_key();
    let keys = format!("{key},{old_key}");
    let listen = format!("127.0.0.1:{port}");
    let external = format!("http://127.0.0.1:{port}");
    let upstream = echo.url().to_string();
    let gw = Gateway::start_with_env(
        port,
        &[
            ("AUTHGATE_LISTEN", &listen),
            ("AUTHGATE_EXTERNAL_URL", &external),
            ("AUTHGATE_UPSTREAM", &upstream),
            ("AUTHGATE_COOKIE_KEYS", &keys),
            ("AUTHGATE_COOKIE_NAME", "_envgate"),
            ("AUTHGATE_PROVIDER_TYPE", "oidc"),
            ("AUTHGATE_PROVIDER_NAME", "envcorp"),
            ("AUTHGATE_PROVIDER_CLIENT_ID", "env-client"),
            ("AUTHGATE_PROVIDER_CLIENT_SECRET", "env-secret"),
            ("AUTHGATE_PROVIDER_ISSUER_URL", &op.issuer_str),
            ("AUTHGATE_PROVIDER_SCOPES", "openid,email,profile,groups"),
            ("AUTHGATE_ACCESS", "{allowedGroups: [sre]}"),
        ],
    )
    .await;
    let mut agent = Agent::new();
    let reply = agent.sign_in(&gw, "alice", "/env").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}\n{}", reply.body, gw.logs());
    assert!(agent.jar.contains_key("_envgate"));
    let info = agent.get(&gw.url("/oauth2/userinfo"), Accept::Json).await.json();
    assert_eq!(info["provider"], "envcorp");
    assert_eq!(info["groups"], serde_json::json!(["sre", "dev"]));
    let denied = Agent::new().sign_in(&gw, "bob", "/").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(!gw.logs().contains("env-secret") && !gw.logs().contains(&key), "no secrets in logs");

    // A discovery document whose issuer differs from the configured one is
    // refused at start.
    let bad_port = common::free_port();
    let bad_listen = format!("127.0.0.1:{bad_port}");
    // The OP's issuer has no trailing slash; issuers must match exactly.
    let wrong_issuer = format!("{}/", op.issuer_str);
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["--log-format", "text", "gateway"])
            .env_remove("AUTHGATE_CONFIG")
            .envs([
                ("AUTHGATE_LISTEN", bad_listen.as_str()),
                ("AUTHGATE_EXTERNAL_URL", external.as_str()),
                ("AUTHGATE_UPSTREAM", upstream.as_str()),
                ("AUTHGATE_COOKIE_KEYS", key.as_str()),
                ("AUTHGATE_PROVIDER_TYPE", "oidc"),
                ("AUTHGATE_PROVIDER_CLIENT_ID", "env-client"),
                ("AUTHGATE_PROVIDER_CLIENT_SECRET", "env-secret"),
                ("AUTHGATE_PROVIDER_ISSUER_URL", wrong_issuer.as_str()),
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits")
    .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("must match"), "{log}");
}

#[tokio::test]
async fn refuses_to_start_open_to_every_account_of_a_public_provider() {
    common::init();
    let echo = Echo::start().await;
    let port = common::free_port();
    let mut github = gateway::config(port, &echo.url(), vec![]);
    github.providers.push(authgate::gateway::config::ProviderConfig {
        name: "github".into(),
        provider_type: ProviderType::Github,
        display_name: None,
        client_id: "id".into(),
        client_secret: authgate::gateway::config::Redacted::new("secret"),
        issuer_url: None,
        authorize_url: url::Url::parse("https://github.com/login/oauth/authorize").unwrap(),
        token_url: url::Url::parse("https://github.com/login/oauth/access_token").unwrap(),
        userinfo_url: None,
        jwks_url: None,
        api_url: Some(url::Url::parse("https://api.github.com").unwrap()),
        revocation_url: None,
        end_session_url: None,
        scopes: vec!["read:org".into(), "user:email".into()],
        claims: Default::default(),
        filters: Default::default(),
        ca_pem: None,
        email_verified: Default::default(),
    });
    let (status, log) = gateway::run_expecting_failure(&github).await;
    assert!(!status.success());
    assert!(log.contains("allowAllUsers"), "{log}");

    // With an explicit allowAllUsers it starts.
    github.allow_all_users = true;
    let gw = Gateway::start(github.clone()).await;
    let start = Agent::new().get(&gw.url("/oauth2/start"), Accept::Html).await;
    assert_eq!(start.status, StatusCode::FOUND);
    assert!(start.raw_location().unwrap().starts_with("https://github.com/login/oauth/authorize?"));

    // Bad keys are refused too.
    let mut bad_keys = github;
    bad_keys.session.keys = vec![authgate::gateway::config::Redacted::new("dG9vLXNob3J0")];
    bad_keys.authentication = Authentication::Enabled;
    let (status, log) = gateway::run_expecting_failure(&bad_keys).await;
    assert!(!status.success());
    assert!(log.contains("at least 32 are required"), "{log}");
}

/// An upstream that answers every request after `delay`, one connection
/// at a time is enough here.
async fn slow_upstream(delay: Duration) -> url::Url {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = conn.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                tokio::time::sleep(delay).await;
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow").await;
            });
        }
    });
    url::Url::parse(&format!("http://{addr}/")).unwrap()
}

#[tokio::test]
async fn a_terminated_gateway_stops_accepting_finishes_in_flight_requests_and_exits() {
    common::init();
    let upstream = slow_upstream(Duration::from_millis(1500)).await;
    let mut config = gateway::config(common::ports::free_port(), &upstream, vec![]);
    config.authentication = Authentication::Disabled;
    let mut gw = Gateway::start(config).await;
    let in_flight = tokio::spawn(reqwest::get(gw.url("/report")));
    tokio::time::sleep(Duration::from_millis(400)).await;
    gw.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new().get(gw.url("/late")).timeout(Duration::from_secs(2)).send().await;
    assert!(fresh.is_err(), "a terminating gateway accepts no new connection: {fresh:?}");
    let reply = in_flight.await.unwrap().expect("the in-flight request is answered, not dropped");
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.text().await.unwrap(), "slow");
    let status = gw.exited_within(Duration::from_secs(10)).await.expect("the gateway exits once drained");
    assert!(status.success(), "{status}; log:\n{}", gw.logs());
}

#[tokio::test]
async fn the_access_log_names_method_path_and_status_never_the_query_and_responses_are_counted_by_code() {
    common::init();
    let echo = Echo::start().await;
    let mut config = gateway::config(common::ports::free_port(), &echo.url(), vec![]);
    config.authentication = Authentication::Disabled;
    config.access_log = true;
    let gw = Gateway::start(config).await;
    let reply = reqwest::get(gw.url("/reports/q3?token=hunter2-secret")).await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let logs = gw.logs();
    let line =
        logs.lines().find(|l| l.contains("authgate::access")).unwrap_or_else(|| panic!("no access line:\n{logs}"));
    assert!(line.contains("/reports/q3") && line.contains("200") && line.contains("GET"), "{line}");
    assert!(!logs.contains("hunter2"), "the query reached the log:\n{logs}");
    let metrics = gw.metrics().await;
    assert!(metrics.contains(r#"authgate_gateway_responses_total{code="200"} 1"#), "{metrics}");

    let mut quiet = gateway::config(common::ports::free_port(), &echo.url(), vec![]);
    quiet.authentication = Authentication::Disabled;
    let gw = Gateway::start(quiet).await;
    assert_eq!(reqwest::get(gw.url("/reports/q3")).await.unwrap().status(), StatusCode::OK);
    assert!(!gw.logs().contains("authgate::access"), "{}", gw.logs());
}
