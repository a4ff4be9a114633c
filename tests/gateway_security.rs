//! The gateway against a real OpenID Provider, driven over HTTP (no
//! browser): tampered login flows, forged and foreign cookies, spoofed
//! identity headers and open redirects are all refused, and logs never
//! carry secrets.

mod common;

use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{Authentication, Redacted, SessionConfig};
use common::agent::Reply;
use common::echo::header;
use common::{Accept, Agent, Gateway, Stack, gateway};
use reqwest::{Method, StatusCode};
use url::Url;

fn corp_policy(c: &mut GatewayConfig) {
    c.access.allowed_domains = vec!["example.com".into()];
}

/// The query parameter `name` of `url`.
fn param(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// `url` with parameter `name` replaced.
fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == name { value.to_owned() } else { v.into_owned() }))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

fn flow_cookies(agent: &Agent) -> Vec<String> {
    agent.jar.keys().filter(|k| k.starts_with("_authgate_flow_")).cloned().collect()
}

/// Asserts a callback was refused: an error status, no session cookie, and
/// the protected resource still guarded.
async fn assert_refused(stack: &Stack, agent: &mut Agent, reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "callback: {}\nGATEWAY LOG:\n{}", reply.body, stack.gateway.logs());
    assert!(
        agent.session_cookies(gateway::COOKIE_NAME).is_empty(),
        "no session after a refused callback: {:?}",
        agent.jar
    );
    assert_guarded(stack, agent).await;
}

/// The protected resource answers 401 to an API client and sends a
/// browser to sign in; the upstream is not reached.
async fn assert_guarded(stack: &Stack, agent: &mut Agent) {
    let hits = stack.echo.hits();
    let api = agent.get(&stack.gateway.url("/private"), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}", api.body);
    assert_eq!(api.json()["error"], "unauthorized");
    let page = agent.get(&stack.gateway.url("/private?a=b"), Accept::Html).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.raw_location().as_deref(), Some("/oauth2/start?rd=%2Fprivate%3Fa%3Db"));
    assert_eq!(stack.echo.hits(), hits, "the upstream must not be reached");
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start?rd=/x"), "alice").await;
    let state = param(&callback, "state");
    // Same flow cookie (its name derives from the state's start), wrong state.
    let mut forged = state.clone();
    forged.replace_range(state.len() - 1.., if state.ends_with('A') { "B" } else { "A" });
    let reply = agent.get(with_param(&callback, "state", &forged).as_str(), Accept::Html).await;
    assert!(reply.body.contains("does not belong to this browser"), "{}", reply.body);
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_REQUEST).await;
    // An unrelated state has no flow cookie at all.
    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    let reply = agent.get(with_param(&callback, "state", "attacker-chosen-state-value").as_str(), Accept::Html).await;
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_missing_or_foreign_flow_cookie_is_refused() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    // Missing: the callback arrives in a browser that never started a login
    // (login CSRF).
    let mut attacker = Agent::new();
    let callback = attacker.follow_to_callback(&stack.gateway.url("/oauth2/start"), "eve").await;
    let mut victim = Agent::new();
    let reply = victim.get(callback.as_str(), Accept::Html).await;
    assert!(reply.body.contains("unknown to this browser"), "{}", reply.body);
    assert_refused(&stack, &mut victim, &reply, StatusCode::BAD_REQUEST).await;

    // Foreign: login A's flow cookie presented under login B's name fails
    // authentication (the cookie name is the associated data).
    let mut agent = Agent::new();
    let start_a = agent.get(&stack.gateway.url("/oauth2/start"), Accept::Html).await;
    let cookie_a = flow_cookies(&agent).pop().unwrap();
    let value_a = agent.jar[&cookie_a].clone();
    let callback_b = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    let cookie_b = flow_cookies(&agent).into_iter().find(|c| *c != cookie_a).unwrap();
    agent.jar.insert(cookie_b.clone(), value_a);
    let reply = agent.get(callback_b.as_str(), Accept::Html).await;
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_REQUEST).await;
    assert!(start_a.status.is_redirection());

    // Tampered: one flipped character.
    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    let name = flow_cookies(&agent).pop().unwrap();
    let value = flip(&agent.jar[&name]);
    agent.jar.insert(name, value);
    let reply = agent.get(callback.as_str(), Accept::Html).await;
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_code_redeemed_with_another_logins_pkce_verifier_is_refused() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    // Login A runs to the OP's redirect: code A was issued for A's challenge.
    let callback_a = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    // Login B starts: its own state, flow cookie and PKCE verifier.
    let start_b = agent.get(&stack.gateway.url("/oauth2/start"), Accept::Html).await;
    let state_b = param(&start_b.location().unwrap(), "state");
    // Code A with B's state and flow cookie: the state check passes, but the
    // gateway sends B's verifier, which does not match A's challenge.
    let forged = with_param(&callback_a, "state", &state_b);
    let reply = agent.get(forged.as_str(), Accept::Html).await;
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_GATEWAY).await;
    let metrics = reqwest::get(stack.gateway.ops_url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"authgate_gateway_logins_total{provider="corp",result="token_rejected"} 1"#),
        "{metrics}"
    );
    assert!(stack.gateway.logs().contains("invalid_grant"), "{}", stack.gateway.logs());
}

