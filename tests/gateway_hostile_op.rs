//! The real `authgate gateway` as a relying party of a hostile OpenID
//! Provider: every crafted ID token must end without a session; a key
//! rotation must be followed. The `fake_*` tests check that each crafted
//! token is wrong in exactly the intended way, by verifying it with a
//! strict reference verifier, without the gateway.

mod common;
mod fakes;

use authgate::api::AllowList;
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::ProviderType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::echo::header_values;
use common::gateway::provider;
use common::login::{assert_logged_in, assert_no_session, query_map};
use common::{Accept, Agent, Echo, Gateway, free_port, gateway, init};
use fakes::hostile_op::{EMAIL, HOSTILE_MODES, HostileOp, Mode, SUBJECT};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const CLIENT_ID: &str = "authgate-hostile";
const CLIENT_SECRET: &str = "hostile-client-secret-0123456789";
const PROVIDER: &str = "hostile";
const RD: &str = "/private/page";

// ---------------------------------------------------------------------------
// The fake itself, against a strict reference verifier.
// ---------------------------------------------------------------------------

/// OpenID Connect Core §3.1.3.7, strictly: RS256 only, a published `kid`,
/// iss, aud, exp, iat, sub present and right, azp rules, nonce equality.
fn reference_verify(token: &str, jwks: &Value, issuer: &str, nonce: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("alg {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("kid {kid} not published"))?;
    let key = DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
        .map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[CLIENT_ID]);
    v.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| format!("verify: {e}"))?;
    let claims = data.claims;
    // jsonwebtoken's required claims do not cover `iat`.
    if !claims["iat"].is_number() {
        return Err("no iat".into());
    }
    let audiences = match &claims["aud"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    if audiences > 1 && claims.get("azp").is_none() {
        return Err("several audiences and no azp".into());
    }
    if let Some(azp) = claims.get("azp")
        && azp != CLIENT_ID
    {
        return Err(format!("azp {azp}"));
    }
    if claims["nonce"] != nonce {
        return Err(format!("nonce {}", claims["nonce"]));
    }
    Ok(claims)
}

fn client() -> reqwest::Client {
    init();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_crafts_each_flaw_and_nothing_else() {
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let issuer = op.issuer();
    let jwks = op.jwks();
    let valid = op.craft(Mode::Valid, Some("n-1"));
    let claims = reference_verify(&valid, &jwks, &issuer, "n-1").expect("the valid token verifies");
    assert_eq!(claims["sub"], SUBJECT);
    assert_eq!(claims["email"], EMAIL);
    for mode in HOSTILE_MODES {
        let token = op.craft(*mode, Some("n-1"));
        let jwks = op.jwks();
        assert!(reference_verify(&token, &jwks, &issuer, "n-1").is_err(), "{mode:?} must fail strict verification");
    }
    // Rotation: unknown to the first JWKS, known to the refetched one.
    let before = op.jwks();
    let rotated = op.craft(Mode::RotatedKey, Some("n-1"));
    assert!(reference_verify(&rotated, &before, &issuer, "n-1").unwrap_err().contains("not published"));
    reference_verify(&rotated, &op.jwks(), &issuer, "n-1").expect("rotated key verifies after refetch");
    assert_eq!(op.jwks()["keys"].as_array().unwrap().len(), 2);
    // Key confusion really is HS256 keyed with the published public key.
    let confused = op.craft(Mode::HmacKeyConfusion, Some("n-1"));
    let header = jsonwebtoken::decode_header(&confused).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let pem = &fakes::hostile_op::keys().primary.public_pem;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[CLIENT_ID]);
    jsonwebtoken::decode::<Value>(&confused, &DecodingKey::from_secret(pem.as_bytes()), &v)
        .expect("HS256 over the public PEM, as an attacker would make it");
    // alg=none has an empty signature.
    let none = op.craft(Mode::AlgNone, Some("n-1"));
    assert!(none.ends_with('.'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_flow_checks_pkce_client_and_echoes_nonce() {
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let discovery: Value = client().get(op.discovery_url()).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], op.issuer());
    assert_eq!(discovery["jwks_uri"], op.jwks_url().as_str());
    let verifier = "a-verifier-that-is-long-enough-to-be-valid-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = |nonce: &str| {
        let mut url = op.authorize_url();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", "http://127.0.0.1:1/oauth2/callback")
            .append_pair("scope", "openid email")
            .append_pair("state", "st")
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url
    };
    let code = |resp: reqwest::Response| {
        let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let q = query_map(&loc);
        assert_eq!(q["state"], "st");
        q["code"].clone()
    };
    let token = |code: String, verifier: &'static str, secret: &'static str| {
        client()
            .post(op.token_url())
            .basic_auth(CLIENT_ID, Some(secret))
            .form(&[
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", "http://127.0.0.1:1/oauth2/callback".to_owned()),
                ("code_verifier", verifier.to_owned()),
            ])
            .send()
    };

    let c = code(client().get(authorize("nonce-A")).send().await.unwrap());
    let resp = token(c, "wrong-verifier-wrong-verifier-wrong-verifier-000", CLIENT_SECRET).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let c = code(client().get(authorize("nonce-B")).send().await.unwrap());
    let resp = token(c, "a-verifier-that-is-long-enough-to-be-valid-0123456789", "bad-secret").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let c = code(client().get(authorize("nonce-C")).send().await.unwrap());
    let resp = token(c, "a-verifier-that-is-long-enough-to-be-valid-0123456789", CLIENT_SECRET).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let claims =
        reference_verify(body["id_token"].as_str().unwrap(), &op.jwks(), &op.issuer(), "nonce-C").expect("valid");
    assert_eq!(claims["nonce"], "nonce-C");

    op.set_mode(Mode::NonceMismatch);
    let c = code(client().get(authorize("nonce-D")).send().await.unwrap());
    let body: Value = token(c, "a-verifier-that-is-long-enough-to-be-valid-0123456789", CLIENT_SECRET)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let err = reference_verify(body["id_token"].as_str().unwrap(), &op.jwks(), &op.issuer(), "nonce-D").unwrap_err();
    assert!(err.starts_with("nonce"), "{err}");
}

