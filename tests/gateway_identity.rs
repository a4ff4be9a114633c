//! Identity the upstream can trust (issue: gateway hardening, items 1–5
//! and 19), against the real OpenID Provider: no impersonation through
//! self-chosen claims, unambiguous groups, canonical values only, every
//! identity-like and forwarding header a client sends removed.

mod common;

use common::sre_only;

use authgate::gateway::GatewayConfig;
use common::echo::{header, header_values};
use common::{Accept, Agent, Stack};
use reqwest::{Method, StatusCode};

fn example_com(c: &mut GatewayConfig) {
    c.access.allowed_domains = vec!["example.com".into()];
}

#[tokio::test]
async fn a_self_chosen_username_never_becomes_another_users_identity() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    // mallory has no email and chose `preferred_username: alice@example.com`.
    let mut mallory = Agent::new();
    let reply = mallory.sign_in(&stack.gateway, "mallory", "/whoami").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let echo = mallory.get(&stack.gateway.url("/whoami"), Accept::Json).await.json();
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("mallory"), "the subject, not the chosen name");
    assert_eq!(header(&echo, "x-auth-request-user-id").as_deref(), Some("mallory"));
    assert_eq!(header(&echo, "x-auth-request-email"), None);
    for (name, values) in echo["headers"].as_object().unwrap() {
        assert!(
            !values.to_string().contains("alice@example.com"),
            "{name} carries the chosen name to the upstream: {values}"
        );
    }
    // The real alice: user is her verified email, the id her subject.
    let mut alice = Agent::new();
    alice.sign_in(&stack.gateway, "alice", "/").await;
    let echo = alice.get(&stack.gateway.url("/whoami"), Accept::Json).await.json();
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&echo, "x-auth-request-user-id").as_deref(), Some("alice"));
}

#[tokio::test]
async fn groups_are_unambiguous_and_a_broken_group_does_not_drop_the_rest() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut commas = Agent::new();
    commas.sign_in(&stack.gateway, "commas", "/").await;
    let echo = commas.get(&stack.gateway.url("/g"), Accept::Json).await.json();
    assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,dev%2Cadmin,50%25"));

    let mut crlf = Agent::new();
    let reply = crlf.sign_in(&stack.gateway, "crlf", "/").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let echo = crlf.get(&stack.gateway.url("/g"), Accept::Json).await.json();
    assert_eq!(header_values(&echo, "x-auth-request-groups"), ["sre"]);
    assert_eq!(header(&echo, "x-auth-request-user").as_deref(), Some("crlf@example.com"));
    assert!(
        stack.gateway.logs().contains("contain control characters were dropped"),
        "the dropped group is logged:\n{}",
        stack.gateway.logs()
    );
}

#[tokio::test]
async fn an_email_not_in_canonical_form_is_refused_not_trimmed() {
    let Some(stack) = Stack::start(3600, example_com).await else {
        return;
    };
    let hits = stack.echo.hits();
    let mut padded = Agent::new();
    let reply = padded.sign_in(&stack.gateway, "padded", "/").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "` bob@example.com` must not become bob: {}", reply.body);
    assert!(padded.session_cookies(common::gateway::COOKIE_NAME).is_empty());
    assert_eq!(padded.get(&stack.gateway.url("/x"), Accept::Json).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stack.echo.hits(), hits);
    // The same user under a group-only policy is refused too.
    let Some(groups) = Stack::start(3600, sre_only).await else {
        return;
    };
    let reply = Agent::new().sign_in(&groups.gateway, "padded", "/").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
}

#[tokio::test]
async fn email_verified_as_a_string_is_understood() {
    let Some(stack) = Stack::start(3600, example_com).await else {
        return;
    };
    let mut sam = Agent::new();
    let reply = sam.sign_in(&stack.gateway, "strbool", "/").await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}\n{}", reply.body, stack.gateway.logs());
    let echo = sam.get(&stack.gateway.url("/x"), Accept::Json).await.json();
    assert_eq!(header(&echo, "x-auth-request-email").as_deref(), Some("sam@example.com"));
}

