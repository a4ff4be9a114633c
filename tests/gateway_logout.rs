//! Ending sessions at the identity provider, against the real gateway
//! binary: the refresh token revoked at sign-out (RFC 7009), RP-initiated
//! logout in Chromium (OpenID Connect RP-Initiated Logout 1.0), and
//! back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0),
//! both real ones from oidc-provider and hostile ones crafted here and
//! signed with keys of the fake OP in `tests/fakes/hostile_op.rs`.

mod common;
mod fakes;

use std::time::Duration;

use authgate::api::AllowList;
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::ProviderType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::gateway::provider;
use common::login::{assert_logged_in, query_map};
use common::{Accept, Agent, Browser, CLIENT_ID, CLIENT_SECRET, Echo, Gateway, Op, OpSettings, free_port, gateway, op};
use fakes::hostile_op::{HostileOp, Mode, SUBJECT, keys};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const PROTECTED: &str = "/app/page";

/// The real OP, an echo upstream and a gateway whose provider has the OP's
/// revocation endpoint and, with `end_session`, its end-session endpoint.
/// The OP's client registers the gateway's signed-out page and, with
/// `backchannel`, its back-channel logout endpoint.
struct RealStack {
    gateway: Gateway,
    op: Op,
    _echo: Echo,
}

async fn real_stack(access_token_ttl: u64, end_session: bool, backchannel: bool) -> Option<RealStack> {
    common::init();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = op::with_logout(
        op::client(CLIENT_ID, CLIENT_SECRET, &[&format!("{base}/oauth2/callback")]),
        &format!("{base}/oauth2/signed_out"),
        backchannel.then(|| format!("{base}/oauth2/backchannel_logout")).as_deref(),
    );
    let op = Op::start(OpSettings { access_token_ttl, clients: vec![client], ..OpSettings::default() }).await?;
    let echo = Echo::start().await;
    let mut p = gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET);
    p.revocation_url = Some(op.revocation_url());
    p.end_session_url = end_session.then(|| op.end_session_url());
    let mut config = gateway::config(port, &echo.url(), vec![p]);
    common::sre_only(&mut config);
    let gateway = Gateway::start_with(config, &[("RUST_LOG", "authgate=debug")]).await;
    Some(RealStack { gateway, op, _echo: echo })
}

/// The value of the first metric line starting with `prefix`, 0 if none.
async fn metric(gw: &Gateway, prefix: &str) -> f64 {
    let text = reqwest::get(gw.ops_url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap_or_else(|_| panic!("metric {prefix}: {v}")))
}

async fn signed_in_agent(gw: &Gateway, user: &str) -> Agent {
    let mut agent = Agent::new();
    let callback = agent.sign_in(gw, user, PROTECTED).await;
    assert!(callback.status.is_redirection(), "sign-in: {}\n{}", callback.describe(), gw.logs());
    let page = agent.get(&gw.url(PROTECTED), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "signed in: {}", page.describe());
    agent
}