#[tokio::test]
async fn an_issuer_mismatch_and_provider_errors_are_refused() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    assert_eq!(param(&callback, "iss"), stack.op.issuer_str);
    let reply = agent.get(with_param(&callback, "iss", "http://127.0.0.1:1").as_str(), Accept::Html).await;
    assert!(reply.body.contains("unexpected issuer"), "{}", reply.body);
    assert_refused(&stack, &mut agent, &reply, StatusCode::BAD_REQUEST).await;

    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start"), "alice").await;
    let mut denied = Url::parse(&stack.gateway.url("/oauth2/callback")).unwrap();
    denied.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", &param(&callback, "state"));
    let reply = agent.get(denied.as_str(), Accept::Html).await;
    assert_refused(&stack, &mut agent, &reply, StatusCode::FORBIDDEN).await;
}

/// Flips one base64url character in the middle of a cookie value.
fn flip(value: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn tampered_and_foreign_session_cookies_are_refused_and_rotation_keeps_sessions() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    let reply = agent.sign_in(&stack.gateway, "alice", "/private").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let session = agent.jar[gateway::COOKIE_NAME].clone();
    assert_eq!(agent.get(&stack.gateway.url("/private"), Accept::Json).await.status, StatusCode::OK);

    // Tampered.
    let mut forged = Agent::new();
    forged.jar.insert(gateway::COOKIE_NAME.into(), flip(&session));
    let reply = forged.get(&stack.gateway.url("/private"), Accept::Json).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A cookie that does not decrypt is refused but not deleted: it may be
    // another policy's of the same name (hardening issue, item 17). Sign-in
    // overwrites it.
    assert!(
        !reply.set_cookies().iter().any(|c| c.name() == gateway::COOKIE_NAME),
        "an undecryptable session cookie is left alone"
    );
    assert_guarded(&stack, &mut forged).await;

    // A cookie of the same name from another policy (another key).
    let config = stack.gateway.config.clone().unwrap();
    let other_port = common::free_port();
    let mut other = config.clone();
    other.listen = ([127, 0, 0, 1], other_port).into();
    other.session.keys = vec![Redacted::new(common::cookie_key())];
    let other_gw = Gateway::start(other).await;
    let mut foreign = Agent::new();
    foreign.jar.insert(gateway::COOKIE_NAME.into(), session.clone());
    let hits = stack.echo.hits();
    assert_eq!(foreign.get(&other_gw.url("/private"), Accept::Json).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stack.echo.hits(), hits);

    // Key rotation: a new key first, the old one kept: the session survives.
    let rotated_port = common::free_port();
    let mut rotated = config;
    rotated.listen = ([127, 0, 0, 1], rotated_port).into();
    rotated.session.keys.insert(0, Redacted::new(common::cookie_key()));
    let rotated_gw = Gateway::start(rotated).await;
    let mut survivor = Agent::new();
    survivor.jar.insert(gateway::COOKIE_NAME.into(), session);
    let reply = survivor.get(&rotated_gw.url("/private"), Accept::Json).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(header(&reply.json(), "x-auth-request-email").as_deref(), Some("alice@example.com"));
}

