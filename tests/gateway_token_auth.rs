//! `tokenAuth` routes against the real oidc-provider as token endpoint:
//! the gateway (a real process) fetches a `client_credentials` token once,
//! shares it, renews it before it expires without failing a request, and
//! rides out a token endpoint that goes away.
//!
//! The upstream of the token routes is [`Verifier`]: it checks the bearer's
//! signature against the OP's JWKS, that it was issued to the route's
//! client, and that nothing else that looks like a token (the user's own)
//! or the gateway's cookie arrived.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authgate::contract::routes::{RouteConfig, TokenAuthConfig};
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, Redacted};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::echo::{self, Echo};
use common::gateway::{self, Gateway};
use common::op::{self, Op, OpSettings};
use common::{Accept, Agent};
use serde_json::{Value, json};
use url::Url;

/// The route's machine client at the OP.
const CC_ID: &str = "route-client";
const CC_SECRET: &str = "route-secret-for-tests-only";
/// The OP's resource: its tokens for it are JWTs.
const RESOURCE: &str = "urn:authgate:upstream";

/// An upstream that accepts a request only with a bearer token the OP
/// signed for [`RESOURCE`] and issued to [`CC_ID`], unexpired (no leeway),
/// and with no other token and no session cookie anywhere in the request.
/// Answers 200 with the token's `jti`, `iat`, `exp` and the identity
/// header, or 401 with what was wrong.
struct Verifier {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

struct Keys {
    jwks: jsonwebtoken::jwk::JwkSet,
    issuer: String,
}

impl Verifier {
    async fn start(op: &Op) -> Self {
        let keys = Arc::new(Keys { jwks: op.jwks().await, issuer: op.issuer_str.clone() });
        let app = axum::Router::new().fallback(verify).with_state(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind verifier");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, task }
    }

    fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn verify(State(keys): State<Arc<Keys>>, request: Request) -> Response {
    let headers = request.headers();
    let mut problems = Vec::new();
    let authorizations: Vec<&str> =
        headers.get_all("authorization").iter().map(|v| v.to_str().unwrap_or("<not text>")).collect();
    let claims = match authorizations.as_slice() {
        [one] => match one.strip_prefix("Bearer ") {
            Some(token) => match check_jwt(&keys, token) {
                Ok(claims) => Some(claims),
                Err(e) => {
                    problems.push(format!("the bearer does not verify: {e}"));
                    None
                }
            },
            None => {
                problems.push("Authorization is not a bearer token".to_owned());
                None
            }
        },
        other => {
            problems.push(format!("{} Authorization headers", other.len()));
            None
        }
    };
    if let Some(c) = &claims
        && (c["client_id"] != CC_ID || c["sub"] != CC_ID)
    {
        problems
            .push(format!("the token was issued to {} for {}, not to the route's client", c["client_id"], c["sub"]));
    }
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name != "authorization" && value.contains("eyJ") {
            problems.push(format!("{name} carries something like a JWT"));
        }
        if name == "cookie" && value.contains(gateway::COOKIE_NAME) {
            problems.push("the gateway's session cookie arrived".to_owned());
        }
    }
    if !problems.is_empty() {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"problems": problems}))).into_response();
    }
    let c = claims.expect("no problems, so claims");
    let user = headers.get("x-auth-request-user").and_then(|v| v.to_str().ok());
    axum::Json(json!({"jti": c["jti"], "iat": c["iat"], "exp": c["exp"], "scope": c["scope"], "user": user}))
        .into_response()
}

