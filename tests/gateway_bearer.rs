//! The real `authgate gateway` accepting bearer JWTs (`machine.bearer`):
//! crafted tokens signed with the hostile OP's keys (served from its JWKS)
//! each refused for the one thing wrong with them, and never reaching the
//! upstream; a good one reaching it with the mapped identity headers; the
//! policy's access rules applied to bearer identities.

mod common;
mod fakes;

use authgate::api::AllowList;
use authgate::contract::machine::{BearerAlgorithm, BearerClaimPaths, BearerIssuerConfig};
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::ProviderType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::echo::{header, report};
use common::{Echo, Gateway, free_port, gateway, init};
use fakes::hostile_op::{HostileOp, keys};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AUDIENCE: &str = "urn:authgate:api";
const LOGIN_CLIENT: &str = "authgate-login";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn issuer(op: &HostileOp, name: &str) -> BearerIssuerConfig {
    BearerIssuerConfig {
        name: name.into(),
        issuer: op.issuer(),
        audiences: vec![AUDIENCE.into()],
        algorithms: vec![BearerAlgorithm::RS256],
        jwks_url: Some(op.jwks_url()),
        jwks: None,
        ca_pem: None,
        claims: BearerClaimPaths { groups: "realm_access.roles".into(), ..BearerClaimPaths::default() },
        login_client_ids: vec![LOGIN_CLIENT.into()],
    }
}

fn claims(iss: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": "ci-deployer", "aud": [AUDIENCE], "exp": t + 600, "iat": t,
        "email": "ci@example.com", "email_verified": true, "realm_access": {"roles": ["sre", "deploy"]}})
}