#[tokio::test]
async fn client_sent_identity_headers_never_reach_the_upstream() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let spoofed = [
        ("X-Auth-Request-Email", "ceo@example.com"),
        ("X_Auth_Request_Email", "ceo@example.com"),
        ("x-auth-request-user", "ceo"),
        ("X-Auth-Request-Groups", "admins"),
        ("X-Auth-Request-Access-Token", "forged"),
        ("X-Forwarded-User", "ceo"),
        ("X-Forwarded-Email", "ceo@example.com"),
        ("X_Forwarded_For", "10.6.6.6"),
        ("Authorization", "Bearer forged.token.value"),
    ];
    let reply = agent.send(Method::GET, &stack.gateway.url("/private"), Accept::Json, &spoofed, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.json();
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev"));
    for absent in [
        "x_auth_request_email",
        "x-auth-request-access-token",
        "x-forwarded-user",
        "x-forwarded-email",
        "x_forwarded_for",
    ] {
        assert_eq!(header(&echo, absent), None, "{absent} must not reach the upstream");
    }
    let bearer = header(&echo, "authorization").unwrap();
    assert_ne!(bearer, "Bearer forged.token.value");
    stack.op.verify_access_token(bearer.strip_prefix("Bearer ").unwrap()).await;
    assert_eq!(header(&echo, "x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(header(&echo, "x-forwarded-proto").as_deref(), Some("http"));

    // Pass-through mode strips them too.
    let echo_srv = common::Echo::start().await;
    let port = common::free_port();
    let mut open = gateway::config(port, &echo_srv.url(), vec![]);
    open.authentication = Authentication::Disabled;
    open.session = SessionConfig { keys: vec![], ..open.session };
    let open_gw = Gateway::start(open).await;
    assert!(open_gw.logs().contains("AUTHENTICATION IS DISABLED"), "a loud warning at start:\n{}", open_gw.logs());
    let reply = Agent::new().send(Method::GET, &open_gw.url("/anything"), Accept::Json, &spoofed, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.json();
    for absent in [
        "x-auth-request-email",
        "x_auth_request_email",
        "x-auth-request-user",
        "x-auth-request-groups",
        "x-forwarded-user",
        "authorization",
    ] {
        assert_eq!(header(&echo, absent), None, "{absent} must not reach the upstream in pass-through mode");
    }
}

#[tokio::test]
async fn post_login_redirects_never_leave_the_site() {
    let Some(stack) = Stack::start(3600, corp_policy).await else {
        return;
    };
    let mut agent = Agent::new();
    let base = stack.gateway.base.as_str().trim_end_matches('/').to_owned();
    for (rd, expected) in [
        ("/deep/link?x=1&y=2", "/deep/link?x=1&y=2".to_owned()),
        ("/a%20b", "/a%20b".to_owned()),
        (&format!("{base}/absolute?z=1"), format!("{base}/absolute?z=1")),
    ] {
        let reply = agent.sign_in(&stack.gateway, "alice", rd).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{rd}: {}", reply.body);
        assert_eq!(reply.raw_location().as_deref(), Some(expected.as_str()), "rd {rd:?}");
    }
    for rd in [
        "//evil.com",
        "///evil.com",
        "/\\evil.com",
        "\\/evil.com",
        "/%2f%2fevil.com",
        "%2f%2fevil.com",
        "/%5cevil.com",
        "/%09/evil.com",
        "%09//evil.com",
        "/\t/evil.com",
        "/%0a/evil.com",
        "/%0d%0a/evil.com",
        "https:evil.com",
        "https:/evil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://evil.com",
        "http://evil.com/",
        "http://127.0.0.1.evil.com/",
        "http://127.0.0.1@evil.com/",
        "evil.com",
    ] {
        let reply = agent.sign_in(&stack.gateway, "alice", rd).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{rd:?}: {}", reply.body);
        assert_eq!(reply.raw_location().as_deref(), Some("/"), "rd {rd:?} must land on /");
        // Sign-out with such a target shows a page instead of redirecting.
        let mut out = Url::parse(&stack.gateway.url("/oauth2/sign_out")).unwrap();
        out.query_pairs_mut().append_pair("rd", rd);
        let reply = agent.get(out.as_str(), Accept::Html).await;
        assert_eq!(reply.status, StatusCode::OK, "sign_out rd {rd:?} must not redirect: {:?}", reply.raw_location());
    }
    let reply = agent.get(&stack.gateway.url("/oauth2/sign_out?rd=%2Fbye"), Accept::Html).await;
    assert_eq!((reply.status, reply.raw_location().as_deref()), (StatusCode::FOUND, Some("/bye")));
}

#[tokio::test]
async fn logs_never_contain_tokens_codes_secrets_or_cookies() {
    // Everything at debug level, dependencies included.
    let Some(stack) = Stack::start_with_env(3600, corp_policy, &[("RUST_LOG", "debug")]).await else {
        return;
    };
    let mut agent = Agent::new();
    let callback = agent.follow_to_callback(&stack.gateway.url("/oauth2/start?rd=/"), "alice").await;
    let code = param(&callback, "code");
    let flow_cookie = agent.jar[&flow_cookies(&agent)[0]].clone();
    let reply = agent.get(callback.as_str(), Accept::Html).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    let session = agent.jar[gateway::COOKIE_NAME].clone();
    let echo = agent.get(&stack.gateway.url("/private"), Accept::Json).await.json();
    let bearer = header(&echo, "authorization").unwrap();
    let token = bearer.strip_prefix("Bearer ").unwrap().to_owned();
    // Also a failed login.
    let mut eve = Agent::new();
    eve.sign_in(&stack.gateway, "eve", "/").await;

    let logs = stack.gateway.logs();
    assert!(logs.contains("signed in"), "the gateway does log sign-ins:\n{logs}");
    for (what, secret) in [
        ("authorization code", code.as_str()),
        ("flow cookie", flow_cookie.as_str()),
        ("session cookie", session.as_str()),
        ("access token", token.as_str()),
        ("client secret", common::CLIENT_SECRET),
    ] {
        assert!(!logs.contains(secret), "the gateway logged the {what}");
    }
    for key in &stack.gateway.config.as_ref().unwrap().session.keys {
        assert!(!logs.contains(key.expose()), "the gateway logged a cookie key");
    }
}

/// A gateway for one provider whose users table has `erin`, whose email
/// comes without any `email_verified` claim (as Entra ID sends it), under
/// a domain rule, with the provider's `emailVerified` set to `policy`.
async fn erin_behind(
    policy: authgate::api::EmailVerification,
) -> Option<(Gateway, common::op::Op, common::echo::Echo)> {
    use common::op::{self, Op, OpSettings};
    common::init();
    let port = common::ports::free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let mut users = op::users();
    users["erin"] = serde_json::json!({"email": "erin@example.com", "groups": ["sre"], "name": "Erin"});
    let op = Op::start(OpSettings {
        clients: vec![op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&callback])],
        users,
        ..OpSettings::default()
    })
    .await?;
    let echo = common::echo::Echo::start().await;
    let mut provider = gateway::oidc_provider(&op, "corp", common::CLIENT_ID, common::CLIENT_SECRET);
    provider.email_verified = policy;
    let mut config = gateway::config(port, &echo.url(), vec![provider]);
    corp_policy(&mut config);
    Some((Gateway::start_with(config, &[]).await, op, echo))
}

#[tokio::test]
async fn an_email_without_email_verified_is_refused_by_default_and_admitted_only_with_if_present() {
    use authgate::api::EmailVerification;
    let Some((strict, _op, echo)) = erin_behind(EmailVerification::Required).await else {
        return;
    };
    let mut agent = Agent::new();
    let reply = agent.sign_in(&strict, "erin", "/").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(agent.session_cookies(gateway::COOKIE_NAME).is_empty(), "no session for an unverified email");
    assert_eq!(echo.hits(), 0);

    let Some((lenient, _op, echo)) = erin_behind(EmailVerification::IfPresent).await else {
        return;
    };
    let mut agent = Agent::new();
    let reply = agent.sign_in(&lenient, "erin", "/whoami").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let seen = agent.get(&lenient.url("/whoami"), Accept::Json).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(header(&seen.json(), "x-auth-request-email").as_deref(), Some("erin@example.com"));
    assert_eq!(echo.hits(), 1);
    // An explicit `false` stays unverified under IfPresent too: carol.
    let mut agent = Agent::new();
    let reply = agent.sign_in(&lenient, "carol", "/").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
}