/// Identity headers that upstreams are commonly configured to trust, in
/// the spellings frameworks fold together.
const SPOOFED: [(&str, &str); 16] = [
    ("Remote-User", "ceo"),
    ("Remote_User", "ceo"),
    ("X-Remote-User", "ceo"),
    ("X_Remote_User", "ceo"),
    ("X-Remote-Group", "admins"),
    ("X-WEBAUTH-USER", "ceo"),
    ("X_WEBAUTH_USER", "ceo"),
    ("X-Auth-User", "ceo"),
    ("X.Auth.User", "ceo"),
    ("X-Forwarded-Preferred-Username", "ceo"),
    ("X.Forwarded.User", "ceo"),
    ("X-Forwarded-Access-Token", "forged"),
    ("X-Auth-Request-User-Id", "1"),
    ("X.Auth.Request.Email", "ceo@example.com"),
    ("X-Authenticated-Userid", "ceo"),
    ("X-Goog-Authenticated-User-Email", "ceo@example.com"),
];

#[tokio::test]
async fn every_identity_like_header_a_client_sends_is_removed() {
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let reply = agent.send(Method::GET, &stack.gateway.url("/x"), Accept::Json, &SPOOFED, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.json();
    for (name, _) in SPOOFED {
        let lower = name.to_ascii_lowercase();
        if lower == "x-auth-request-user-id" {
            assert_eq!(header(&echo, &lower).as_deref(), Some("alice"), "ours, not the client's");
            continue;
        }
        assert_eq!(header(&echo, &lower), None, "{name} must not reach the upstream");
    }
}

#[tokio::test]
async fn forwarding_headers_are_the_gateways_own_unless_a_trusted_proxy_sent_them() {
    let forged = [
        ("X-Forwarded-For", "203.0.113.66"),
        ("X-Forwarded-Host", "evil.example.net"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "8443"),
        ("X-Forwarded-Prefix", "/admin"),
        ("Forwarded", "for=203.0.113.66;host=evil.example.net"),
        ("X-Real-IP", "203.0.113.66"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X_Forwarded_For", "203.0.113.66"),
        ("Host", "evil.example.net"),
    ];
    let Some(stack) = Stack::start(3600, sre_only).await else {
        return;
    };
    let external_host = format!("127.0.0.1:{}", stack.gateway.base.port().unwrap());
    let mut agent = Agent::new();
    agent.sign_in(&stack.gateway, "alice", "/").await;
    let echo = agent.send(Method::GET, &stack.gateway.url("/x"), Accept::Json, &forged, None).await.json();
    assert_eq!(header_values(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header(&echo, "x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(header(&echo, "x-forwarded-host").as_deref(), Some(external_host.as_str()));
    assert_eq!(header(&echo, "x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(header(&echo, "x-forwarded-port").as_deref(), Some(&*stack.gateway.base.port().unwrap().to_string()));
    for absent in ["x-forwarded-prefix", "forwarded", "x-original-url", "x-rewrite-url", "x_forwarded_for"] {
        assert_eq!(header(&echo, absent), None, "{absent}");
    }

    // Behind a trusted proxy (loopback here), its chain is kept and the
    // client address is the right-most one it vouches for.
    let Some(behind) = Stack::start(3600, |c| {
        sre_only(c);
        c.forward.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await
    else {
        return;
    };
    let mut agent = Agent::new();
    agent.sign_in(&behind.gateway, "alice", "/").await;
    let echo = agent.send(Method::GET, &behind.gateway.url("/x"), Accept::Json, &forged, None).await.json();
    assert_eq!(header_values(&echo, "x-forwarded-for"), ["203.0.113.66, 127.0.0.1"]);
    assert_eq!(header(&echo, "x-real-ip").as_deref(), Some("203.0.113.66"));
    let host = format!("127.0.0.1:{}", behind.gateway.base.port().unwrap());
    assert_eq!(header(&echo, "x-forwarded-host").as_deref(), Some(host.as_str()), "never the client's host");
}
