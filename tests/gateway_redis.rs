//! `session.store: Redis` with real parts: `redis-server`
//! ([`common::redis`]), gateway processes, the oidc-provider OP.
//!
//! - Replicas share sessions, and a sign-out on one ends the session on
//!   all (a captured cookie replayed afterwards is refused).
//! - Redis down (stopped, or hung): requests with a session fail closed
//!   with 503, nothing reaches the upstream, a request without a session
//!   is still sent to sign in, a callback that must store a session is
//!   503; the gateway recovers by itself when Redis is back.
//! - A wrong password fails closed and never reaches the log.
//! - The store itself, in process: TTLs, encryption at rest, refresh in
//!   place, `end_user` by subject and by provider session id; over TLS
//!   with a private CA, and through Sentinel.

mod common;

use std::time::{Duration, Instant};

use authgate::gateway::GatewayConfig;
use authgate::gateway::config::Redacted;
use authgate::gateway::metrics::Metrics;
use authgate::gateway::session::{
    CookieSettings, CookieStore, Keyring, RedisSessions, RedisStore, Session, SessionStore, SessionView,
};
use common::redis::{PASSWORD, Redis, Sentinel};
use common::{Accept, Agent, CLIENT_ID, CLIENT_SECRET, Echo, Gateway, Op, OpSettings, free_port, gateway, op};
use http::{HeaderMap, StatusCode, header};

/// The OP, an upstream and `replicas` gateway processes started from one
/// `gateway.yaml` (store: Redis at `redis`), all answering for the
/// external URL of the first.
struct Replicas {
    gateways: Vec<Gateway>,
    echo: Echo,
    _op: Op,
    _dir: tempfile::TempDir,
}

async fn replicas(redis: &Redis, count: usize, tweak: impl FnOnce(&mut GatewayConfig)) -> Option<Replicas> {
    common::init();
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let public = format!("http://127.0.0.1:{}", ports[0]);
    let op = Op::start(OpSettings {
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&format!("{public}/oauth2/callback")])],
        ..OpSettings::default()
    })
    .await?;
    let echo = Echo::start().await;
    let mut config =
        gateway::config(ports[0], &echo.url(), vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)]);
    common::sre_only(&mut config);
    config.session.store = authgate::contract::session::StoreConfig::Redis(redis.config());
    tweak(&mut config);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config.to_yaml().expect("yaml")).expect("write gateway.yaml");
    let mut gateways = Vec::new();
    for port in ports {
        gateways.push(Gateway::start_from_file(&path, port, &[]).await);
    }
    Some(Replicas { gateways, echo, _op: op, _dir: dir })
}

/// GET `path` on `gw` with exactly `cookie` (the agent's jar is per port).
async fn get(gw: &Gateway, path: &str, cookie: Option<&str>, accept: Accept) -> (StatusCode, HeaderMap, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let accept = match accept {
        Accept::Html => "text/html,application/xhtml+xml",
        Accept::Json => "application/json",
    };
    let mut req = http.get(gw.url(path)).header(header::ACCEPT, accept);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let resp = req.send().await.expect("request");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap_or_default())
}

/// Signs `user` in through `gw`; the `Cookie` header its session needs.
async fn sign_in(gw: &Gateway, user: &str) -> String {
    let mut agent = Agent::new();
    let reply = agent.sign_in(gw, user, "/").await;
    assert_eq!(reply.status, StatusCode::FOUND, "signed in: {}", reply.describe());
    let cookies = agent.session_cookies(gateway::COOKIE_NAME);
    assert_eq!(cookies, [gateway::COOKIE_NAME], "one small ticket cookie, never chunks");
    let value = &agent.jar[gateway::COOKIE_NAME];
    assert!(value.len() < 120, "a ticket, not a record: {} bytes", value.len());
    format!("{}={value}", gateway::COOKIE_NAME)
}

/// The value of the metric line starting with `series` (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const UNAVAILABLE: &str = r#"authgate_gateway_requests_total{outcome="session_store_unavailable"}"#;

fn is_sign_in_redirect(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::FOUND
        && headers.get(header::LOCATION).and_then(|l| l.to_str().ok()).is_some_and(|l| l.contains("/oauth2/start"))
}

