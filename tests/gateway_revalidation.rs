//! Re-validation of live sessions (`session.revalidateSeconds`): the real
//! `authgate gateway` against the real OP (whose users change at runtime
//! through its admin endpoint) and the GitHub fake. A user the provider or
//! the policy no longer lets in is signed out on their next request after
//! one interval; an unreachable provider is tolerated for the grace, then
//! the session fails closed; a burst of requests makes one provider call;
//! a tightened policy applies to existing sessions at once.

mod common;
mod fakes;

use std::time::Duration;

use authgate::api::AllowList;
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::ProviderType;
use common::echo::header;
use common::gateway::provider;
use common::login::assert_logged_in;
use common::{Accept, Agent, CLIENT_ID, CLIENT_SECRET, Echo, Gateway, Op, OpSettings, free_port, gateway, op};
use fakes::github::{FakeGithub, User};
use reqwest::StatusCode;
use serde_json::json;

/// The interval and grace of these tests, in seconds.
const INTERVAL: u64 = 2;
const GRACE: u64 = 3;

/// Just past `seconds` on the gateway's second-resolution clock: a session
/// validated at `t` is due at any instant at least this long after `t`.
fn past(seconds: u64) -> Duration {
    Duration::from_millis(seconds * 1000 + 150)
}

fn revalidating(c: &mut GatewayConfig) {
    c.session.revalidate_seconds = INTERVAL;
    c.session.revalidate_grace_seconds = GRACE;
}

async fn metric(gw: &Gateway, line_prefix: &str) -> f64 {
    let text = gw.metrics().await;
    text.lines().find_map(|l| l.strip_prefix(line_prefix)).map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn revalidations(gw: &Gateway, result: &str) -> f64 {
    metric(gw, &format!("authgate_gateway_session_revalidations_total{{result=\"{result}\"}}")).await
}

/// An OP with its admin endpoint, the echo upstream and a gateway whose
/// policy lets in `sre`, configured further by `tweak`.
struct OidcSetup {
    gw: Gateway,
    op: Op,
    echo: Echo,
}

async fn oidc_setup(tweak: impl FnOnce(&mut GatewayConfig)) -> Option<OidcSetup> {
    common::init();
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
    let op = Op::start(OpSettings {
        admin: true,
        clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&callback])],
        ..OpSettings::default()
    })
    .await?;
    let echo = Echo::start().await;
    let mut config =
        gateway::config(port, &echo.url(), vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)]);
    common::sre_only(&mut config);
    tweak(&mut config);
    let gw = Gateway::start(config).await;
    Some(OidcSetup { gw, op, echo })
}

/// Signs `user` in through the OP and checks the first request passes.
async fn signed_in(s: &OidcSetup, user: &str) -> Agent {
    let mut agent = Agent::new();
    let reply = agent.sign_in(&s.gw, user, "/app").await;
    assert!(reply.status.is_redirection(), "sign-in of {user}: {}\nGATEWAY LOGS:\n{}", reply.describe(), s.gw.logs());
    let page = agent.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "{user} right after sign-in:\n{}", page.describe());
    agent
}