/// The OP's refresh token is dead after sign-out.
///
/// The gateway never shows anyone its tokens, so the test asks the OP in
/// the one way the session itself would: it keeps a copy of the session
/// cookie from before sign-out (the cookie store cannot invalidate copies)
/// and presents it once the access token has expired. The gateway then
/// uses the session's refresh token at the OP's token endpoint, and the OP
/// answers `invalid_grant` (logged by op.mjs as `grant.error:
/// InvalidGrant`): the token was revoked, and with it the grant
/// (oidc-provider revokes the grant of a revoked refresh token). A second
/// session of the same user, not signed out, refreshes fine at the same
/// moment: the refusal is the revocation, not the expiry.
#[tokio::test(flavor = "multi_thread")]
async fn sign_out_revokes_the_refresh_token_at_the_provider() {
    let Some(s) = real_stack(2, false, false).await else { return };
    let gw = &s.gateway;
    let mut signed_out = signed_in_agent(gw, "alice").await;
    let mut kept = signed_in_agent(gw, "alice").await;
    let old_cookie = signed_out.cookie_header_for(gw.base.port()).expect("session cookie");
    assert!(!s.op.logs().contains("revocation.error"), "{}", s.op.logs());

    let out = signed_out.get(&gw.url("/oauth2/sign_out"), Accept::Html).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.describe());
    assert!(out.body.contains("signed-out"), "the signed-out page: {}", out.body);
    assert!(!signed_out.has_session_cookie(), "the cookie was removed");
    assert!(!s.op.logs().contains("revocation.error"), "the OP accepted the revocation: {}", s.op.logs());

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let replay =
        Agent::new().send(Method::GET, &gw.url(PROTECTED), Accept::Json, &[("cookie", &old_cookie)], None).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "the old session could refresh: {}", replay.describe());
    assert!(s.op.logs().contains("grant.error: InvalidGrant"), "the OP refused the refresh token: {}", s.op.logs());
    assert_eq!(s.op.grants("refresh_token", CLIENT_ID), 0, "no refresh succeeded yet");

    let other = kept.get(&gw.url(PROTECTED), Accept::Json).await;
    assert_eq!(other.status, StatusCode::OK, "the other session refreshes: {}\n{}", other.describe(), gw.logs());
    assert_eq!(s.op.grants("refresh_token", CLIENT_ID), 1, "{}", s.op.logs());
}

/// Signing out in a browser ends the OP's session too: after the OP sends
/// the browser back to the gateway's signed-out page, visiting the gateway
/// again leads to the OP's login form instead of a silent sign-in (which
/// is what happens when only the gateway's cookie is deleted).
#[tokio::test(flavor = "multi_thread")]
async fn rp_initiated_logout_ends_the_provider_session_in_a_browser() {
    let Some(s) = real_stack(3600, true, false).await else { return };
    let Some(browser) = Browser::start().await else { return };
    let gw = &s.gateway;
    let op_port = s.op.issuer.port();
    browser.goto(&gw.url(PROTECTED)).await;
    browser.sign_in_at_op("alice").await;
    browser.wait_for_url("the protected page", |u| u.path() == PROTECTED).await;
    assert_eq!(browser.echo().await["path"], PROTECTED);

    browser.goto(&gw.url("/oauth2/sign_out?rd=/app/after")).await;
    // Through the OP's end-session endpoint (which auto-confirms) back to
    // the signed-out page, which follows the validated rd (`state`):
    // unauthenticated, that is the OP's login form again.
    let at_login = |u: &Url| u.port() == op_port && u.path().starts_with("/interaction");
    let landed = browser.wait_for_url("back at the OP's login", at_login).await;
    assert!(!s.op.logs().contains("end_session.error"), "{}", s.op.logs());
    browser.sign_in_at_op("alice").await;
    let after = browser.wait_for_url("the rd after signing in again", |u| u.port() == gw.base.port()).await;
    assert_eq!(after.path(), "/app/after", "rd kept through the OP (from {landed})");

    // Once more without rd: the signed-out page, then the login form.
    browser.goto(&gw.url("/oauth2/sign_out")).await;
    browser.wait_for_url("the signed-out page", |u| u.path() == "/oauth2/signed_out").await;
    assert!(!browser.text("main#signed-out h1").await.is_empty());
    browser.goto(&gw.url(PROTECTED)).await;
    // The OP asks for a login: the session there has ended.
    browser.wait_for_url("the OP's login form", at_login).await;
    browser.sign_in_at_op("alice").await;
    browser.wait_for_url("the protected page", |u| u.path() == PROTECTED).await;
    browser.close().await;
}