fn check_jwt(keys: &Keys, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys.jwks.find(&kid).ok_or("kid not in the OP's JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[RESOURCE]);
    validation.set_issuer(&[keys.issuer.as_str()]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims).map_err(|e| e.to_string())
}

/// `/api` → `upstream` with the route's client at `op`, asking for two
/// scopes and the OP's resource.
fn token_route(op: &Op, upstream: &Url) -> RouteConfig {
    RouteConfig {
        path_prefix: "/api".into(),
        upstream: upstream.clone(),
        tls: None,
        methods: vec![],
        strip_prefix: false,
        headers: vec![],
        token_auth: Some(TokenAuthConfig {
            token_url: op.endpoint("token"),
            client_id: CC_ID.into(),
            client_secret: Redacted::new(CC_SECRET),
            scopes: vec!["email".into(), "groups".into()],
            audience: None,
            resource: Some(RESOURCE.into()),
            params: BTreeMap::new(),
            tls: None,
        }),
        forward_access_token: None,
        timeout_seconds: None,
        connect_timeout_seconds: None,
        cors: None,
    }
}

/// The OP with the route's machine client (plus `clients`), living
/// `cc_ttl` seconds per token.
fn op_settings(cc_ttl: u64, port: Option<u16>, mut clients: Vec<Value>) -> OpSettings {
    clients.push(op::machine_client(CC_ID, CC_SECRET));
    OpSettings { client_credentials_ttl: Some(cc_ttl), port, clients, ..OpSettings::default() }
}

/// A gateway without sign-in whose `/api` route takes `route`, the rest
/// going to `echo`.
async fn pass_through(echo: &Echo, route: RouteConfig) -> Gateway {
    let mut config = gateway::config(common::free_port(), &echo.url(), vec![]);
    config.authentication = Authentication::Disabled;
    config.routes.push(route);
    Gateway::start(config).await
}

/// The gateway's token fetches with `result` (`ok` or `error`).
async fn fetches(gw: &Gateway, result: &str) -> u64 {
    let metrics = gw.metrics().await;
    let wanted = format!(r#"client="{CC_ID}",result="{result}"}}"#);
    metrics
        .lines()
        .filter(|l| l.starts_with("authgate_gateway_upstream_token_fetches_total{") && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn client() -> reqwest::Client {
    common::init();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GET `url`; the verifier's report on 200, else the status and body.
async fn call(http: &reqwest::Client, url: &str) -> Result<Value, (u16, String)> {
    let response = http.get(url).send().await.map_err(|e| (0, e.to_string()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == StatusCode::OK {
        Ok(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    } else {
        Err((status.as_u16(), body))
    }
}

#[tokio::test]
async fn the_token_is_fetched_once_and_reused() {
    common::init();
    let Some(op) = Op::start(op_settings(60, None, vec![])).await else { return };
    let verifier = Verifier::start(&op).await;
    let echo = Echo::start().await;
    let gw = pass_through(&echo, token_route(&op, &verifier.url())).await;
    let http = client();

    let mut jtis = Vec::new();
    for i in 0..20 {
        let report = call(&http, &gw.url(&format!("/api/items/{i}"))).await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(report["scope"], "email groups", "the scopes are requested space-joined");
        jtis.push(report["jti"].as_str().unwrap().to_owned());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 1, "one token for every request: {jtis:?}");
    assert_eq!(fetches(&gw, "ok").await, 1);
    assert_eq!(fetches(&gw, "error").await, 0);
    assert_eq!(op.grants("client_credentials", CC_ID), 1, "the OP issued one token");

    // The route without tokenAuth gets no token; the client's own
    // Authorization is overwritten on the token route.
    let plain = echo::report(&http.get(gw.url("/other")).send().await.unwrap().text().await.unwrap());
    assert_eq!(echo::header(&plain, "authorization"), None);
    let sent = http.get(gw.url("/api/x")).header("authorization", "Bearer client-sent").send().await.unwrap();
    assert_eq!(sent.status(), StatusCode::OK, "{}", sent.text().await.unwrap());

    let logs = gw.logs();
    assert!(!logs.contains(CC_SECRET), "the client secret is not logged");
    assert!(!logs.contains(&jtis[0]) && !logs.contains("eyJ"), "the token is not logged");
}

#[tokio::test]
async fn it_is_renewed_before_expiry_without_failing_a_request_under_load() {
    common::init();
    // Four-second tokens: renewed after 2 s, never sent after 3 s.
    let Some(op) = Op::start(op_settings(4, None, vec![])).await else { return };
    let verifier = Verifier::start(&op).await;
    let echo = Echo::start().await;
    let gw = pass_through(&echo, token_route(&op, &verifier.url())).await;
    let url = gw.url("/api/load");

    // Eight clients for ten seconds: two and a half token lifetimes.
    let tokens = Arc::new(Mutex::new(BTreeMap::<String, (i64, i64)>::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let clients = (0..8).map(|_| {
        let (url, tokens, failures) = (url.clone(), tokens.clone(), failures.clone());
        tokio::spawn(async move {
            let http = client();
            let mut n = 0;
            while Instant::now() < deadline {
                match call(&http, &url).await {
                    Ok(r) => {
                        let times = (r["iat"].as_i64().unwrap(), r["exp"].as_i64().unwrap());
                        tokens.lock().unwrap().insert(r["jti"].as_str().unwrap().to_owned(), times);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                n += 1;
            }
            n
        })
    });
    let requests: u32 = futures::future::join_all(clients).await.into_iter().map(Result::unwrap).sum();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(requests > 200, "constant load: only {requests} requests");

    // Renewed every ~2 s: each token was issued while the previous one
    // was still valid.
    let mut lifetimes: Vec<(i64, i64)> = tokens.lock().unwrap().values().copied().collect();
    lifetimes.sort();
    assert!((4..=7).contains(&lifetimes.len()), "tokens used over 10 s: {lifetimes:?}");
    for pair in lifetimes.windows(2) {
        assert!(
            pair[1].0 < pair[0].1,
            "a token issued at {} after its predecessor expired at {}",
            pair[1].0,
            pair[0].1
        );
    }
    let ok = fetches(&gw, "ok").await;
    assert!(ok as usize >= lifetimes.len() && ok <= 7, "{ok} fetches for {} tokens", lifetimes.len());
    assert_eq!(fetches(&gw, "error").await, 0);
    assert_eq!(op.grants("client_credentials", CC_ID) as u64, ok, "the gateway's count matches the OP's");
}

#[tokio::test]
async fn many_concurrent_first_requests_share_one_fetch() {
    common::init();
    let Some(op) = Op::start(op_settings(60, None, vec![])).await else { return };
    let verifier = Verifier::start(&op).await;
    let echo = Echo::start().await;
    let gw = pass_through(&echo, token_route(&op, &verifier.url())).await;
    assert_eq!(fetches(&gw, "ok").await, 0, "nothing is fetched before the first request");

    let http = client();
    let calls = (0..50).map(|i| {
        let (http, url) = (http.clone(), gw.url(&format!("/api/{i}")));
        tokio::spawn(async move { call(&http, &url).await })
    });
    let reports: Vec<Value> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap_or_else(|e| panic!("{e:?}")))
        .collect();
    let mut jtis: Vec<&str> = reports.iter().map(|r| r["jti"].as_str().unwrap()).collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 1, "50 requests saw {} tokens", jtis.len());
    assert_eq!(fetches(&gw, "ok").await, 1);
    assert_eq!(op.grants("client_credentials", CC_ID), 1);
}

#[tokio::test]
async fn with_the_token_endpoint_down_requests_fail_with_502_and_it_recovers_by_itself() {
    common::init();
    let port = common::free_port();
    // Three-second tokens: used for 2.25 s.
    let Some(op) = Op::start(op_settings(3, Some(port), vec![])).await else { return };
    let echo = Echo::start().await;
    let gw = pass_through(&echo, token_route(&op, &echo.url())).await;
    let http = client();
    let bearer = |body: &str| echo::header(&echo::report(body), "authorization");
    let first = http.get(gw.url("/api/up")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(bearer(&first.text().await.unwrap()).is_some_and(|b| b.starts_with("Bearer ey")));

    drop(op);
    // The cached token keeps serving while it is valid.
    let cached = http.get(gw.url("/api/cached")).send().await.unwrap();
    assert_eq!(cached.status(), StatusCode::OK, "a still-valid token is used while the endpoint is down");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Expired and no endpoint: 502, fast, and the endpoint is not hammered.
    for _ in 0..20 {
        let started = Instant::now();
        let r = http.get(gw.url("/api/down")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert!(started.elapsed() < Duration::from_secs(2), "failing took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(echo.hits(), 2, "nothing without a token reached the upstream");
    let errors = fetches(&gw, "error").await;
    assert!((1..=4).contains(&errors), "{errors} failed fetches for 20 requests: backoff, not one per request");

    // Back on the same port: the route recovers without a restart.
    let Some(op) = Op::start(op_settings(3, Some(port), vec![])).await else { return };
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let r = http.get(gw.url("/api/again")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            assert!(bearer(&r.text().await.unwrap()).is_some_and(|b| b.starts_with("Bearer ey")));
            break;
        }
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert!(Instant::now() < deadline, "not recovered within 45 s:\n{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(op.grants("client_credentials", CC_ID) >= 1);
    assert!(fetches(&gw, "ok").await >= 2);
    let logs = gw.logs();
    assert!(logs.contains("backing off") && logs.contains(&format!("127.0.0.1:{port}")), "{logs}");
    assert!(!logs.contains(CC_SECRET));
}

#[tokio::test]
async fn a_signed_in_users_own_token_does_not_reach_a_token_route() {
    common::init();
    let port = common::free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let user_client = op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&callback]);
    let Some(op) = Op::start(op_settings(60, None, vec![user_client])).await else { return };
    let verifier = Verifier::start(&op).await;
    let echo = Echo::start().await;
    let provider = gateway::oidc_provider(&op, "corp", common::CLIENT_ID, common::CLIENT_SECRET);
    let mut config: GatewayConfig = gateway::config(port, &echo.url(), vec![provider]);
    common::sre_only(&mut config);
    // The policy forwards the user's token; the token route overrides it.
    config.forward.access_token = true;
    config.routes.push(token_route(&op, &verifier.url()));
    let gw = Gateway::start(config).await;

    // Without a session the route is closed, and no token is fetched.
    let mut anonymous = Agent::new();
    let refused = anonymous.get(&gw.url("/api/private"), Accept::Json).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fetches(&gw, "ok").await, 0);

    let mut alice = Agent::new();
    let signed_in = alice.sign_in(&gw, "alice", "/").await;
    assert_eq!(signed_in.status, StatusCode::FOUND, "{}", signed_in.describe());
    // Control: on the default route the user's own token does arrive.
    let plain = alice.get(&gw.url("/"), Accept::Json).await;
    let plain = echo::report(&plain.body);
    let user_bearer = echo::header(&plain, "authorization").expect("the user's token upstream");
    let identity = echo::header(&plain, "x-auth-request-user").expect("identity headers");
    let user_claims = op.verify_access_token(user_bearer.strip_prefix("Bearer ").unwrap()).await;
    assert_eq!(user_claims["sub"], "alice");

    // On the token route: the route's token, the user's identity, and
    // neither the user's token nor the session cookie (the verifier checks).
    let reply = alice
        .send(reqwest::Method::GET, &gw.url("/api/me"), Accept::Json, &[("authorization", "Bearer forged")], None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.describe());
    assert_eq!(reply.json()["user"], identity.as_str(), "identity headers still go to a token route");
    assert!(!reply.body.contains(&user_bearer));
    assert_eq!(fetches(&gw, "ok").await, 1);
}
