use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;

use super::schedule::{BACKOFF_CAP, DEFAULT_LIFETIME, MAX_LIFETIME, backoff};
use super::*;
use crate::contract::config::Redacted;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn schedule_renews_at_80_percent_and_stops_before_expiry() {
    // One hour: renewed after 48 min, used up to 30 s before expiry.
    let hour = Schedule::new(Some(3600));
    assert_eq!((hour.renew_after, hour.usable_for), (secs(2880.0), secs(3570.0)));
    // Ten seconds: 80 %, one second of margin.
    let ten = Schedule::new(Some(10));
    assert_eq!((ten.renew_after, ten.usable_for), (secs(8.0), secs(9.0)));
    // Four seconds: 80 % would leave less than two margins, so renewal
    // starts at half the lifetime, and the last second is not used.
    let four = Schedule::new(Some(4));
    assert_eq!((four.renew_after, four.usable_for), (secs(2.0), secs(3.0)));
    // Every plan renews before it stops using the token.
    for s in [0, 1, 2, 3, 5, 7, 30, 59, 60, 61, 299, 301, 7200, 86_400, 1 << 40] {
        let plan = Schedule::new(Some(s));
        assert!(plan.renew_after < plan.usable_for && plan.usable_for < plan.lifetime, "{s}: {plan:?}");
        assert!(plan.renew_after >= plan.lifetime / 2, "{s}: {plan:?}");
    }
}

#[test]
fn a_missing_expires_in_means_five_minutes() {
    let plan = Schedule::new(None);
    assert_eq!(plan.lifetime, DEFAULT_LIFETIME);
    assert_eq!((plan.renew_after, plan.usable_for), (secs(240.0), secs(270.0)));
}