/// The session is refused as an ended one: 401 for an API client with its
/// cookies dropped, never reaching the upstream.
async fn assert_signed_out(gw: &Gateway, echo: &Echo, agent: &mut Agent, why: &str) {
    let hits = echo.hits();
    let api = agent.get(&gw.url("/app"), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{why}:\n{}\nGATEWAY LOGS:\n{}", api.describe(), gw.logs());
    assert!(!agent.has_session_cookie(), "{why}: the session cookies must be dropped: {:?}", agent.cookies());
    assert_eq!(echo.hits(), hits, "{why}: the upstream must see nothing");
}

fn alice_without_sre() -> serde_json::Value {
    json!({"email": "alice@example.com", "email_verified": true, "groups": ["dev"], "name": "Alice"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_user_removed_from_the_group_is_signed_out_within_one_interval() {
    let Some(s) = oidc_setup(revalidating).await else { return };
    let mut alice = signed_in(&s, "alice").await;
    let mut eve = signed_in(&s, "eve").await;

    // At the IdP, alice leaves `sre`; eve joins `oncall` (still in `sre`).
    s.op.set_user("alice", alice_without_sre()).await;
    s.op.set_user("eve", json!({"email": "eve@evil.org", "email_verified": true, "groups": ["sre", "oncall"]})).await;
    // Before the interval is over, nothing is asked and alice still passes.
    let early = alice.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.describe());

    tokio::time::sleep(past(INTERVAL)).await;
    assert_signed_out(&s.gw, &s.echo, &mut alice, "alice left sre at the IdP").await;
    // A browser is sent to sign in (and would be refused there).
    let page = alice.get(&s.gw.url("/app"), Accept::Html).await;
    assert!(page.location().is_some_and(|l| l.path() == "/oauth2/start"), "{}", page.describe());

    // eve keeps working over several intervals, with her new groups.
    for round in 0..3 {
        let page = eve.get(&s.gw.url("/app"), Accept::Json).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "eve, round {round}:\n{}\nGATEWAY LOGS:\n{}",
            page.describe(),
            s.gw.logs()
        );
        let echo = common::echo::report(&page.body);
        assert_eq!(header(&echo, "x-auth-request-groups").as_deref(), Some("sre,oncall"), "round {round}: {echo:#}");
        tokio::time::sleep(past(INTERVAL)).await;
    }
    assert!(revalidations(&s.gw, "denied").await >= 1.0);
    assert!(revalidations(&s.gw, "passed").await >= 3.0, "{}", s.gw.metrics().await);
    assert!(
        metric(&s.gw, r#"authgate_gateway_sessions_revoked_total{reason="revalidation"}"#).await >= 1.0,
        "{}",
        s.gw.metrics().await
    );
}

/// The session passes to the upstream.
async fn ok(gw: &Gateway, agent: &mut Agent, why: &str) {
    let page = agent.get(&gw.url("/app"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "{why}:\n{}\nGATEWAY LOGS:\n{}", page.describe(), gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_idp_is_tolerated_for_the_grace_then_fails_closed() {
    let Some(s) = oidc_setup(revalidating).await else { return };
    let mut alice = signed_in(&s, "alice").await;

    // An outage: due, but within the grace the session goes on.
    s.op.outage(Some(503)).await;
    tokio::time::sleep(past(INTERVAL)).await;
    ok(&s.gw, &mut alice, "due during an outage, within the grace").await;
    assert!(revalidations(&s.gw, "error").await >= 1.0, "{}", s.gw.metrics().await);
    // The IdP comes back within the grace: re-validated, the session stays.
    s.op.outage(None).await;
    ok(&s.gw, &mut alice, "the IdP is back within the grace").await;
    assert_eq!(revalidations(&s.gw, "passed").await, 1.0, "{}", s.gw.metrics().await);

    // Another outage, longer than interval + grace: within the grace the
    // session works, then it fails closed.
    s.op.outage(Some(502)).await;
    tokio::time::sleep(past(INTERVAL)).await;
    ok(&s.gw, &mut alice, "the next outage, within the grace").await;
    tokio::time::sleep(past(GRACE)).await;
    assert_signed_out(&s.gw, &s.echo, &mut alice, "past the grace").await;
    assert_eq!(revalidations(&s.gw, "failed_closed").await, 1.0, "{}", s.gw.metrics().await);
    // Not even the IdP coming back revives it: sign in again.
    s.op.outage(None).await;
    let page = alice.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_idp_is_an_outage_and_a_clear_refusal_signs_out_at_once() {
    // A long grace, so that restarting the OP never outlasts it.
    let Some(mut s) = oidc_setup(|c| {
        revalidating(c);
        c.session.revalidate_grace_seconds = 60;
    })
    .await
    else {
        return;
    };
    let mut alice = signed_in(&s, "alice").await;
    let port = s.op.issuer.port();
    // The OP is gone (connection refused): an outage, within the grace.
    s.op.stop();
    tokio::time::sleep(past(INTERVAL)).await;
    ok(&s.gw, &mut alice, "the IdP is down, within the grace").await;
    assert_eq!(revalidations(&s.gw, "error").await, 1.0, "{}", s.gw.metrics().await);
    // It comes back having forgotten every grant: the refresh is
    // invalid_grant, which ends the session although the grace is not over.
    let clients = vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&s.gw.callback_url()])];
    s.op = Op::start(OpSettings { port, clients, admin: true, ..OpSettings::default() }).await.expect("OP again");
    assert_signed_out(&s.gw, &s.echo, &mut alice, "the IdP refused the grant").await;
    assert_eq!(revalidations(&s.gw, "denied").await, 1.0, "{}", s.gw.metrics().await);
    assert_eq!(revalidations(&s.gw, "failed_closed").await, 0.0, "a refusal is not an outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_with_one_due_cookie_makes_one_idp_call() {
    let Some(s) = oidc_setup(revalidating).await else { return };
    let alice = signed_in(&s, "alice").await;
    let cookie = alice.cookie_header().expect("session cookie");
    assert_eq!(s.op.grants("refresh_token", CLIENT_ID), 0);
    tokio::time::sleep(past(INTERVAL)).await;
    let client = reqwest::Client::new();
    let burst = (0..8)
        .map(|_| client.get(s.gw.url("/app")).header("accept", "application/json").header("cookie", &cookie).send());
    for reply in futures::future::join_all(burst).await {
        let reply = reply.expect("request");
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(reply.headers().get("set-cookie").is_some(), "each request gets the renewed session");
    }
    assert_eq!(s.op.grants("refresh_token", CLIENT_ID), 1, "one refresh for the burst; OP log:\n{}", s.op.logs());
    assert_eq!(s.op.userinfo_requests(), 0, "the refreshed ID token was the profile");
    assert_eq!(revalidations(&s.gw, "passed").await, 1.0, "{}", s.gw.metrics().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tightened_policy_refuses_existing_sessions_on_their_next_request() {
    // Re-validation is off: only the per-request judgement can refuse.
    let Some(mut s) = oidc_setup(|c| {
        c.access.allowed_groups = vec!["sre".into(), "dev".into()];
        c.session.revalidate_seconds = 0;
    })
    .await
    else {
        return;
    };
    let mut alice = signed_in(&s, "alice").await; // sre, dev
    let mut bob = signed_in(&s, "bob").await; // dev
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The same gateway (port, cookie keys) with a policy that drops `dev`,
    // as a reload or a restart with a changed gateway.yaml builds it.
    let mut config = s.gw.config.clone().expect("config");
    config.access.allowed_groups = vec!["sre".into()];
    s.gw.stop();
    drop(std::mem::replace(&mut s.gw, Gateway::start(config).await));
    let page = alice.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "alice is still in sre:\n{}", page.describe());
    assert_signed_out(&s.gw, &s.echo, &mut bob, "bob's dev no longer counts").await;
    assert_eq!(s.op.grants("refresh_token", CLIENT_ID), 0, "judged from the session, without the IdP");
}

/// nginx's `auth_request` for `/private`, from a trusted 127.0.0.1.
async fn auth_request(gw: &Gateway, agent: &mut Agent) -> common::agent::Reply {
    let original = gw.url("/private");
    agent
        .send(reqwest::Method::GET, &gw.url("/oauth2/auth"), Accept::Json, &[("x-original-url", &original)], None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_re_validates_too() {
    let Some(s) = oidc_setup(|c| {
        revalidating(c);
        c.forward_auth = Some(authgate::api::ForwardAuth { trusted_proxies: vec!["127.0.0.1/32".into()] });
    })
    .await
    else {
        return;
    };
    let mut alice = signed_in(&s, "alice").await;
    let reply = auth_request(&s.gw, &mut alice).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.describe());
    s.op.set_user("alice", alice_without_sre()).await;
    tokio::time::sleep(past(INTERVAL)).await;
    let reply = auth_request(&s.gw, &mut alice).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}\nGATEWAY LOGS:\n{}", reply.describe(), s.gw.logs());
    assert!(!alice.has_session_cookie(), "the cookies are dropped: {:?}", alice.cookies());
    assert_eq!(revalidations(&s.gw, "denied").await, 1.0, "{}", s.gw.metrics().await);
}

// ---------------------------------------------------------------------------
// GitHub (the fake).
// ---------------------------------------------------------------------------

const GITHUB_ID: &str = "Iv1.8a61f9b3a7aba766";
const GITHUB_SECRET: &str = "1234567890abcdef1234567890abcdef12345678";

struct GithubSetup {
    fake: FakeGithub,
    gw: Gateway,
    echo: Echo,
}

/// The fake with `user`, a gateway letting in members of `acme`.
async fn github_setup(user: User) -> GithubSetup {
    let fake = FakeGithub::start(GITHUB_ID, GITHUB_SECRET).await;
    fake.login_as(&user.login);
    fake.add_user(user);
    let echo = Echo::start().await;
    let mut p = provider(
        "github",
        ProviderType::Github,
        GITHUB_ID,
        GITHUB_SECRET,
        fake.authorize_url(),
        fake.token_url(),
        &["read:org", "user:email"],
        AllowList { allowed_orgs: vec!["acme".into()], ..AllowList::default() },
    );
    p.api_url = Some(fake.api_url());
    let mut config = gateway::config(free_port(), &echo.url(), vec![p]);
    revalidating(&mut config);
    let gw = Gateway::start_with(config, &[("RUST_LOG", &fakes::gateway_log())]).await;
    fake.register_callback(&gw.callback_url());
    GithubSetup { fake, gw, echo }
}

async fn github_signed_in(s: &GithubSetup) -> Agent {
    let mut agent = Agent::new();
    let login = agent.login(&s.gw, "github", "/app").await;
    assert_logged_in(&s.gw, &mut agent, &login, "/app").await;
    agent
}

fn octocat() -> User {
    User::new("octocat").email("octocat@example.com", true, true).org("acme").team("acme", "platform")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_user_removed_from_the_org_is_signed_out_within_one_interval() {
    let s = github_setup(octocat()).await;
    let mut agent = github_signed_in(&s).await;
    let reads = s.fake.api_requests().len();
    // Still a member over an interval: re-read with the session's token.
    tokio::time::sleep(past(INTERVAL)).await;
    let page = agent.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(page.status, StatusCode::OK, "{}\nGATEWAY LOGS:\n{}", page.describe(), s.gw.logs());
    assert!(s.fake.api_requests().len() > reads, "the profile was read again");
    assert!(s.fake.token_requests().len() == 1, "no token request: GitHub tokens are not refreshed");

    s.fake.update_user("octocat", |u| {
        u.orgs.clear();
        u.teams.clear();
    });
    tokio::time::sleep(past(INTERVAL)).await;
    assert_signed_out(&s.gw, &s.echo, &mut agent, "octocat left acme").await;
    assert_eq!(revalidations(&s.gw, "denied").await, 1.0, "{}", s.gw.metrics().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_outage_is_tolerated_for_the_grace_and_a_bad_token_is_not() {
    let s = github_setup(octocat()).await;
    let mut agent = github_signed_in(&s).await;
    s.fake.update_user("octocat", |u| *u = octocat().fail_everything(502));
    tokio::time::sleep(past(INTERVAL)).await;
    let page = agent.get(&s.gw.url("/app"), Accept::Json).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "502 within the grace:\n{}\nGATEWAY LOGS:\n{}",
        page.describe(),
        s.gw.logs()
    );
    assert_eq!(revalidations(&s.gw, "error").await, 1.0, "{}", s.gw.metrics().await);
    tokio::time::sleep(past(GRACE)).await;
    assert_signed_out(&s.gw, &s.echo, &mut agent, "502 past the grace").await;
    assert_eq!(revalidations(&s.gw, "failed_closed").await, 1.0, "{}", s.gw.metrics().await);

    // A 401 (the token was revoked) ends a session at once.
    s.fake.update_user("octocat", |u| *u = octocat());
    let mut agent = github_signed_in(&s).await;
    s.fake.update_user("octocat", |u| *u = octocat().fail_everything(401));
    tokio::time::sleep(past(INTERVAL)).await;
    assert_signed_out(&s.gw, &s.echo, &mut agent, "GitHub refused the token").await;
    assert_eq!(revalidations(&s.gw, "denied").await, 1.0, "{}", s.gw.metrics().await);
}

// ---------------------------------------------------------------------------
// OpenID Connect without a refresh token: userinfo (the hostile OP's, which
// issues none).
// ---------------------------------------------------------------------------

/// The hostile OP in its valid mode, a gateway letting in `engineering`
/// and reading the profile again from `userinfo` (the OP's own when
/// `None`).
async fn userinfo_setup(userinfo: Option<url::Url>) -> (fakes::hostile_op::HostileOp, Gateway, Echo) {
    let op = fakes::hostile_op::HostileOp::start(CLIENT_ID, CLIENT_SECRET).await;
    let echo = Echo::start().await;
    let mut p = provider(
        "corp",
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
    p.userinfo_url = Some(userinfo.unwrap_or_else(|| op.userinfo_url()));
    let mut config = gateway::config(free_port(), &echo.url(), vec![p]);
    config.access.allowed_groups = vec!["engineering".into()];
    revalidating(&mut config);
    let gw = Gateway::start_with(config, &[("RUST_LOG", &fakes::gateway_log())]).await;
    op.register_redirect_uri(&gw.callback_url());
    op.set_mode(fakes::hostile_op::Mode::Valid);
    (op, gw, echo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_token_userinfo_is_read_again() {
    let (_op, gw, _echo) = userinfo_setup(None).await;
    let mut agent = Agent::new();
    let login = agent.login(&gw, "corp", "/app").await;
    assert_logged_in(&gw, &mut agent, &login, "/app").await;
    tokio::time::sleep(past(INTERVAL)).await;
    ok(&gw, &mut agent, "userinfo still has engineering").await;
    assert_eq!(revalidations(&gw, "passed").await, 1.0, "{}", gw.metrics().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_naming_someone_else_signs_out() {
    // "userinfo" answered by the echo upstream: a JSON object, without the
    // session's subject.
    let other = Echo::start().await;
    let (_op, gw, echo) = userinfo_setup(Some(other.url())).await;
    let mut agent = Agent::new();
    let login = agent.login(&gw, "corp", "/app").await;
    assert_logged_in(&gw, &mut agent, &login, "/app").await;
    tokio::time::sleep(past(INTERVAL)).await;
    assert_signed_out(&gw, &echo, &mut agent, "userinfo names another subject").await;
    assert!(other.hits() >= 1, "userinfo was asked");
}
