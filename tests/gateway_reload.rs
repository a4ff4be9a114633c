//! A running gateway takes on a new `gateway.yaml` without a restart: the
//! file is rewritten the way the kubelet updates a mounted Secret, and the
//! same process (same PID, same listening sockets) then applies the new
//! revocations, keys and rules, or refuses a bad file and keeps serving
//! the last good one. Users sign in through the GitHub fake.

mod common;
mod fakes;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authgate::api::AllowList;
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{ProviderType, Redacted, UserRevocation};
use common::gateway::provider;
use common::login::assert_logged_in;
use common::projected::{Projected, wait_for_reloads};
use common::{Accept, Agent, Echo, Gateway, cookie_key, free_port, gateway};
use fakes::github::{FakeGithub, User};
use reqwest::StatusCode;

const CLIENT_ID: &str = "Iv1.0a61f9b3a7aba766";
const CLIENT_SECRET: &str = "reload-client-secret-6c1f0e2d9b8a7f6e5d4c";
const RD: &str = "/app";

struct Setup {
    fake: FakeGithub,
    gw: Gateway,
    file: Projected,
    config: GatewayConfig,
    _upstream: Echo,
}

/// A gateway letting in the GitHub orgs `orgs`, whose users are `users`.
async fn setup(users: Vec<User>, orgs: &[&str]) -> Setup {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    for u in users {
        fake.add_user(u);
    }
    let upstream = Echo::start().await;
    let mut p = provider(
        "github",
        ProviderType::Github,
        CLIENT_ID,
        CLIENT_SECRET,
        fake.authorize_url(),
        fake.token_url(),
        &["read:org", "user:email"],
        AllowList::default(),
    );
    p.api_url = Some(fake.api_url());
    let mut config = gateway::config(free_port(), &upstream.url(), vec![p]);
    config.access = allowed_orgs(orgs);
    let file = Projected::new(&config);
    let gw = file.start(&config, &[]).await;
    fake.register_callback(&gw.callback_url());
    Setup { fake, gw, file, config, _upstream: upstream }
}

fn allowed_orgs(orgs: &[&str]) -> AllowList {
    AllowList { allowed_orgs: orgs.iter().map(|o| (*o).to_owned()).collect(), ..AllowList::default() }
}

fn member(login: &str, org: &str) -> User {
    User::new(login).email(&format!("{login}@example.com"), true, true).org(org)
}

impl Setup {
    /// A browser signed in as `login`.
    async fn signed_in(&self, login: &str) -> Agent {
        self.fake.login_as(login);
        let mut browser = Agent::new();
        let attempt = browser.login(&self.gw, "github", RD).await;
        assert_logged_in(&self.gw, &mut browser, &attempt, RD).await;
        browser
    }

    /// What an API client with `browser`'s cookies gets for `RD`.
    async fn status(&self, browser: &mut Agent) -> StatusCode {
        browser.get(&self.gw.url(RD), Accept::Json).await.status
    }

