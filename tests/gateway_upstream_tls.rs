//! TLS from the gateway to upstreams and identity providers (issue 12,
//! item 5), against Debian's nginx serving certificates from a CA the test
//! makes: private CA bundles, client certificates (mutual TLS),
//! `insecureSkipVerify`, SNI and the checked name, and a provider's
//! `caBundle`.
//!
//! The nginx sites answer `tls-ok sni=… client=… protocol=…` (see
//! [`Answer::Report`]), so each test sees which name was sent, which client
//! certificate nginx verified and which HTTP version was spoken.

mod common;

use authgate::contract::routes::{RouteConfig, TlsConfig};
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, Redacted, SessionConfig};
use common::nginx::{self, Answer, Nginx, TlsSite};
use common::pki::{Pem, TestCa};
use common::{Agent, CLIENT_ID, CLIENT_SECRET, Gateway, Op, OpSettings, free_port, gateway, op, require};
use reqwest::StatusCode;
use url::Url;

fn have_nginx() -> bool {
    require("nginx (Debian's, with the SSL module)", nginx::binary().is_some())
}

/// nginx on a fresh port serving `cert`, requiring a client certificate
/// from `client_ca` when given.
async fn site(cert: &Pem, client_ca: Option<&str>) -> (Nginx, u16) {
    let port = free_port();
    (Nginx::tls(port, TlsSite { cert, client_ca, answer: Answer::Report }).await, port)
}

/// A gateway without sign-in in front of `upstream`, `tweak`ed.
fn open_config(upstream: &str, tls: Option<TlsConfig>) -> GatewayConfig {
    let mut c = gateway::config(free_port(), &Url::parse(upstream).unwrap(), vec![]);
    c.authentication = Authentication::Disabled;
    c.session = SessionConfig { keys: vec![], ..c.session };
    c.upstream_tls = tls;
    c
}

fn bundle(ca: &TestCa) -> TlsConfig {
    TlsConfig { ca_pem: Some(ca.cert_pem.clone()), ..Default::default() }
}

fn route(prefix: &str, upstream: &str, tls: TlsConfig) -> RouteConfig {
    RouteConfig {
        path_prefix: prefix.into(),
        upstream: Url::parse(upstream).unwrap(),
        tls: Some(tls),
        methods: vec![],
        strip_prefix: true,
        headers: vec![],
        token_auth: None,
        forward_access_token: None,
        timeout_seconds: None,
        connect_timeout_seconds: None,
        cors: None,
    }
}

/// [`Gateway::start`], then waiting until the public port accepts
/// connections too: the harness waits for `/healthz` on the operations
/// port, which can answer before the serving threads listen.
async fn start(config: GatewayConfig) -> Gateway {
    let port = config.listen.port();
    let gw = Gateway::start(config).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the gateway does not listen: {}", gw.logs());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gw
}