fn rs256(kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn primary(claims: &Value) -> String {
    rs256(&keys().primary.kid, &keys().primary.encoding, claims)
}

struct Setup {
    gateway: Gateway,
    echo: Echo,
    op: HostileOp,
    http: reqwest::Client,
}

async fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> Setup {
    init();
    let op = HostileOp::start("unused", "unused-secret-0123456789").await;
    let echo = Echo::start().await;
    // A provider for browsers, as a policy has; the bearer issuer is apart.
    let mut login = gateway::provider(
        "login",
        ProviderType::Oidc,
        LOGIN_CLIENT,
        "login-secret-0123456789",
        op.authorize_url(),
        op.token_url(),
        &["openid"],
        AllowList::default(),
    );
    login.issuer_url = Some(op.issuer_url());
    login.jwks_url = Some(op.jwks_url());
    let mut config = gateway::config(free_port(), &echo.url(), vec![login]);
    config.machine.bearer = vec![issuer(&op, "ci")];
    tweak(&mut config);
    let gateway = Gateway::start(config).await;
    Setup { gateway, echo, op, http: reqwest::Client::new() }
}

impl Setup {
    async fn call(&self, token: &str) -> reqwest::Response {
        self.http.get(self.gateway.url("/api/x")).bearer_auth(token).send().await.unwrap()
    }

    /// The token is refused with 401 and `reason`, before the upstream.
    async fn refused(&self, token: &str, reason: &str, case: &str) {
        let hits = self.echo.hits();
        let r = self.call(token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{case}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{case}: {challenge}");
        assert_eq!(r.json::<Value>().await.unwrap()["error_description"], reason, "{case}");
        assert_eq!(self.echo.hits(), hits, "{case}: the upstream was not reached");
    }
}

#[tokio::test]
async fn a_good_bearer_reaches_the_upstream_with_its_mapped_identity() {
    let s = start(|_| {}).await;
    let token = primary(&claims(&s.op.issuer()));
    let mut fetches = None;
    for _ in 0..2 {
        let r = s.call(&token).await;
        assert_eq!(r.status(), StatusCode::OK);
        let echo = report(&r.text().await.unwrap());
        assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("ci-deployer"));
        assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("ci@example.com"));
        assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,deploy"));
        let now_fetched = s.op.jwks_fetches();
        assert!(fetches.is_none_or(|f| f == now_fetched), "the second request was served without a fetch");
        fetches = Some(now_fetched);
    }
    assert!(s.gateway.metrics().await.contains("authenticated_requests_total{method=\"bearer\"} 2"));
    assert!(!s.gateway.logs().contains(&token), "no token in the logs");

    // Only in the header: in the query string it is refused outright.
    let hits = s.echo.hits();
    let r = s.http.get(s.gateway.url(&format!("/api/x?access_token={token}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.echo.hits(), hits);
}

#[tokio::test]
async fn crafted_bearers_are_refused_each_for_its_own_reason() {
    let s = start(|_| {}).await;
    let iss = s.op.issuer();
    let k = keys();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&iss);
        f(&mut c);
        c
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(&iss)));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(k.primary.kid.clone());
    let confused =
        jsonwebtoken::encode(&hs, &claims(&iss), &EncodingKey::from_secret(k.primary.public_pem.as_bytes())).unwrap();
    let mut jku = Header::new(Algorithm::RS256);
    jku.kid = Some(k.attacker.kid.clone());
    jku.jku = Some(format!("http://{}/evil-jwks", s.op.addr));
    let jku = jsonwebtoken::encode(&jku, &claims(&iss), &k.attacker.encoding).unwrap();
    let t = now();
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "algorithm"),
        ("HS256 keyed with the RSA public key", confused, "algorithm"),
        ("a jku header", jku, "key_header"),
        ("unknown kid after a refetch", rs256("never-published", &k.attacker.encoding, &claims(&iss)), "unknown_kid"),
        (
            "signed with another key under the issuer's kid",
            rs256(&k.primary.kid, &k.attacker.encoding, &claims(&iss)),
            "signature",
        ),
        ("an unknown issuer", primary(&with(&|c| c["iss"] = json!("https://elsewhere.example"))), "unknown_issuer"),
        ("wrong aud", primary(&with(&|c| c["aud"] = json!("urn:other"))), "audience"),
        ("missing aud", primary(&with(&|c| drop(c.as_object_mut().unwrap().remove("aud")))), "audience"),
        ("an ID token (login client aud)", primary(&with(&|c| c["aud"] = json!([AUDIENCE, LOGIN_CLIENT]))), "id_token"),
        ("an ID token (nonce)", primary(&with(&|c| c["nonce"] = json!("n-1"))), "id_token"),
        ("expired", primary(&with(&|c| c["exp"] = json!(t - 120))), "expired"),
        ("not yet valid", primary(&with(&|c| c["nbf"] = json!(t + 600))), "not_yet_valid"),
        ("groups with CR/LF", primary(&with(&|c| c["realm_access"]["roles"] = json!(["sre\r\nX-Evil: 1"]))), "claims"),
    ];
    for (case, token, reason) in &cases {
        s.refused(token, reason, case).await;
    }
    let metrics = s.gateway.metrics().await;
    for reason in ["algorithm", "key_header", "unknown_kid", "signature", "audience", "id_token", "expired", "claims"] {
        assert!(metrics.contains(&format!("bearer_failures_total{{reason=\"{reason}\"}}")), "{reason}: {metrics}");
    }
    let logs = s.gateway.logs();
    assert!(cases.iter().all(|(_, token, _)| !logs.contains(token.as_str())), "no token in the logs");
}

#[tokio::test]
async fn the_wrong_issuers_key_is_refused() {
    // Issuer B's keys are the attacker key (embedded); a token claiming
    // issuer A but signed with B's key never meets B's keys.
    let b = HostileOp::start("b", "b-secret-0123456789012345").await;
    let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": keys().attacker.kid,
        "n": keys().attacker.n, "e": keys().attacker.e}]});
    let b_issuer = BearerIssuerConfig { jwks_url: None, jwks: Some(jwks.to_string()), ..issuer(&b, "b") };
    let s = start(|c| c.machine.bearer.push(b_issuer)).await;
    let a_claims = claims(&s.op.issuer());
    let token = rs256(&keys().attacker.kid, &keys().attacker.encoding, &a_claims);
    s.refused(&token, "unknown_kid", "A's iss, B's key").await;
    let b_token = rs256(&keys().attacker.kid, &keys().attacker.encoding, &claims(&b.issuer()));
    assert_eq!(s.call(&b_token).await.status(), StatusCode::OK, "B's own token with B's key is fine");
}