/// When the user's session at the OP ends (here: the OP's own end-session
/// page, confirmed), the OP posts a logout token naming `sub` and `sid`,
/// and the gateway refuses that session's cookie from then on. Another
/// session of the same user, at another OP session (`sid`), goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_backchannel_logout_from_the_provider_ends_the_session() {
    let Some(s) = real_stack(3600, true, true).await else { return };
    let gw = &s.gateway;
    let mut ended = signed_in_agent(gw, "alice").await;
    let mut other = signed_in_agent(gw, "alice").await;

    let confirm = ended.get(s.op.end_session_url().as_str(), Accept::Html).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.describe());
    let action = confirm.url.join(&common::agent::form_action(&confirm.body).expect("logout form")).unwrap();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(common::agent::hidden_inputs(&confirm.body))
        .finish();
    let done = ended
        .send(
            Method::POST,
            action.as_str(),
            Accept::Html,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form.into_bytes()),
        )
        .await;
    assert!(done.status.is_redirection() || done.status.is_success(), "{}", done.describe());
    assert!(!s.op.logs().contains("backchannel.error"), "the gateway accepted the logout token: {}", s.op.logs());
    assert_eq!(
        metric(gw, "authgate_gateway_backchannel_logouts_total{result=\"accepted\"}").await,
        1.0,
        "{}",
        gw.logs()
    );

    assert!(ended.has_session_cookie(), "the browser still holds the cookie");
    let refused = ended.get(&gw.url(PROTECTED), Accept::Json).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.describe());
    assert_eq!(metric(gw, "authgate_gateway_sessions_revoked_total{reason=\"backchannel_logout\"}").await, 1.0);
    let kept = other.get(&gw.url(PROTECTED), Accept::Json).await;
    assert_eq!(kept.status, StatusCode::OK, "another OP session (sid) of the same user: {}", kept.describe());

    // Signing in again afterwards gives a session the logout does not end.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    signed_in_agent(gw, "alice").await;
}

/// `rd` at sign-out and `state` back at the signed-out page are followed
/// only to the gateway's own URLs.
#[tokio::test(flavor = "multi_thread")]
async fn post_logout_redirects_stay_on_the_gateway() {
    let Some(s) = real_stack(3600, true, false).await else { return };
    let gw = &s.gateway;
    for evil in ["https://evil.example/x", "//evil.example/x", "/\\evil.example"] {
        let mut agent = signed_in_agent(gw, "alice").await;
        let mut url = Url::parse(&gw.url("/oauth2/sign_out")).unwrap();
        url.query_pairs_mut().append_pair("rd", evil);
        let out = agent.get(url.as_str(), Accept::Html).await;
        let to = out.location().unwrap_or_else(|| panic!("to the OP: {}", out.describe()));
        assert_eq!(to.origin(), s.op.issuer.origin(), "{evil}: to the OP's end-session endpoint");
        let q = query_map(&to);
        assert_eq!(q.get("state"), None, "{evil} passed on as state");
        assert_eq!(q["post_logout_redirect_uri"], gw.url("/oauth2/signed_out"));
        assert_eq!(q["client_id"], CLIENT_ID);
        let hint = &q["id_token_hint"];
        assert_eq!(hint.split('.').count(), 3, "the ID token as id_token_hint: {q:?}");
        assert!(!gw.logs().contains(hint.as_str()), "the gateway logged the ID token");

        let mut back = Url::parse(&gw.url("/oauth2/signed_out")).unwrap();
        back.query_pairs_mut().append_pair("state", evil);
        let page = Agent::new().get(back.as_str(), Accept::Html).await;
        assert_eq!(page.status, StatusCode::OK, "{evil} followed: {}", page.describe());
        assert!(page.body.contains("signed-out"));
    }
    let mut agent = signed_in_agent(gw, "alice").await;
    let out = agent.get(&gw.url("/oauth2/sign_out?rd=/app/next"), Accept::Html).await;
    assert_eq!(query_map(&out.location().unwrap()).get("state").map(String::as_str), Some("/app/next"));
    let back = Agent::new().get(&gw.url("/oauth2/signed_out?state=%2Fapp%2Fnext"), Accept::Html).await;
    assert_eq!(back.location().map(|u| u.path().to_owned()).as_deref(), Some("/app/next"), "{}", back.describe());
}

