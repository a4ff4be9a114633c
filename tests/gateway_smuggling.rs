//! Protocol smuggling and resource limits (issue: gateway hardening, items
//! 6–11), spoken to the live gateway over raw TCP where a client library
//! would tidy the request up first.

mod common;

use common::sre_only;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, SessionConfig};
use common::echo::header_values;
use common::{Accept, Agent, Echo, Gateway, Stack, gateway};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway without sign-in in front of `upstream` (with base path
/// `/base/`), for checks that run before authentication.
async fn pass_through(upstream: &url::Url, tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    common::init();
    let port = common::free_port();
    let mut config = gateway::config(port, &upstream.join("base/").unwrap(), vec![]);
    config.authentication = Authentication::Disabled;
    config.session = SessionConfig { keys: vec![], ..config.session };
    tweak(&mut config);
    Gateway::start(config).await
}

/// Sends `raw` on a fresh connection and returns what came back until the
/// server closed or `within` passed.
async fn exchange(gw: &Gateway, raw: &[u8], within: Duration) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", gw.base.port().unwrap())).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// An upstream that records every byte it receives. It answers `101` to any
/// `Upgrade: h2c` request (as an h2c-capable server would) and then only
/// listens; anything else gets `200 ok`.
struct RawUpstream {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut switched = false;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tcp.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if switched {
                            continue;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                            pending.drain(..end + 4);
                            if head.contains("upgrade: h2c") {
                                let _ = tcp
                                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
                                    .await;
                                switched = true;
                                break;
                            }
                            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                        }
                    }
                });
            }
        });
        Self { addr, seen, task }
    }

    fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).to_ascii_lowercase()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_h2c_upgrade_cannot_smuggle_requests_past_the_gateway() {
    common::init();
    let upstream = RawUpstream::start().await;
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    // The same policy in front of the raw upstream, sharing the OP.
    let port = common::free_port();
    let mut config = gateway::config(port, &upstream.url(), stack.gateway.config.clone().unwrap().providers);
    sre_only(&mut config);
    config.external_url = stack.gateway.config.as_ref().unwrap().external_url.clone();
    config.session.keys = stack.gateway.config.as_ref().unwrap().session.keys.clone();
    let gw = Gateway::start(config).await;
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let cookie = agent.cookie_header().unwrap();
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: app\r\nCookie: {cookie}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: app\r\nX-Auth-Request-User: admin\r\nX-Auth-Request-Groups: admins\r\n\r\n"
    );
    let reply = exchange(&gw, raw.as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(status_of(&reply), 200, "the upgrade is ignored, the request served as HTTP/1.1: {reply}");
    let seen = upstream.seen();
    assert!(seen.contains("get / http/1.1"), "{seen}");
    assert!(!seen.contains("upgrade: h2c"), "the upgrade never reaches the upstream: {seen}");
    assert!(!seen.contains("x-auth-request-user: admin"), "a smuggled identity reached the upstream: {seen}");
    assert!(!seen.contains("x-auth-request-groups: admins"), "{seen}");
}

