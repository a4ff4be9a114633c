//! The gateway run from an `auth-credentials` Secret written by hand in the
//! Foxglove remote-data-loader format, passed as environment the way
//! `envFrom` passes it (issue 12 item 7): a real browser signs in through
//! it at the real OpenID Provider; `DISABLE_AUTH=true` passes through and
//! warns; what the format cannot carry or gets wrong refuses to start,
//! naming the key and never a value.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::echo::{header, report};
use common::{Browser, Echo, Gateway, Op, OpSettings, free_port, op};

/// The client the hand-written Secret names.
const CLIENT_ID: &str = "data-loader";
const CLIENT_SECRET: &str = "seed-format-client-secret-0451";

/// The Foxglove template, filled in by hand for a gateway on `port` and
/// the OP at `issuer`. Only the ports are not known in advance.
fn secret_yaml(issuer: &str, port: u16, cookie_key: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: auth-credentials
type: Opaque
stringData:
  # OAuth 2.0 configuration
  OAUTH_CLIENT_ID: {CLIENT_ID}
  OAUTH_CLIENT_SECRET: {CLIENT_SECRET}
  OAUTH_AUTHORIZE_URL: {issuer}/auth
  OAUTH_TOKEN_URL: {issuer}/token

  # The callback URL will be "https://<your gateway url>/oauth2/callback"
  OAUTH_CALLBACK_URL: http://127.0.0.1:{port}/oauth2/callback
  # At least 64 bytes of cryptographically secure random data encoded as base64.
  COOKIE_ENCRYPTION_KEY: {cookie_key}
  # A comma-separated list of scopes to request from the auth provider at login.
  OAUTH_REQUESTED_SCOPES: openid,email,profile,groups
"#
    )
}