// ---------------------------------------------------------------------------
// The gateway as relying party.
// ---------------------------------------------------------------------------

struct Setup {
    op: HostileOp,
    gw: Gateway,
    _upstream: Echo,
}

fn oidc_provider(op: &HostileOp) -> authgate::gateway::config::ProviderConfig {
    let mut p = provider(
        PROVIDER,
        ProviderType::Oidc,
        CLIENT_ID,
        CLIENT_SECRET,
        op.authorize_url(),
        op.token_url(),
        &["openid", "email", "profile"],
        AllowList::default(),
    );
    p.issuer_url = Some(op.issuer_url());
    p.jwks_url = Some(op.jwks_url());
    p
}

fn policy_access() -> AllowList {
    AllowList { allowed_domains: vec!["example.com".to_owned()], ..AllowList::default() }
}

/// A gateway config with the one provider `p` and [`policy_access`].
fn gateway_config(upstream: &Url, p: authgate::gateway::config::ProviderConfig) -> GatewayConfig {
    let mut cfg = gateway::config(free_port(), upstream, vec![p]);
    cfg.access = policy_access();
    cfg
}

async fn start_gateway(cfg: GatewayConfig) -> Gateway {
    Gateway::start_with(cfg, &[("RUST_LOG", &fakes::gateway_log())]).await
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// [`setup`] with the provider changed by `change` first.
async fn setup_with(change: impl FnOnce(&mut authgate::gateway::config::ProviderConfig)) -> Setup {
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let upstream = Echo::start().await;
    let mut provider = oidc_provider(&op);
    change(&mut provider);
    let cfg = gateway_config(&upstream.url(), provider);
    let gw = start_gateway(cfg).await;
    op.register_redirect_uri(&gw.callback_url());
    Setup { op, gw, _upstream: upstream }
}

/// A valid login, proving the setup works (and that the gateway has seen
/// the JWKS) before anything hostile happens.
async fn valid_login(s: &Setup) -> Value {
    s.op.set_mode(Mode::Valid);
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_logged_in(&s.gw, &mut browser, &login, RD).await
}

async fn assert_mode_refused(mode: Mode) {
    let s = setup().await;
    valid_login(&s).await;
    s.op.set_mode(mode);
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert!(login.callback.is_some(), "{mode:?}: the flow must reach the callback\n{}", login.describe());
    assert_eq!(s.op.issued_id_tokens().len(), 2, "{mode:?}: the hostile token was issued");
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_login_sends_nonce_and_pkce_and_forwards_bearer() {
    let s = setup().await;
    let echo = valid_login(&s).await;
    let auth = s.op.authorize_requests();
    let params = &auth[0].params;
    assert!(params.get("nonce").is_some_and(|n| n.len() >= 16), "nonce sent: {params:?}");
    assert!(params.get("state").is_some_and(|n| n.len() >= 16), "state sent: {params:?}");
    assert_eq!(params.get("code_challenge_method").map(String::as_str), Some("S256"));
    let at = s.op.issued_access_tokens();
    assert_eq!(header_values(&echo, "authorization"), vec![format!("Bearer {}", at[0])], "{echo:#}");
    assert_eq!(header_values(&echo, "x-auth-request-email"), vec![EMAIL.to_owned()], "{echo:#}");
    let groups = header_values(&echo, "x-auth-request-groups").join(",");
    assert!(groups.contains("staff") && groups.contains("engineering"), "groups: {groups:?}");
    assert!(s.op.jwks_fetches() >= 1);
}

/// Microsoft Entra ID leaves `email_verified` out of its tokens. Under the
/// default `emailVerified: Required` such an email is unverified, so the
/// policy's domain rule refuses it; a provider set to `IfPresent` admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_style_token_without_email_verified_is_refused_under_required_and_admitted_under_if_present() {
    let strict = setup().await;
    valid_login(&strict).await;
    strict.op.set_mode(Mode::NoEmailVerified);
    let mut browser = Agent::new();
    let login = browser.login(&strict.gw, PROVIDER, RD).await;
    assert!(login.callback.is_some(), "the flow reaches the callback\n{}", login.describe());
    assert_no_session(&strict.gw, &mut browser, &login, RD).await;
    let id_token = strict.op.issued_id_tokens().pop().unwrap();
    let payload = URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert!(claims.get("email_verified").is_none() && claims["email"] == EMAIL, "{claims}");

    let lenient = setup_with(|p| p.email_verified = authgate::api::EmailVerification::IfPresent).await;
    lenient.op.set_mode(Mode::NoEmailVerified);
    let mut browser = Agent::new();
    let login = browser.login(&lenient.gw, PROVIDER, RD).await;
    let echo = assert_logged_in(&lenient.gw, &mut browser, &login, RD).await;
    assert_eq!(header_values(&echo, "x-auth-request-email"), vec![EMAIL.to_owned()], "{echo:#}");
}

macro_rules! refused {
    ($($name:ident => $mode:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            assert_mode_refused($mode).await;
        }
    )*};
}