// ---------------------------------------------------------------------------
// Crafted logout tokens, from the fake OP's keys.
// ---------------------------------------------------------------------------

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn logout_claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": CLIENT_ID,
        "iat": now(),
        "exp": now() + 120,
        "jti": fakes::random_token(12),
        "sub": SUBJECT,
        "events": {EVENT: {}},
    })
}

fn sign(claims: &Value, alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    header.typ = Some("logout+jwt".into());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// Signed with the key the fake OP publishes.
fn valid(claims: &Value) -> String {
    let k = &keys().primary;
    sign(claims, Algorithm::RS256, &k.kid, &k.encoding)
}

async fn post_logout(gw: &Gateway, body: &str, content_type: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url("/oauth2/backchannel_logout"))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("POST backchannel_logout")
}

async fn post_token(gw: &Gateway, token: &str) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", token).finish();
    post_logout(gw, &body, "application/x-www-form-urlencoded").await
}

async fn assert_refused(gw: &Gateway, what: &str, response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}: {}", gw.logs());
    assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"], "invalid_request", "{what}: {body}");
}

/// Each way a logout token can be wrong is refused with 400, and ends no
/// session; then a correct one (signed with the key the fake OP
/// publishes) is accepted and ends it, and its replay is refused.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_logout_tokens_are_refused_and_a_valid_one_ends_the_session() {
    common::init();
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let echo = Echo::start().await;
    let mut p = provider(
        "fake",
        ProviderType::Oidc,
        CLIENT_ID,
        CLIENT_SECRET,
        op.authorize_url(),
        op.token_url(),
        &["openid", "email"],
        AllowList::default(),
    );
    p.issuer_url = Some(op.issuer_url());
    p.jwks_url = Some(op.jwks_url());
    let mut cfg: GatewayConfig = gateway::config(free_port(), &echo.url(), vec![p]);
    cfg.access = AllowList { allowed_domains: vec!["example.com".into()], ..AllowList::default() };
    let gw = Gateway::start_with(cfg, &[("RUST_LOG", &fakes::gateway_log())]).await;
    op.register_redirect_uri(&gw.callback_url());
    op.set_mode(Mode::Valid);
    let mut agent = Agent::new();
    let login = agent.login(&gw, "fake", PROTECTED).await;
    assert_logged_in(&gw, &mut agent, &login, PROTECTED).await;
    let issuer = op.issuer();
    let k = keys();

    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = logout_claims(&issuer);
        f(c.as_object_mut().unwrap());
        c
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let mut hostile: Vec<(&str, String)> = vec![
        (
            "forged: another key under the published kid",
            sign(&logout_claims(&issuer), Algorithm::RS256, &k.primary.kid, &k.attacker.encoding),
        ),
        (
            "forged: an unpublished key and kid",
            sign(&logout_claims(&issuer), Algorithm::RS256, &k.attacker.kid, &k.attacker.encoding),
        ),
        ("wrong aud", valid(&with(&|c| drop(c.insert("aud".into(), json!("another-client")))))),
        ("no aud", valid(&with(&|c| drop(c.remove("aud"))))),
        ("wrong iss", valid(&with(&|c| drop(c.insert("iss".into(), json!(format!("{issuer}-evil"))))))),
        ("nonce", valid(&with(&|c| drop(c.insert("nonce".into(), json!("n-1")))))),
        ("no events", valid(&with(&|c| drop(c.remove("events"))))),
        ("event not an object", valid(&with(&|c| drop(c.insert("events".into(), json!({EVENT: "yes"})))))),
        ("another event", valid(&with(&|c| drop(c.insert("events".into(), json!({"urn:other": {}})))))),
        ("neither sub nor sid", valid(&with(&|c| drop(c.remove("sub"))))),
        ("no jti", valid(&with(&|c| drop(c.remove("jti"))))),
        ("no iat", valid(&with(&|c| drop(c.remove("iat"))))),
        ("iat in the future", valid(&with(&|c| drop(c.insert("iat".into(), json!(now() + 3600)))))),
        ("iat long ago", valid(&with(&|c| drop(c.insert("iat".into(), json!(now() - 3600)))))),
        ("expired", valid(&with(&|c| drop(c.insert("exp".into(), json!(now() - 600)))))),
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg": "none", "typ": "logout+jwt"})), b64(&logout_claims(&issuer))),
        ),
        (
            "HS256 keyed with the OP's public key",
            sign(
                &logout_claims(&issuer),
                Algorithm::HS256,
                &k.primary.kid,
                &EncodingKey::from_secret(k.primary.public_pem.as_bytes()),
            ),
        ),
        ("not a JWT", "not-a-jwt".into()),
    ];
    let mut id_typed = Header::new(Algorithm::RS256);
    id_typed.kid = Some(k.primary.kid.clone());
    id_typed.typ = Some("JWT".into());
    hostile.push(("typ JWT", jsonwebtoken::encode(&id_typed, &logout_claims(&issuer), &k.primary.encoding).unwrap()));
    let count = hostile.len();
    for (what, token) in hostile {
        assert_refused(&gw, what, post_token(&gw, &token).await).await;
        let page = agent.get(&gw.url(PROTECTED), Accept::Json).await;
        assert_eq!(page.status, StatusCode::OK, "{what} ended the session");
    }
    let valid_body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &valid(&logout_claims(&issuer)))
        .finish();
    assert_refused(&gw, "JSON body", post_logout(&gw, &valid_body, "application/json").await).await;
    assert_refused(&gw, "no token", post_logout(&gw, "", "application/x-www-form-urlencoded").await).await;

    // A correct token for another provider session only (sid) leaves this
    // session, which has no sid, alone.
    let sid_only = valid(&with(&|c| {
        c.remove("sub");
        c.insert("sid".into(), json!("another-op-session"));
    }));
    assert_eq!(post_token(&gw, &sid_only).await.status(), StatusCode::OK);
    assert_eq!(agent.get(&gw.url(PROTECTED), Accept::Json).await.status, StatusCode::OK);

    let token = valid(&logout_claims(&issuer));
    let accepted = post_token(&gw, &token).await;
    assert_eq!(accepted.status(), StatusCode::OK, "{}", gw.logs());
    assert_eq!(accepted.headers()["cache-control"], "no-store");
    let page = agent.get(&gw.url(PROTECTED), Accept::Json).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "the valid token ended the session: {}", page.describe());
    assert_refused(&gw, "replayed", post_token(&gw, &token).await).await;

    assert_eq!(metric(&gw, "authgate_gateway_backchannel_logouts_total{result=\"accepted\"}").await, 2.0);
    assert_eq!(
        metric(&gw, "authgate_gateway_backchannel_logouts_total{result=\"refused\"}").await,
        (count + 3) as f64,
        "every hostile request counted"
    );
    assert!(!gw.logs().contains(&token), "the gateway logged a logout token");
}

/// Discovery finds the OP's revocation and end-session endpoints, which
/// the controller then puts in the IdentityProvider's status and
/// `gateway.yaml`.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_resolves_the_revocation_and_end_session_endpoints() {
    common::init();
    let Some(op) = Op::start(OpSettings::default()).await else { return };
    let spec: authgate::api::IdentityProviderSpec = serde_json::from_value(json!({
        "type": "oidc",
        "clientId": CLIENT_ID,
        "clientSecretRef": {"name": "s"},
        "issuerUrl": op.issuer_str,
    }))
    .unwrap();
    let http = authgate::idp::client(Duration::from_secs(5)).unwrap();
    let endpoints = authgate::idp::discovery::resolve(&http, &spec).await.expect("discovery");
    assert_eq!(endpoints.revocation_url.as_deref(), Some(op.revocation_url().as_str()));
    assert_eq!(endpoints.end_session_url.as_deref(), Some(op.end_session_url().as_str()));
}