#[test]
fn lifetimes_are_bounded() {
    assert_eq!(Schedule::new(Some(u64::MAX)).lifetime, MAX_LIFETIME);
    let zero = Schedule::new(Some(0));
    assert_eq!(zero.lifetime, Duration::from_secs(1));
    assert_eq!((zero.renew_after, zero.usable_for), (secs(0.5), secs(0.75)));
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    let full: Vec<u64> = (1..=7).map(|n| backoff(n, 1.0).as_secs()).collect();
    assert_eq!(full, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
    assert_eq!(backoff(3, 0.5), secs(2.0));
    // Jitter stays within half and all of the delay.
    assert_eq!(backoff(3, 0.1), secs(2.0));
    assert_eq!(backoff(3, 7.0), secs(4.0));
    for _ in 0..100 {
        let j = schedule::jitter();
        assert!((0.5..=1.0).contains(&j));
    }
}

#[test]
fn answers_parse_into_tokens_or_errors_without_quoting_the_body() {
    let ok = fetch::parse(StatusCode::OK, br#"{"access_token":"abc.def","token_type":"bearer","expires_in":60}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.value, "Bearer abc.def");
    assert!(ok.value.is_sensitive());
    assert_eq!(ok.expires_in, Some(60));
    let text = fetch::parse(StatusCode::OK, br#"{"access_token":"t","token_type":"Bearer","expires_in":"3599"}"#);
    assert_eq!(text.map(|f| f.expires_in).ok(), Some(Some(3599)));
    let absent = fetch::parse(StatusCode::OK, br#"{"access_token":"t"}"#);
    assert_eq!(absent.map(|f| f.expires_in).ok(), Some(None));
    let negative = fetch::parse(StatusCode::OK, br#"{"access_token":"t","expires_in":-5}"#);
    assert_eq!(negative.map(|f| f.expires_in).ok(), Some(None));

    let secret = "the-client-secret-echoed";
    let cases: [(StatusCode, String, &str); 6] = [
        (StatusCode::OK, format!(r#"{{"access_token":"a b","note":"{secret}"}}"#), "no usable bearer token"),
        (StatusCode::OK, format!(r#"{{"access_token":"x","token_type":"mac","k":"{secret}"}}"#), "not Bearer"),
        (StatusCode::OK, format!("<html>{secret}</html>"), "no usable bearer token"),
        (StatusCode::UNAUTHORIZED, format!(r#"{{"error":"invalid_client","d":"{secret}"}}"#), "401: invalid_client"),
        (StatusCode::BAD_REQUEST, format!(r#"{{"error":"{secret} with spaces"}}"#), "400: no OAuth error code"),
        (StatusCode::FOUND, String::new(), "302: redirect, not followed"),
    ];
    for (status, body, expected) in cases {
        let error = fetch::parse(status, body.as_bytes()).err().expect("an error");
        let message = error.to_string();
        assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        assert!(!message.contains(secret), "{message:?} quotes the body");
    }
}

fn config(token_url: &str) -> TokenAuthConfig {
    TokenAuthConfig {
        token_url: token_url.parse().unwrap(),
        client_id: "gate way:1".into(),
        client_secret: Redacted::new("s3cr:t+/%"),
        scopes: vec!["read".into(), "write".into()],
        audience: None,
        resource: Some("https://api.example.com/".into()),
        params: BTreeMap::from([("tenant".into(), "a&b".into())]),
        tls: None,
    }
}

#[test]
fn configs_that_cannot_work_are_refused_up_front() {
    let refused = |c: TokenAuthConfig| TokenSource::new(&c).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused(config("http://login.example.com/token")).contains("https://"));
    let mut reserved = config("https://login.example.com/token");
    reserved.params.insert("grant_type".into(), "password".into());
    assert!(refused(reserved).contains("grant_type"));
    let mut mtls = config("https://login.example.com/token");
    mtls.tls = Some(crate::contract::routes::TlsConfig { insecure_skip_verify: true, ..Default::default() });
    assert!(refused(mtls).contains("CA bundle only"));
    assert!(TokenSource::new(&config("http://127.0.0.1:1/token")).is_ok());
    assert!(TokenSource::new(&config("https://login.example.com/token")).is_ok());
}

/// An in-process token endpoint: counts requests, records the last one,
/// answers after `delay_ms` with a new token each time, or 503 while
/// `failing`.
#[derive(Default)]
struct Fake {
    hits: AtomicUsize,
    failing: AtomicBool,
    delay_ms: AtomicU64,
    expires_in: AtomicU64,
    last: Mutex<Option<(String, String)>>,
}

async fn token_endpoint(
    State(fake): State<Arc<Fake>>,
    headers: http::HeaderMap,
    body: String,
) -> axum::response::Response {
    let n = fake.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    *fake.last.lock().unwrap() = Some((basic, body));
    tokio::time::sleep(Duration::from_millis(fake.delay_ms.load(Ordering::SeqCst))).await;
    if fake.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let expires_in = fake.expires_in.load(Ordering::SeqCst);
    axum::Json(
        serde_json::json!({"access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": expires_in}),
    )
    .into_response()
}

async fn fake_endpoint(expires_in: u64) -> (Arc<Fake>, TokenSource) {
    let fake = Arc::new(Fake::default());
    fake.expires_in.store(expires_in, Ordering::SeqCst);
    let app = axum::Router::new().route("/token", axum::routing::post(token_endpoint)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, TokenSource::new(&config(&url)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_the_grant_with_basic_auth_encoded_per_rfc_6749() {
    let (fake, source) = fake_endpoint(60).await;
    assert_eq!(source.authorization().await.unwrap(), "Bearer token-1");
    let (basic, body) = fake.last.lock().unwrap().clone().unwrap();
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        basic.strip_prefix("Basic ").expect("HTTP Basic"),
    )
    .unwrap();
    // Both parts form-urlencoded before Basic: the ':' of the ID cannot
    // split it.
    assert_eq!(String::from_utf8(decoded).unwrap(), "gate+way%3A1:s3cr%3At%2B%2F%25");
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let expected = [
        ("grant_type", "client_credentials"),
        ("resource", "https://api.example.com/"),
        ("scope", "read write"),
        ("tenant", "a&b"),
    ];
    assert_eq!(form, expected.map(|(k, v)| (k.to_owned(), v.to_owned())).into());
    // Reused, not fetched again.
    assert_eq!(source.authorization().await.unwrap(), "Bearer token-1");
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let (fake, source) = fake_endpoint(60).await;
    fake.delay_ms.store(200, Ordering::SeqCst);
    let source = Arc::new(source);
    let calls = (0..50).map(|_| {
        let source = source.clone();
        tokio::spawn(async move { source.authorization().await })
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().unwrap(), "Bearer token-1");
    }
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_runs_in_the_background_while_the_old_token_serves() {
    // Two seconds: renewed after 1 s, used for 1.5 s.
    let (fake, source) = fake_endpoint(2).await;
    assert_eq!(source.authorization().await.unwrap(), "Bearer token-1");
    fake.delay_ms.store(300, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    // Due for renewal: the old token comes back at once, without waiting
    // for the slow endpoint, and only one renewal starts.
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(source.authorization().await.unwrap(), "Bearer token-1");
        assert!(started.elapsed() < Duration::from_millis(100), "waited {:?}", started.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(source.authorization().await.unwrap(), "Bearer token-2");
    assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_fail_fast_and_recover() {
    let (fake, source) = fake_endpoint(60).await;
    fake.failing.store(true, Ordering::SeqCst);
    let first = source.authorization().await.unwrap_err();
    assert!(matches!(first, TokenError::Refused { status: 503, .. }), "{first}");
    // Within the backoff: refused at once, the endpoint left alone.
    for _ in 0..10 {
        let error = source.authorization().await.unwrap_err();
        assert!(matches!(&error, TokenError::Backoff { last, .. } if matches!(**last, TokenError::Refused { .. })));
    }
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);
    // The first backoff is at most a second; then the endpoint is back.
    fake.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(source.authorization().await.unwrap(), "Bearer token-2");
    assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_naming_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let source = TokenSource::new(&config(&format!("http://127.0.0.1:{port}/token"))).unwrap();
    let error = source.authorization().await.unwrap_err();
    assert!(matches!(error, TokenError::Unreachable(_)), "{error}");
    assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
}