refused! {
    bad_signature_is_refused => Mode::BadSignature,
    tampered_payload_is_refused => Mode::TamperedPayload,
    alg_none_is_refused => Mode::AlgNone,
    issuer_mismatch_is_refused => Mode::IssuerMismatch,
    wrong_audience_is_refused => Mode::WrongAudience,
    several_audiences_without_azp_are_refused => Mode::MultiAudienceNoAzp,
    several_audiences_with_wrong_azp_are_refused => Mode::MultiAudienceWrongAzp,
    expired_token_is_refused => Mode::Expired,
    missing_iat_is_refused => Mode::MissingIat,
    missing_sub_is_refused => Mode::MissingSub,
    missing_aud_is_refused => Mode::MissingAud,
    nonce_mismatch_is_refused => Mode::NonceMismatch,
    missing_nonce_is_refused => Mode::MissingNonce,
    rs256_public_key_as_hs256_secret_is_refused => Mode::HmacKeyConfusion,
    unknown_kid_is_refused => Mode::UnknownKid,
}

#[test]
fn every_hostile_mode_has_a_gateway_test() {
    // Keep the macro list above in step with the fake's list.
    assert_eq!(HOSTILE_MODES.len(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_refetches_jwks_and_accepts() {
    let s = setup().await;
    valid_login(&s).await;
    let fetches_before = s.op.jwks_fetches();
    s.op.set_mode(Mode::RotatedKey);
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    let echo = assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    assert_eq!(header_values(&echo, "x-auth-request-email"), vec![EMAIL.to_owned()]);
    assert!(s.op.jwks_fetches() > fetches_before, "the new kid must trigger a JWKS refetch");
    // The session works for more than one request.
    let again = browser.get(&s.gw.url(RD), Accept::Html).await;
    assert_eq!(again.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------
// Discovery. The gateway reads fully resolved endpoints from its config and
// never fetches discovery itself; the controller resolves an issuer-only
// IdentityProvider (`idp::discovery::resolve`).
// So the issuer check is exercised there, against the same hostile OP, and
// the resolved endpoints are then run through a real gateway.
// ---------------------------------------------------------------------------

fn issuer_only_spec(issuer: &str) -> authgate::api::IdentityProviderSpec {
    serde_json::from_value(serde_json::json!({
        "type": "oidc",
        "clientId": CLIENT_ID,
        "clientSecretRef": {"name": "hostile-client", "key": "clientSecret"},
        "issuerUrl": issuer,
    }))
    .expect("IdentityProviderSpec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_issuer_mismatch_is_refused() {
    use authgate::idp::discovery::{DiscoveryError, resolve};
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let spec = issuer_only_spec(&op.issuer());
    let resolved = resolve(&client(), &spec).await.expect("honest discovery resolves");
    assert_eq!(resolved.issuer.as_deref(), Some(op.issuer().as_str()));
    assert_eq!(resolved.jwks_url.as_deref(), Some(op.jwks_url().as_str()));

    for claimed in [
        format!("http://127.0.0.1:{}/other", op.addr.port()),
        format!("{}/", op.issuer()),
        op.issuer().to_uppercase(),
        "https://accounts.google.com".to_owned(),
    ] {
        op.set_discovery_issuer(Some(&claimed));
        let fetches = op.discovery_fetches();
        match resolve(&client(), &spec).await {
            Err(DiscoveryError::IssuerMismatch { .. }) => {}
            other => panic!("discovery claiming issuer {claimed:?} must be refused, got {other:?}"),
        }
        assert_eq!(op.discovery_fetches(), fetches + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_endpoints_drive_the_gateway() {
    use authgate::idp::discovery::resolve;
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let resolved = resolve(&client(), &issuer_only_spec(&op.issuer())).await.expect("discovery");
    let parse = |s: &str| Url::parse(s).expect("resolved URL");
    let mut p = provider(
        PROVIDER,
        ProviderType::Oidc,
        CLIENT_ID,
        CLIENT_SECRET,
        parse(&resolved.authorize_url),
        parse(&resolved.token_url),
        &["openid", "email", "profile"],
        AllowList::default(),
    );
    p.issuer_url = resolved.issuer.as_deref().map(parse);
    p.jwks_url = resolved.jwks_url.as_deref().map(parse);
    let upstream = Echo::start().await;
    let gw = start_gateway(gateway_config(&upstream.url(), p)).await;
    op.register_redirect_uri(&gw.callback_url());
    let s = Setup { op, gw, _upstream: upstream };
    valid_login(&s).await;
    // And the same gateway still refuses a hostile token.
    s.op.set_mode(Mode::IssuerMismatch);
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
}

/// A config whose own provider points nowhere: with `AUTHGATE_PROVIDER_TYPE`
/// set, the gateway must replace it with the one it discovers.
fn issuer_only_env(op: &HostileOp) -> (authgate::gateway::GatewayConfig, Vec<(&'static str, String)>) {
    let dead = Url::parse("http://127.0.0.1:9/dead").unwrap();
    let mut p = provider(
        "placeholder",
        ProviderType::Oidc,
        "nobody",
        "nothing",
        dead.clone(),
        dead.clone(),
        &["openid"],
        AllowList::default(),
    );
    p.issuer_url = Some(dead.clone());
    p.jwks_url = Some(dead);
    let cfg = gateway_config(&Url::parse("http://127.0.0.1:9/").unwrap(), p);
    let env = vec![
        ("AUTHGATE_PROVIDER_TYPE", "oidc".to_owned()),
        ("AUTHGATE_PROVIDER_NAME", PROVIDER.to_owned()),
        ("AUTHGATE_PROVIDER_CLIENT_ID", CLIENT_ID.to_owned()),
        ("AUTHGATE_PROVIDER_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("AUTHGATE_PROVIDER_ISSUER_URL", op.issuer()),
        ("RUST_LOG", fakes::gateway_log()),
    ];
    (cfg, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_only_gateway_discovers_and_signs_in() {
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let upstream = Echo::start().await;
    let (mut cfg, env) = issuer_only_env(&op);
    cfg.upstream = Some(upstream.url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = match Gateway::try_start(cfg, &env).await {
        Ok(gw) => gw,
        Err(e) => panic!("issuer-only gateway did not start ({:?}):\n{}", e.exited, e.logs),
    };
    assert!(op.discovery_fetches() >= 1, "discovery ran at start");
    let s = Setup { op, gw, _upstream: upstream };
    valid_login(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_only_gateway_refuses_discovery_issuer_mismatch() {
    let op = HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let evil = format!("http://127.0.0.1:{}/evil", op.addr.port());
    op.set_discovery_issuer(Some(&evil));
    let (cfg, env) = issuer_only_env(&op);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match Gateway::try_start(cfg, &env).await {
        Ok(gw) => panic!("the gateway started despite discovery claiming issuer {evil}:\n{}", gw.logs()),
        Err(e) => {
            let status = e.exited.unwrap_or_else(|| panic!("the gateway neither started nor exited:\n{}", e.logs));
            assert!(!status.success(), "must exit with an error: {status:?}");
            assert!(e.logs.contains("issuer"), "the error must say why:\n{}", e.logs);
        }
    }
    assert!(op.discovery_fetches() >= 1);
    assert!(op.token_requests().is_empty());
}