#[tokio::test]
async fn a_sign_out_on_one_replica_ends_the_session_on_every_replica() {
    let Some(redis) = Redis::start().await else { return };
    let Some(r) = replicas(&redis, 2, |_| {}).await else { return };
    let [a, b] = r.gateways.as_slice() else { unreachable!() };
    let cookie = sign_in(a, "alice").await;
    assert_eq!(redis.keys("_authgate:s:*").len(), 1, "the record lives in Redis under the cookie name's prefix");

    for gw in [a, b] {
        let (status, _, body) = get(gw, "/app", Some(&cookie), Accept::Html).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let echo = common::echo::report(&body);
        assert_eq!(common::echo::header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    }
    assert_eq!(r.echo.hits(), 2);

    let (status, headers, _) = get(b, "/oauth2/sign_out", Some(&cookie), Accept::Html).await;
    assert_eq!(status, StatusCode::OK);
    let cleared = headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    assert!(cleared.iter().any(|c| c.starts_with("_authgate=;")), "the browser's copy is dropped: {cleared:?}");
    assert!(redis.keys("_authgate:s:*").is_empty(), "the record is deleted server-side");
    assert_eq!(redis.keys("_authgate:e:*").len(), 1, "a tombstone keeps racing refreshes out");
    assert_eq!(counter(&b.metrics().await, r#"authgate_gateway_sessions_revoked_total{reason="sign_out"}"#), 1);

    // The cookie captured before the sign-out, replayed on both replicas.
    for gw in [a, b] {
        let (status, headers, _) = get(gw, "/app", Some(&cookie), Accept::Html).await;
        assert!(is_sign_in_redirect(status, &headers), "browsers are sent to sign in: {status}");
        let (status, _, _) = get(gw, "/app", Some(&cookie), Accept::Json).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = get(gw, "/oauth2/userinfo", Some(&cookie), Accept::Json).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(r.echo.hits(), 2, "the upstream saw nothing of the replays");
}

#[tokio::test]
async fn redis_down_fails_closed_and_the_gateway_recovers_by_itself() {
    let Some(mut redis) = Redis::start().await else { return };
    let Some(r) = replicas(&redis, 1, |_| {}).await else { return };
    let gw = &r.gateways[0];
    let cookie = sign_in(gw, "alice").await;
    assert_eq!(get(gw, "/app", Some(&cookie), Accept::Html).await.0, StatusCode::OK);
    let hits = r.echo.hits();

    redis.stop_keeping_data();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, headers, body) = get(gw, "/app", Some(&cookie), Accept::Html).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("store-unavailable") && headers.contains_key(header::RETRY_AFTER), "{body}");
        assert!(headers.get(header::SET_COOKIE).is_none(), "the cookie is kept for when Redis is back");
        assert!(started.elapsed() < Duration::from_secs(3), "bounded: {:?}", started.elapsed());
    }
    let (status, _, body) = get(gw, "/app", Some(&cookie), Accept::Json).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"], "session_store_unavailable");
    let (status, _, _) = get(gw, "/oauth2/userinfo", Some(&cookie), Accept::Json).await;
    assert_ne!(status, StatusCode::OK, "never admitted");
    // No session needs no store: the usual sign-in redirect.
    let (status, headers, _) = get(gw, "/app", None, Accept::Html).await;
    assert!(is_sign_in_redirect(status, &headers), "{status}");
    // But a sign-in cannot complete without storing its session.
    let mut agent = Agent::new();
    let callback = agent.sign_in(gw, "alice", "/").await;
    assert_eq!(callback.status, StatusCode::SERVICE_UNAVAILABLE, "{}", callback.describe());
    assert!(!agent.has_session_cookie(), "no session handed out");
    // Nor can a sign-out pretend to have ended the session.
    assert_eq!(get(gw, "/oauth2/sign_out", Some(&cookie), Accept::Html).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.echo.hits(), hits, "nothing reached the upstream");
    let metrics = gw.metrics().await;
    assert!(counter(&metrics, UNAVAILABLE) >= 5, "{metrics}");
    assert!(counter(&metrics, r#"authgate_gateway_session_store_errors_total{operation="load"}"#) >= 1);
    assert!(counter(&metrics, r#"authgate_gateway_session_store_errors_total{operation="save"}"#) >= 1);

    // Back on the same port: the same cookie works, no restart.
    redis.resume().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = get(gw, "/app", Some(&cookie), Accept::Html).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.echo.hits(), hits + 1);

    // Hung rather than gone: each request still ends, within the bound.
    redis.freeze();
    let started = Instant::now();
    let (status, _, _) = get(gw, "/app", Some(&cookie), Accept::Html).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(4), "a hung Redis cannot hang requests: {:?}", started.elapsed());
    redis.thaw();
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(gw, "/app", Some(&cookie), Accept::Html).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "did not recover from the hang");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_wrong_password_fails_closed_and_stays_out_of_the_log() {
    const WRONG: &str = "not-the-redis-password";
    let Some(redis) = Redis::start().await else { return };
    let Some(good) = replicas(&redis, 1, |_| {}).await else { return };
    let cookie = sign_in(&good.gateways[0], "alice").await;
    // Same keys, same everything, but the wrong password.
    let mut config: GatewayConfig = good.gateways[0].config.clone().unwrap_or_else(|| {
        let yaml = std::fs::read_to_string(good._dir.path().join("gateway.yaml")).unwrap();
        GatewayConfig::from_yaml(&yaml).unwrap()
    });
    let mut wrong = redis.config();
    wrong.password = Some(Redacted::new(WRONG));
    config.session.store = authgate::contract::session::StoreConfig::Redis(wrong);
    let port = free_port();
    config.listen = ([127, 0, 0, 1], port).into();
    let bad = Gateway::start(config).await;
    let (status, _, body) = get(&bad, "/app", Some(&cookie), Accept::Html).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(get(&bad, "/app", Some(&cookie), Accept::Json).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(good.echo.hits(), 0);
    let logs = bad.logs();
    assert!(logs.contains("session store unavailable"), "the failure is logged: {logs}");
    assert!(!logs.contains(WRONG) && !logs.contains(PASSWORD), "no password in the log: {logs}");
    assert!(counter(&bad.metrics().await, UNAVAILABLE) >= 2);
}

/// A store over `redis` in this process.
struct InProcess {
    sessions: RedisSessions,
    keyring: Keyring,
    cookies: CookieSettings,
    metrics: Metrics,
}

impl InProcess {
    fn new(redis: &Redis) -> Self {
        Self::with(redis.config())
    }

    fn with(config: authgate::contract::session::RedisConfig) -> Self {
        let session = authgate::contract::session::SessionConfig {
            cookie_name: "_inproc".into(),
            ttl_seconds: 3600,
            ..Default::default()
        };
        Self {
            sessions: RedisSessions::new(&session, &config).expect("valid"),
            keyring: Keyring::new(&[Redacted::new(common::cookie_key())]).unwrap(),
            cookies: CookieSettings::new("_inproc", None, false, "/", 3600),
            metrics: Metrics::default(),
        }
    }

    fn store(&self) -> RedisStore<'_> {
        RedisStore { sessions: &self.sessions, keyring: &self.keyring, cookies: &self.cookies, metrics: &self.metrics }
    }
}

fn session(subject: &str, sid: Option<&str>, lifetime: u64) -> Session {
    let now = authgate::gateway::session::now();
    Session {
        id: authgate::gateway::session::new_session_id(),
        issued_at: now,
        validated_at: now,
        idp_sid: sid.map(str::to_owned),
        provider: "corp".into(),
        subject: subject.into(),
        user: format!("{subject}@example.com"),
        email: None,
        groups: vec!["sre".into()],
        access_token: "at-secret-token-value".into(),
        refresh_token: Some("rt".into()),
        access_issued_at: now,
        access_expires_at: now + 300,
        expires_at: now + lifetime,
        id_token: None,
    }
}

/// The request headers carrying the cookie `set` holds.
fn request_with(set: &HeaderMap) -> HeaderMap {
    let pair = set[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, pair.parse().unwrap());
    h
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn records_live_encrypted_for_the_rest_of_the_session_and_refresh_in_place() {
    let Some(redis) = Redis::start().await else { return };
    let p = InProcess::new(&redis);
    let store = p.store();
    let s = session("alice", Some("op-session-1"), 100);
    let mut set = HeaderMap::new();
    store.save(&s, Default::default(), &mut set).await.expect("saved");
    let key = format!("_inproc:s:{}", hex(&s.id));
    assert!((95..=100).contains(&redis.ttl(&key)), "TTL is the remaining lifetime: {}", redis.ttl(&key));
    let index = redis.keys("_inproc:u:*");
    assert_eq!(index.len(), 1);
    assert!((3590..=3600).contains(&redis.ttl(&index[0])), "indexes outlive every member");
    assert_eq!(redis.keys("_inproc:sid:*").len(), 1);
    let raw: Vec<u8> =
        redis::cmd("HGET").arg(&key).arg("r").query(&mut redis.connection().unwrap()).expect("the record");
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("at-secret-token-value") && !raw.contains("alice"), "encrypted at rest");
    let everything: Vec<String> = redis.keys("*");
    assert!(everything.iter().all(|k| !k.contains("alice") && !k.contains("op-session-1")), "{everything:?}");

    let loaded = store.load(&request_with(&set)).await;
    assert_eq!(loaded.record.as_deref(), Some(&s.encode()[..]));

    // A refresh rewrites the record in place; the cookie stays.
    let refreshed = Session { access_token: "at-2".into(), ..s.clone() };
    let mut again = HeaderMap::new();
    store.save(&refreshed, loaded.present, &mut again).await.expect("saved");
    assert!(again.is_empty(), "no new cookie for a refresh: {again:?}");
    let reloaded = store.load(&request_with(&set)).await;
    assert_eq!(SessionView::decode(reloaded.record.as_deref().unwrap()).unwrap().access_token, "at-2");

    // The ticket is bound to the record: another ticket for the same id does not open it.
    let mut other = HeaderMap::new();
    redis::cmd("DEL").arg(&key).query::<()>(&mut redis.connection().unwrap()).unwrap();
    store.save(&s, Default::default(), &mut other).await.expect("saved anew");
    let stale = store.load(&request_with(&set)).await;
    assert!(stale.record.is_none() && stale.ticket.is_some(), "the first ticket no longer opens it");
    assert!(store.load(&request_with(&other)).await.record.is_some());
}

#[tokio::test]
async fn end_user_ends_every_session_of_a_subject_or_of_one_provider_session() {
    let Some(redis) = Redis::start().await else { return };
    let p = InProcess::new(&redis);
    let store = p.store();
    let mut cookies = Vec::new();
    for (subject, sid) in [("alice", "sid-1"), ("alice", "sid-2"), ("bob", "sid-3")] {
        let mut set = HeaderMap::new();
        let s = session(subject, Some(sid), 600);
        store.save(&s, Default::default(), &mut set).await.unwrap();
        cookies.push((s, request_with(&set)));
    }
    let live = async |i: usize| store.load(&cookies[i].1).await.record.is_some();
    assert!(live(0).await && live(1).await && live(2).await);

    assert!(store.end_user("corp", None, Some("sid-2")).await.unwrap(), "the Redis store can");
    assert!(live(0).await && !live(1).await && live(2).await, "only that provider session");
    assert!(store.end_user("other", Some("alice"), None).await.unwrap(), "the Redis store can");
    assert!(live(0).await, "another provider's alice is someone else");
    assert!(store.end_user("corp", Some("alice"), None).await.unwrap(), "the Redis store can");
    assert!(!live(0).await && live(2).await, "every session of alice, none of bob");

    // A refresh racing the end cannot write the session back.
    let (ended, _) = &cookies[0];
    let mut out = HeaderMap::new();
    store.save(&Session { access_token: "late".into(), ..ended.clone() }, Default::default(), &mut out).await.unwrap();
    assert!(out.is_empty() && !live(0).await, "not resurrected");

    // The cookie store has nothing server-side to end.
    let cookie_store = CookieStore::new(&p.keyring, &p.cookies);
    assert!(!cookie_store.end_user("corp", Some("alice"), None).await.unwrap(), "Ok(false): cannot");
}

/// Saves a session through `p` and loads it back; whether it came back.
async fn round_trip(p: &InProcess) -> bool {
    let store = p.store();
    let mut set = HeaderMap::new();
    if store.save(&session("alice", None, 60), Default::default(), &mut set).await.is_err() {
        return false;
    }
    store.load(&request_with(&set)).await.record.is_some()
}

#[tokio::test]
async fn tls_with_a_private_ca_is_verified() {
    common::init();
    let ca = common::pki::TestCa::new("redis test CA");
    let Some(redis) = Redis::start_tls(&ca).await else { return };
    assert!(round_trip(&InProcess::new(&redis)).await, "trusting the CA");
    let mut foreign = redis.config();
    foreign.tls = Some(authgate::contract::session::RedisTlsConfig {
        ca_pem: Some(common::pki::TestCa::new("another CA").cert_pem),
    });
    let untrusting = InProcess::with(foreign);
    assert!(!round_trip(&untrusting).await, "a certificate from another CA is refused");
    let metrics = untrusting.metrics.render();
    assert!(counter(&metrics, r#"authgate_gateway_session_store_errors_total{operation="save"}"#) == 1, "{metrics}");
    let mut plain = redis.config();
    plain.tls = None;
    assert!(!round_trip(&InProcess::with(plain)).await, "no plain-text fallback");
}

#[tokio::test]
async fn sentinel_names_the_primary() {
    let Some(redis) = Redis::start().await else { return };
    let sentinel = Sentinel::start(&redis).await;
    let p = InProcess::with(sentinel.config());
    assert!(round_trip(&p).await, "stored through the primary the sentinel names");
    assert_eq!(redis.keys("_inproc:s:*").len(), 1, "on that primary");
    let mut wrong = sentinel.config();
    wrong.sentinel_master = Some("no-such-master".into());
    assert!(!round_trip(&InProcess::with(wrong)).await, "an unknown primary fails closed");
}