#[tokio::test]
async fn the_policys_access_rules_apply_to_bearer_identities() {
    let s = start(|c| {
        c.access.allowed_groups = vec!["sre".into()];
        c.access.allowed_domains = vec!["example.com".into()];
    })
    .await;
    let iss = s.op.issuer();
    let ok = primary(&claims(&iss));
    assert_eq!(s.call(&ok).await.status(), StatusCode::OK);
    let cases = [
        ("not in an allowed group", json!({"realm_access": {"roles": ["dev"]}})),
        ("outside the allowed domains", json!({"email": "ci@evil.org"})),
        ("an unverified email under a domain rule", json!({"email_verified": false})),
        ("an email_verified that is not true", json!({"email_verified": "yes"})),
    ];
    for (case, patch) in cases {
        let mut c = claims(&iss);
        c.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let hits = s.echo.hits();
        let r = s.call(&primary(&c)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(s.echo.hits(), hits, "{case}");
    }
}

/// A `client_credentials` JWT of the real OP (resource indicators, JWT
/// access tokens, groups from `extraTokenClaims`), and the same OP's ID
/// token from a browser login replayed as a bearer.
#[tokio::test]
async fn a_client_credentials_jwt_of_the_real_op_reaches_the_upstream() {
    use common::{Accept, Agent, Op, OpSettings, op};
    init();
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let mut machine = op::machine_client("ci-bot", "ci-bot-secret-0123456789");
    machine["extra_token_claims"] = json!({"groups": ["sre", "ci"]});
    let clients = vec![op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&callback]), machine];
    let Some(op) = Op::start(OpSettings { clients, ..OpSettings::default() }).await else { return };
    let echo = Echo::start().await;
    let mut config = gateway::config(
        port,
        &echo.url(),
        vec![gateway::oidc_provider(&op, "corp", common::CLIENT_ID, common::CLIENT_SECRET)],
    );
    config.access.allowed_groups = vec!["sre".into()];
    config.forward.access_token = true;
    config.forward.id_token = true;
    config.machine.bearer = vec![BearerIssuerConfig {
        name: "op-machines".into(),
        issuer: op.issuer_str.clone(),
        audiences: vec!["urn:authgate:upstream".into()],
        algorithms: vec![BearerAlgorithm::RS256],
        jwks_url: Some(op.endpoint("jwks")),
        jwks: None,
        ca_pem: None,
        claims: BearerClaimPaths::default(),
        login_client_ids: vec![common::CLIENT_ID.into()],
    }];
    let gw = Gateway::start(config).await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(op.endpoint("token"))
        .basic_auth("ci-bot", Some("ci-bot-secret-0123456789"))
        .form(&[("grant_type", "client_credentials"), ("resource", "urn:authgate:upstream"), ("scope", "groups")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {token}"));
    assert_eq!(access.matches('.').count(), 2, "a JWT access token");
    let r = http.get(gw.url("/api")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echo_report = report(&r.text().await.unwrap());
    assert_eq!(header(&echo_report, "x-auth-request-user").as_deref(), Some("ci-bot"));
    assert_eq!(header(&echo_report, "x-auth-request-groups").as_deref(), Some("sre,ci"));

    // The ID token of a browser login at the same OP, as a bearer: its aud
    // is the login client. Refused before the upstream.
    let mut agent = Agent::new();
    agent.sign_in(&gw, "alice", "/").await;
    let page = agent.get(&gw.url("/whoami"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let forwarded = header(&report(&page.body), "authorization").expect("the ID token is forwarded");
    let id_token = forwarded.strip_prefix("Bearer ").unwrap().to_owned();
    let hits = echo.hits();
    let r = http.get(gw.url("/api")).bearer_auth(&id_token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error_description"], "audience", "its aud is the login client only");
    assert_eq!(echo.hits(), hits);
}