    /// Rewrites the file with `change` applied to the config, and waits
    /// until the gateway has accepted `accepted` reloads in all.
    async fn reload(&mut self, accepted: u64, change: impl FnOnce(&mut GatewayConfig)) {
        change(&mut self.config);
        self.file.write_config(&self.config);
        wait_for_reloads(&self.gw, "accepted", accepted).await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Sleeps into the next second, so a session issued before is strictly
/// older than `unix_now()` afterwards (issue times count whole seconds).
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_and_the_last_good_one_keeps_serving() {
    let mut s = setup(vec![member("alice", "acme")], &["acme"]).await;
    let mut alice = s.signed_in("alice").await;
    assert_eq!(s.status(&mut alice).await, StatusCode::OK);

    // Not YAML at all, then valid YAML the gateway refuses (a public
    // provider with no restriction left), then a change of the listener's
    // timeouts, which needs a restart: each refused, each counted, none in
    // force.
    s.file.write("externalUrl: [unterminated\n");
    wait_for_reloads(&s.gw, "refused", 1).await;
    assert_eq!(s.status(&mut alice).await, StatusCode::OK, "the last good config keeps serving");
    let mut open = s.config.clone();
    open.access = AllowList::default();
    s.file.write_config(&open);
    wait_for_reloads(&s.gw, "refused", 2).await;
    assert_eq!(s.status(&mut alice).await, StatusCode::OK);
    let mut slower = s.config.clone();
    slower.timeouts.header_read_seconds += 5;
    s.file.write_config(&slower);
    wait_for_reloads(&s.gw, "refused", 3).await;
    assert_eq!(s.status(&mut alice).await, StatusCode::OK);
    let logs = s.gw.logs();
    assert_eq!(logs.matches("new config refused; the last good one keeps serving").count(), 3, "{logs}");
    assert!(logs.contains("needs a restart"), "{logs}");
    assert!(!logs.contains(CLIENT_SECRET), "a refused config's secrets stay out of the log");

    // A good change takes effect in the same process: a path made public.
    assert_eq!(Agent::new().get(&s.gw.url("/status"), Accept::Json).await.status, StatusCode::UNAUTHORIZED);
    s.reload(1, |c| c.public_paths = vec!["/status".into()]).await;
    assert_eq!(Agent::new().get(&s.gw.url("/status"), Accept::Json).await.status, StatusCode::OK);
    assert_eq!(s.status(&mut alice).await, StatusCode::OK, "sessions survive a reload");
    assert!(s.gw.metrics().await.contains(r#"authgate_gateway_config_reloads_total{result="refused"} 3"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_before_and_user_revocations_end_the_right_sessions_without_a_restart() {
    let mut s = setup(vec![member("alice", "acme"), member("bob", "acme")], &["acme"]).await;
    let mut alice = s.signed_in("alice").await;
    let mut bob = s.signed_in("bob").await;
    next_second().await;

    // One user's sessions, by user name: alice is out, bob is not.
    let before = unix_now();
    s.reload(1, |c| c.session.revocations = vec![UserRevocation { user: Some("alice".into()), email: None, before }])
        .await;
    assert_eq!(s.status(&mut alice).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.status(&mut bob).await, StatusCode::OK);
    // Signing in again after the revocation's instant works.
    let mut alice_again = s.signed_in("alice").await;
    assert_eq!(s.status(&mut alice_again).await, StatusCode::OK);

    // By email, case-insensitively.
    next_second().await;
    let before = unix_now();
    s.reload(2, |c| {
        c.session.revocations.push(UserRevocation { user: None, email: Some("BOB@example.com".into()), before })
    })
    .await;
    assert_eq!(s.status(&mut bob).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.status(&mut alice_again).await, StatusCode::OK, "bob's revocation is not alice's");

    // notBefore: every session issued earlier, whoever's.
    let mut bob_again = s.signed_in("bob").await;
    assert_eq!(s.status(&mut bob_again).await, StatusCode::OK);
    next_second().await;
    let not_before = unix_now();
    s.reload(3, |c| {
        c.session.revocations.clear();
        c.session.not_before = not_before;
    })
    .await;
    assert_eq!(s.status(&mut bob_again).await, StatusCode::UNAUTHORIZED);
    let mut fresh = s.signed_in("alice").await;
    assert_eq!(s.status(&mut fresh).await, StatusCode::OK, "sessions issued afterwards work");

    let metrics = s.gw.metrics().await;
    assert!(metrics.contains(r#"authgate_gateway_sessions_revoked_total{reason="user"}"#), "{metrics}");
    assert!(metrics.contains(r#"authgate_gateway_sessions_revoked_total{reason="not_before"} 1"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_cookie_key_keeps_old_sessions_until_the_key_is_retired() {
    let mut s = setup(vec![member("alice", "acme"), member("bob", "acme")], &["acme"]).await;
    let old_key = s.config.session.keys[0].clone();
    let mut alice = s.signed_in("alice").await;

    // Add a key: it seals from now on, the old one still opens.
    let new_key = Redacted::new(cookie_key());
    s.reload(1, |c| c.session.keys = vec![new_key.clone(), old_key.clone()]).await;
    assert_eq!(s.status(&mut alice).await, StatusCode::OK, "sealed with the old key, still open");
    let mut bob = s.signed_in("bob").await;
    assert_eq!(s.status(&mut bob).await, StatusCode::OK);

    // Retire the old key: what it sealed no longer opens.
    s.reload(2, |c| c.session.keys = vec![new_key.clone()]).await;
    assert_eq!(s.status(&mut alice).await, StatusCode::UNAUTHORIZED, "sealed with the retired key");
    assert_eq!(s.status(&mut bob).await, StatusCode::OK, "sealed with the key in force");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tightened_policy_refuses_existing_sessions_on_their_next_request() {
    let mut s = setup(vec![member("alice", "acme"), member("bob", "beta")], &["acme", "beta"]).await;
    let mut alice = s.signed_in("alice").await;
    let mut bob = s.signed_in("bob").await;
    assert_eq!(s.status(&mut bob).await, StatusCode::OK);

    // The policy drops bob's org: his session is refused on its very next
    // request, long before any refresh or re-validation is due.
    s.reload(1, |c| c.access = allowed_orgs(&["acme"])).await;
    assert_eq!(s.status(&mut bob).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.status(&mut alice).await, StatusCode::OK);
}