/// What `envFrom` makes of the Secret: one variable per `stringData` key.
/// The Secret is also written to a file and must pass `authgate check`.
fn env_from(yaml: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth-credentials.yaml");
    std::fs::write(&path, yaml).unwrap();
    let problems = authgate::check::check(&[path]).unwrap();
    assert!(problems.is_empty(), "authgate check refuses the Secret: {problems:#?}");
    let doc: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
    doc["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("stringData values are strings").to_owned()))
        .collect()
}

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs the gateway with only `env`, expecting it to refuse to start;
/// returns everything it printed.
async fn refused(env: &[(String, String)]) -> String {
    common::init();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["--log-format", "text", "gateway", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("AUTHGATE_CONFIG")
            .env("RUST_LOG", "info,authgate=debug")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the gateway should exit")
    .expect("run the gateway");
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "the gateway started; log:\n{log}");
    log
}

/// Where the gateway sends a browser that has no session: the provider's
/// authorization request, followed hop by hop up to the provider.
async fn authorization_request(gateway: &Gateway) -> url::Url {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut url = url::Url::parse(&gateway.url("/datasets/list")).unwrap();
    for _ in 0..3 {
        let response = client.get(url.clone()).header("accept", "text/html").send().await.unwrap();
        assert!(response.status().is_redirection(), "{url}: {}", response.status());
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        url = url.join(&location).unwrap();
        if url.port() != gateway.base.port() {
            return url;
        }
    }
    panic!("never sent to the provider; last at {url}");
}

fn assert_no_secret_in(log: &str, cookie_key: &str) {
    assert!(!log.contains(CLIENT_SECRET), "the client secret leaked:\n{log}");
    assert!(!log.contains(cookie_key) && !log.contains(&cookie_key[..16]), "the cookie key leaked:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_signs_in_through_a_gateway_run_from_a_hand_written_secret() {
    common::init();
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&callback])],
        ..OpSettings::default()
    })
    .await
    else {
        return;
    };
    let echo = Echo::start().await;
    let cookie_key = common::cookie_key();
    let listen = format!("127.0.0.1:{port}");
    let upstream = echo.url().to_string();
    // The Secret, plus what the format has no key for: the kind and issuer
    // (ID tokens are verified against its keys), the upstream and who may enter.
    let env = with(
        env_from(&secret_yaml(&op.issuer_str, port, &cookie_key)),
        &[
            ("AUTHGATE_LISTEN", &listen),
            ("AUTHGATE_UPSTREAM", &upstream),
            ("AUTHGATE_PROVIDER_TYPE", "oidc"),
            ("AUTHGATE_PROVIDER_ISSUER_URL", &op.issuer_str),
            ("AUTHGATE_ACCESS", "{allowedDomains: [example.com], allowedGroups: [sre]}"),
        ],
    );
    let gateway = Gateway::start_with_env(port, &as_refs(&env)).await;
    let Some(browser) = Browser::start().await else {
        return;
    };

    // The authorization request carries the Secret's client, callback and scopes.
    let at_op = authorization_request(&gateway).await;
    let asked: Vec<(String, String)> = at_op.query_pairs().into_owned().collect();
    let param = |name: &str| asked.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(
        at_op.as_str().split('?').next(),
        Some(format!("{}/auth", op.issuer_str).as_str()),
        "OAUTH_AUTHORIZE_URL"
    );
    assert_eq!(param("redirect_uri"), Some(callback.as_str()), "the callback the Secret registers");
    assert_eq!(param("client_id"), Some(CLIENT_ID));
    let mut scopes: Vec<&str> = param("scope").unwrap_or_default().split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["email", "groups", "openid", "profile"]);

    browser.goto(&gateway.url("/datasets/list?page=2")).await;
    let at_op = browser.url().await;
    assert_eq!(at_op.port(), op.issuer.port(), "sent to the OP to sign in, is at {at_op}");
    browser.sign_in_at_op("alice").await;

    let echo_report = browser.echo().await;
    let landed = browser.url().await;
    assert_eq!((landed.port(), landed.path()), (Some(port), "/datasets/list"), "back at the deep link");
    assert_eq!(echo_report["query"], "page=2");
    assert_eq!(header(&echo_report, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    // The groups arrive only when the comma-separated scopes were all requested.
    assert_eq!(header(&echo_report, "x-auth-request-groups").as_deref(), Some("sre,dev"));
    let bearer = header(&echo_report, "authorization").expect("a bearer for the upstream");
    let claims = op.verify_access_token(bearer.strip_prefix("Bearer ").expect("Bearer")).await;
    assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str()), (Some("alice"), Some(CLIENT_ID)));
    browser.close().await;

    let log = gateway.logs();
    assert!(log.contains("settings taken from the auth-credentials variables"), "{log}");
    assert_no_secret_in(&log, &cookie_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_auth_true_passes_requests_through_and_warns() {
    let echo = Echo::start().await;
    let port = free_port();
    let cookie_key = common::cookie_key();
    let (listen, upstream) = (format!("127.0.0.1:{port}"), echo.url().to_string());
    // The Secret's provider keys stay unused: no kind or issuer is needed.
    let env = with(
        env_from(&secret_yaml("https://id.example.com", port, &cookie_key)),
        &[("DISABLE_AUTH", "true"), ("AUTHGATE_LISTEN", &listen), ("AUTHGATE_UPSTREAM", &upstream)],
    );
    let gateway = Gateway::start_with_env(port, &as_refs(&env)).await;

    let response = reqwest::Client::new()
        .get(gateway.url("/manifest?start=1"))
        .header("x-auth-request-user", "ceo@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no sign-in asked");
    let seen = report(&response.text().await.unwrap());
    assert_eq!((seen["path"].as_str(), seen["query"].as_str()), (Some("/manifest"), Some("start=1")));
    assert_eq!(header(&seen, "x-auth-request-user"), None, "identity headers from clients are still stripped");
    assert_eq!(echo.hits(), 1);

    let log = gateway.logs();
    let warning = log.lines().find(|l| l.contains("DISABLE_AUTH=true")).unwrap_or_else(|| panic!("no line:\n{log}"));
    assert!(warning.contains("WARN") && warning.contains("authentication is disabled"), "{warning}");
    assert_no_secret_in(&log, &cookie_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_format_cannot_say_or_gets_wrong_refuses_to_start() {
    let cookie_key = common::cookie_key();
    let secret = || env_from(&secret_yaml("https://id.example.com", 4180, &cookie_key));
    let upstream = [("AUTHGATE_UPSTREAM", "http://127.0.0.1:9")];

    // No kind of provider: the endpoints alone do not say what signs in.
    let log = refused(&with(secret(), &upstream)).await;
    assert!(log.contains("set AUTHGATE_PROVIDER_TYPE"), "{log}");
    assert_no_secret_in(&log, &cookie_key);

    // oidc without an issuer: ID tokens could not be verified.
    let log = refused(&with(secret(), &[upstream[0], ("AUTHGATE_PROVIDER_TYPE", "oidc")])).await;
    assert!(log.contains("an oidc provider needs AUTHGATE_PROVIDER_ISSUER_URL"), "{log}");

    // The Foxglove data loader's own callback path is not the gateway's.
    let mut foxglove = secret();
    foxglove.iter_mut().filter(|(k, _)| k == "OAUTH_CALLBACK_URL").for_each(|(_, v)| {
        *v = "https://data.loader.dev/v1/login/callback".into();
    });
    let log = refused(&with(foxglove, &upstream)).await;
    assert!(log.contains("OAUTH_CALLBACK_URL must be the external URL followed by /oauth2/callback"), "{log}");

    // A cookie key of 32 bytes is enough for a keyring but not for the format.
    let mut short = secret();
    let short_key = "/i9vz4LsnlzHwzEU6fgPk4gSxtp+dHaoEBSpW+5+Gk4=";
    short.iter_mut().filter(|(k, _)| k == "COOKIE_ENCRYPTION_KEY").for_each(|(_, v)| *v = short_key.into());
    let log = refused(&with(short, &upstream)).await;
    assert!(log.contains("COOKIE_ENCRYPTION_KEY decodes to 32 bytes; at least 64 are required"), "{log}");
    assert!(!log.contains(short_key), "{log}");

    // GitHub, known by its host, is public: closed unless access is restricted.
    let mut github = secret();
    for (k, v) in github.iter_mut() {
        match k.as_str() {
            "OAUTH_AUTHORIZE_URL" => *v = "https://github.com/login/oauth/authorize".into(),
            "OAUTH_TOKEN_URL" => *v = "https://github.com/login/oauth/access_token".into(),
            "OAUTH_REQUESTED_SCOPES" => *v = "read:org,user:email".into(),
            _ => {}
        }
    }
    let log = refused(&with(github, &upstream)).await;
    assert!(log.contains("is open to anyone with an account"), "{log}");
    assert_no_secret_in(&log, &cookie_key);
}