/// `GET path` on the gateway: status, `X-Client-DN`, body.
async fn get(gw: &Gateway, path: &str) -> (StatusCode, Option<String>, String) {
    let r = reqwest::Client::new()
        .get(gw.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the gateway does not answer: {e:?}\n{}", gw.logs()));
    let dn = r.headers().get("x-client-dn").map(|v| v.to_str().unwrap().to_owned());
    (r.status(), dn, r.text().await.unwrap())
}

/// `text` without ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

async fn healthy(gw: &Gateway) -> bool {
    reqwest::get(gw.ops_url("/healthz")).await.is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn an_upstream_signed_by_a_private_ca_is_reached_with_its_bundle_and_refused_without() {
    if !have_nginx() {
        return;
    }
    let ca = TestCa::new("authgate test CA");
    let (nginx, port) = site(&ca.server(&["localhost"]), None).await;
    let upstream = format!("https://localhost:{port}/");

    let gw = start(open_config(&upstream, Some(bundle(&ca)))).await;
    let (status, _, body) = get(&gw, "/hello").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", gw.logs());
    // nginx offers h2 by ALPN on this port; the gateway offers none, so
    // the upstream speaks HTTP/1.1, which is all the gateway's client does.
    assert_eq!(body.trim_end(), "tls-ok sni=localhost client= protocol=HTTP/1.1");

    // Without the bundle the system's roots apply, and they do not know the
    // private CA; nor does another CA's bundle help.
    for tls in [None, Some(bundle(&TestCa::new("some other CA")))] {
        let gw = start(open_config(&upstream, tls)).await;
        for _ in 0..2 {
            let (status, _, body) = get(&gw, "/hello").await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            assert!(!body.contains("tls-ok"), "{body}");
        }
        assert!(healthy(&gw).await, "the gateway stays up after refusing the upstream's certificate");
    }
    assert_eq!(
        nginx.access_log_with(&["GET /hello "]).await.lines().count(),
        1,
        "only the verified connection got a request through"
    );
}

#[tokio::test]
async fn an_unusable_bundle_stops_the_gateway_with_a_message_that_quotes_nothing() {
    let garbage = "-----BEGIN CERTIFICATE-----\nnot*base64*SECRETISH\n-----END CERTIFICATE-----\n";
    let tls = TlsConfig { ca_pem: Some(garbage.into()), ..Default::default() };
    let err = Gateway::try_start(open_config("https://localhost:1/", Some(tls)), &[]).await.err().expect("refused");
    assert!(err.exited.is_some_and(|s| !s.success()), "{}", err.logs);
    assert!(err.logs.contains("the CA bundle is unusable: a PEM section is not valid base64"), "{}", err.logs);
    assert!(!err.logs.contains("SECRETISH"), "{}", err.logs);

    // A certificate without its key, on a route.
    let ca = TestCa::new("ca");
    let client = ca.client("gateway");
    let half = TlsConfig { client_cert_pem: Some(client.cert), ..bundle(&ca) };
    let mut config = open_config("http://127.0.0.1:1/", None);
    config.routes = vec![route("/api", "https://localhost:1/", half)];
    let err = Gateway::try_start(config, &[]).await.err().expect("refused");
    assert!(err.logs.contains("needs both the certificate and its private key"), "{}", err.logs);
}

#[tokio::test]
async fn mutual_tls_presents_the_routes_client_certificate() {
    if !have_nginx() {
        return;
    }
    let ca = TestCa::new("authgate test CA");
    let (_nginx, port) = site(&ca.server(&["localhost"]), Some(&ca.cert_pem)).await;
    let upstream = format!("https://localhost:{port}/");
    let client = ca.client("gateway-client");
    let with_cert = |pem: &Pem| TlsConfig {
        client_cert_pem: Some(pem.cert.clone()),
        client_key_pem: Some(Redacted::new(pem.key.clone())),
        ..bundle(&ca)
    };
    let stranger = TestCa::new("a CA nginx does not trust").client("stranger");
    let mut config = open_config(&upstream, Some(bundle(&ca)));
    config.routes =
        vec![route("/mtls", &upstream, with_cert(&client)), route("/stranger", &upstream, with_cert(&stranger))];
    let gw = start(config).await;

    let (status, dn, body) = get(&gw, "/mtls/x").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", gw.logs());
    assert_eq!(dn.as_deref(), Some("CN=gateway-client"));
    assert_eq!(body.trim_end(), "tls-ok sni=localhost client=CN=gateway-client protocol=HTTP/1.1");

    // Without a client certificate the handshake still completes (nginx
    // asks for one, gets none) and nginx answers 400 itself; that is an
    // upstream response, so the gateway passes it on as it is.
    let (status, dn, body) = get(&gw, "/x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("No required SSL certificate was sent"), "{body}");
    assert_eq!(dn, None);
    // A certificate from a CA nginx does not trust is presented and
    // refused the same way.
    let (status, _, body) = get(&gw, "/stranger/x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("The SSL certificate error"), "{body}");
    assert!(!gw.logs().contains("BEGIN"), "no PEM in the logs");
}

#[tokio::test]
async fn insecure_skip_verify_reaches_a_self_signed_upstream_and_warns_once_per_route() {
    if !have_nginx() {
        return;
    }
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["self-signed.invalid".to_owned()]).unwrap();
    let (_nginx, port) = site(&Pem { cert: cert.pem(), key: signing_key.serialize_pem() }, None).await;
    let insecure = TlsConfig { insecure_skip_verify: true, ..Default::default() };
    let mut config = open_config(&format!("https://127.0.0.1:{port}/"), None);
    // Neither the issuer nor the name (an IP, the certificate names
    // another host) would pass verification.
    config.routes = vec![route("/legacy", &format!("https://127.0.0.1:{port}/"), insecure)];
    let gw = start(config).await;

    let (status, _, body) = get(&gw, "/legacy/x").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", gw.logs());
    assert!(body.starts_with("tls-ok "), "{body}");
    let (status, _, _) = get(&gw, "/verified").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "the default upstream is still verified");

    let logs = plain(&gw.logs());
    let warnings: Vec<_> = logs.lines().filter(|l| l.contains("insecureSkipVerify")).collect();
    assert_eq!(warnings.len(), 1, "one warning for the one insecure route, whatever the thread count:\n{logs}");
    let warning = warnings[0];
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(r#"route="/legacy" upstream_host="127.0.0.1""#), "{warning}");
    assert!(warning.contains("NOT verified"), "{warning}");
}

#[tokio::test]
async fn sni_and_the_checked_name_follow_the_upstream_host() {
    if !have_nginx() {
        return;
    }
    let ca = TestCa::new("authgate test CA");
    let (_by_name, name_port) = site(&ca.server(&["localhost"]), None).await;
    let (_by_ip, ip_port) = site(&ca.server(&["127.0.0.1"]), None).await;
    let mut config = open_config(&format!("https://localhost:{name_port}/"), Some(bundle(&ca)));
    config.routes = vec![
        // The same server as the default upstream, by its IP: not a name
        // on its certificate.
        route("/wrong-name", &format!("https://127.0.0.1:{name_port}/"), bundle(&ca)),
        // A server whose certificate does carry the IP.
        route("/ip", &format!("https://127.0.0.1:{ip_port}/"), bundle(&ca)),
    ];
    let gw = start(config).await;

    let (status, _, body) = get(&gw, "/").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", gw.logs());
    assert!(body.starts_with("tls-ok sni=localhost "), "the upstream URL's host is the SNI: {body}");
    let (status, _, body) = get(&gw, "/wrong-name/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    // An IP is checked against the certificate's IP SANs, and no SNI is
    // sent for it (nginx's $ssl_server_name stays empty).
    let (status, _, body) = get(&gw, "/ip/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("tls-ok sni= "), "{body}");
}

#[tokio::test]
async fn a_provider_behind_a_private_ca_is_reached_with_its_bundle_and_not_without() {
    if !have_nginx() {
        return;
    }
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let Some(op) = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&callback])],
        ..Default::default()
    })
    .await
    else {
        return;
    };
    // The gateway's calls (token, userinfo, JWKS) go through nginx over
    // TLS; the browser still reaches the OP's login pages directly.
    let ca = TestCa::new("IdP CA");
    let tls_port = free_port();
    let cert = ca.server(&["localhost"]);
    let proxy = Answer::Proxy(op.issuer.port().unwrap());
    let nginx = Nginx::tls(tls_port, TlsSite { cert: &cert, client_ca: None, answer: proxy }).await;
    let echo = common::Echo::start().await;
    let config = |ca_pem: Option<String>| {
        let mut p = gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET);
        let behind = |path: &str| Url::parse(&format!("https://localhost:{tls_port}/{path}")).unwrap();
        p.token_url = behind("token");
        p.userinfo_url = Some(behind("me"));
        p.jwks_url = Some(behind("jwks"));
        p.ca_pem = ca_pem;
        let mut c = gateway::config(port, &echo.url(), vec![p]);
        c.access.allowed_domains = vec!["example.com".into()];
        c
    };

    let gw = start(config(Some(ca.cert_pem.clone()))).await;
    let mut agent = Agent::new();
    let reply = agent.sign_in(&gw, "alice", "/after").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}\n{}", reply.describe(), gw.logs());
    assert_eq!(reply.location().unwrap().path(), "/after");
    let access = nginx.access_log_with(&["POST /token ", "GET /jwks "]).await;
    assert!(access.contains("POST /token "), "the code went through the TLS endpoint:\n{access}");
    assert!(access.contains("GET /jwks "), "so did the key fetch:\n{access}");
    drop(gw);

    // The same gateway without the bundle cannot exchange the code.
    let gw = start(config(None)).await;
    let mut agent = Agent::new();
    let reply = agent.sign_in(&gw, "alice", "/after").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.describe());
    assert!(!agent.has_session_cookie());
    assert!(gw.logs().contains("UnknownIssuer"), "the log says why: {}", gw.logs());
    drop(gw);

    // A bundle with no certificate in it stops the gateway at start.
    let err = Gateway::try_start(config(Some("no PEM here".into())), &[]).await.err().expect("refused");
    assert!(err.logs.contains("the CA bundle holds no PEM certificate"), "{}", err.logs);
}