#[tokio::test]
async fn slowloris_connections_are_cut_off_while_users_are_served() {
    let Some(stack) = Stack::start(3600, |c| {
        sre_only(c);
        c.timeouts.header_read_seconds = 2;
    })
    .await
    else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let port = stack.gateway.base.port().unwrap();
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: app\r\nX-Slow: ").await.unwrap();
        slow.push(tcp);
    }
    // Signed-in users are served meanwhile.
    for _ in 0..5 {
        assert_eq!(agent.get(&stack.gateway.url("/x"), Accept::Json).await.status, StatusCode::OK);
    }
    // Every half-open connection is closed within the header timeout (plus
    // scheduling slack), never held open.
    let deadline = opened + Duration::from_secs(8);
    for (i, tcp) in slow.iter_mut().enumerate() {
        let mut buf = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(_) | Err(_)) => {}
            Err(_) => panic!("connection {i} still open {:?} after opening", opened.elapsed()),
        }
    }
    assert_eq!(agent.get(&stack.gateway.url("/x"), Accept::Json).await.status, StatusCode::OK);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let echo = Echo::start().await;
    let gw = pass_through(&echo.url(), |c| {
        c.timeouts.header_read_seconds = 30;
        c.timeouts.idle_seconds = 2;
    })
    .await;
    let mut tcp = TcpStream::connect(("127.0.0.1", gw.base.port().unwrap())).await.unwrap();
    tcp.write_all(b"GET /x HTTP/1.1\r\nHost: app\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection is still open after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_upstream_gets_the_client_a_504() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let gw =
        pass_through(&url::Url::parse(&format!("http://{addr}/")).unwrap(), |c| c.timeouts.upstream_seconds = 1).await;
    let started = Instant::now();
    let reply =
        exchange(&gw, b"GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", Duration::from_secs(10)).await;
    assert_eq!(status_of(&reply), 504, "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    hold.abort();
}

#[tokio::test]
async fn paths_cannot_climb_out_of_the_upstream_base_path() {
    let echo = Echo::start().await;
    let gw = pass_through(&echo.url(), |_| {}).await;
    for path in ["/../admin", "/x/../../admin", "/%2e%2e/admin", "/%2E%2e/admin", "/..%2fadmin", "/x/..%5c..%5cadmin"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
        let reply = exchange(&gw, raw.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status_of(&reply), 400, "{path}: {reply}");
    }
    assert_eq!(echo.hits(), 0, "nothing reached the upstream");
    let reply =
        exchange(&gw, b"GET /x/a%2Fb HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", Duration::from_secs(5)).await;
    assert_eq!(status_of(&reply), 200, "an encoded slash that is no dot segment passes: {reply}");
    assert!(reply.contains(r#""path":"/base/x/a%2Fb""#), "{reply}");
}

#[tokio::test]
async fn connect_and_options_asterisk_are_not_forwarded() {
    let echo = Echo::start().await;
    let gw = pass_through(&echo.url(), |_| {}).await;
    let connect = exchange(
        &gw,
        format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", echo.addr).as_bytes(),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status_of(&connect), 405, "{connect}");
    let options =
        exchange(&gw, b"OPTIONS * HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", Duration::from_secs(3)).await;
    assert_eq!(status_of(&options), 400, "{options}");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_broken_client_body_is_a_400_not_an_upstream_error() {
    let echo = Echo::start().await;
    let gw = pass_through(&echo.url(), |_| {}).await;
    let raw =
        b"POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ-not-a-size\r\n\r\n";
    let reply = exchange(&gw, raw, Duration::from_secs(5)).await;
    assert_eq!(status_of(&reply), 400, "{reply}");
    let metrics = gw.metrics().await;
    assert!(metrics.contains(r#"authgate_gateway_requests_total{outcome="bad_request"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"authgate_gateway_requests_total{outcome="upstream_error"} 0"#), "{metrics}");
}

#[tokio::test]
async fn http2_cookie_fields_reach_the_upstream_as_one() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let tcp = TcpStream::connect(("127.0.0.1", stack.gateway.base.port().unwrap())).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("HTTP/2 with prior knowledge");
    tokio::spawn(conn);
    // HTTP/2 clients send one `cookie` field per cookie (RFC 9113 §8.2.3).
    let mut request = http::Request::get(stack.gateway.url("/h2")).header("accept", "application/json");
    for name in agent.session_cookies(gateway::COOKIE_NAME) {
        request = request.header("cookie", format!("{name}={}", agent.jar[&name]));
    }
    let request = request.header("cookie", "a=1").header("cookie", "b=2").body(String::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(header_values(&echo, "cookie"), ["a=1; b=2"], "one field, without the gateway's cookies");
    assert_eq!(header_values(&echo, "x-auth-request-user"), ["alice@example.com"]);
}
