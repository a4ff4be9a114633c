//! Ending sessions against the real control plane: SessionRevocations and
//! `spec.session.notBefore` reach the policy's gateway.yaml without rolling
//! the gateway pods, expired revocations are pruned, and `authgate revoke`
//! works with a person's kubeconfig and RBAC.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use authgate::api::{AuthPolicy, SessionRevocation};
use authgate::gateway::GatewayConfig;
use common::cluster::{self, Cluster, ControllerProcess, connect, github_provider_yaml, policy_yaml, repo, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

const T: Duration = Duration::from_secs(60);

/// The CRDs `connect` installs include SessionRevocation; wait until it is served.
fn revocations_served(c: &Cluster) {
    let out =
        c.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd/sessionrevocations.authgate.dev"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn ready(aps: &Api<AuthPolicy>, name: &str) {
    wait_for(&format!("policy {name} Ready"), Duration::from_secs(90), || async {
        cluster::has(cluster::policy_condition(aps, name, "Ready").await, "True", "Available")
    })
    .await;
}

/// A controller, and policy `app` on a GitHub provider, Ready.
async fn ready_app(c: &cluster::Cluster, n: &str) -> (ControllerProcess, Api<AuthPolicy>) {
    let ctl = ControllerProcess::start(c, n, 300);
    c.apply(n, &github_provider_yaml("gh", "gh-secret", "s"));
    c.apply(n, &policy_yaml("app", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(n);
    ready(&aps, "app").await;
    (ctl, aps)
}

/// The pod template's config hash and the Deployment's generation: if
/// either moves, the gateway pods roll.
async fn rollout_identity(c: &Cluster, ns: &str, policy: &str) -> (String, Option<i64>) {
    let d = c.api::<Deployment>(ns).get(&format!("{policy}-gateway")).await.unwrap();
    let hash = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()
        ["authgate.dev/config-hash"]
        .clone();
    (hash, d.metadata.generation)
}

async fn config(c: &Cluster, ns: &str, policy: &str) -> GatewayConfig {
    cluster::gateway_config(c, ns, policy).await.expect("the policy's Secret holds a gateway.yaml")
}

fn revoked_users(config: &GatewayConfig) -> Vec<String> {
    config.session.revocations.iter().map(|r| r.user.clone().or(r.email.clone()).unwrap_or_default()).collect()
}

fn revocation(name: &str, policy: Option<&str>, user: Option<&str>, email: Option<&str>) -> SessionRevocation {
    let spec = serde_json::from_value(serde_json::json!({"policy": policy, "user": user, "email": email})).unwrap();
    SessionRevocation::new(name, spec)
}

/// Polls `policy`'s gateway.yaml every 20 ms until `done` holds; returns how long that took.
async fn until_config(
    c: &Cluster,
    ns: &str,
    policy: &str,
    what: &str,
    done: impl Fn(&GatewayConfig) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if let Some(cfg) = cluster::gateway_config(c, ns, policy).await
            && done(&cfg)
        {
            return start.elapsed();
        }
        assert!(start.elapsed() < T, "timed out waiting for {what} in {policy}'s gateway.yaml");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_reaches_only_its_policys_gateway_config_and_leaves_again_without_a_pod_roll() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("revoke");
    let n = ns.name.as_str();
    let _ctl = ControllerProcess::start(&c, n, 300);
    c.apply(n, &github_provider_yaml("gh", "gh-secret", "s"));
    c.apply(n, &policy_yaml("app", &["gh"]));
    c.apply(n, &policy_yaml("other", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(n);
    ready(&aps, "app").await;
    ready(&aps, "other").await;
    let rolled_before = rollout_identity(&c, n, "app").await;
    assert!(config(&c, n, "app").await.session.revocations.is_empty());

    let revocations: Api<SessionRevocation> = c.api(n);
    let created = Instant::now();
    revocations.create(&PostParams::default(), &revocation("alice", Some("app"), Some("alice"), None)).await.unwrap();
    until_config(&c, n, "app", "alice's revocation", |cfg| revoked_users(cfg) == ["alice"]).await;
    let latency = created.elapsed();
    eprintln!("create SessionRevocation -> policy Secret carries it: {latency:?}");
    assert!(latency < Duration::from_secs(10), "watch-driven, not a resync: {latency:?}");

    // Its `before` is its creation time, and it expires a session lifetime (12 h) later.
    let alice = wait_for("alice Delivered", T, || async {
        let r = revocations.get("alice").await.ok()?;
        let conds = r.status.as_ref()?.conditions.clone();
        cluster::has(cluster::condition(&conds, "Ready").cloned(), "True", "Delivered").map(|()| r)
    })
    .await;
    let status = alice.status.clone().unwrap();
    let created_at = alice.metadata.creation_timestamp.clone().unwrap();
    assert_eq!(status.before.as_ref(), Some(&created_at));
    assert_eq!(status.expires_at.unwrap().0.as_second() - created_at.0.as_second(), 12 * 3600);
    assert_eq!(status.observed_generation, alice.metadata.generation);
    let in_config = config(&c, n, "app").await.session.revocations;
    assert_eq!(in_config[0].before, u64::try_from(created_at.0.as_second()).unwrap());

    // Policy "other" is not named: it carries nothing.
    assert!(config(&c, n, "other").await.session.revocations.is_empty());
    // One without a policy applies to both.
    revocations.create(&PostParams::default(), &revocation("bob", None, None, Some("bob@example.com"))).await.unwrap();
    until_config(&c, n, "other", "bob's revocation", |cfg| revoked_users(cfg) == ["bob@example.com"]).await;
    until_config(&c, n, "app", "bob's revocation", |cfg| {
        let mut users = revoked_users(cfg);
        users.sort();
        users == ["alice", "bob@example.com"]
    })
    .await;

    // Steady state: the revocation's status is not rewritten, even when a
    // change to its policy wakes it.
    let settled = revocations.get("alice").await.unwrap().resource_version();
    let out = c.kubectl(&["annotate", "-n", n, "ap/app", "example.com/touched=yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(revocations.get("alice").await.unwrap().resource_version(), settled);

    revocations.delete("alice", &DeleteParams::default()).await.unwrap();
    until_config(&c, n, "app", "alice's revocation gone", |cfg| revoked_users(cfg) == ["bob@example.com"]).await;
    assert_eq!(rollout_identity(&c, n, "app").await, rolled_before, "no pod roll for revocations");
}

#[tokio::test(flavor = "multi_thread")]
async fn not_before_is_rendered_in_unix_seconds_without_a_pod_roll_and_revoke_all_sets_it() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("notbefore");
    let n = ns.name.as_str();
    let (_ctl, aps) = ready_app(&c, n).await;
    let rolled_before = rollout_identity(&c, n, "app").await;
    assert_eq!(config(&c, n, "app").await.session.not_before, 0);

    let out = c.kubectl(&[
        "patch",
        "-n",
        n,
        "ap/app",
        "--type=merge",
        "-p",
        r#"{"spec":{"session":{"notBefore":"2026-01-02T03:04:05Z"}}}"#,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until_config(&c, n, "app", "notBefore", |cfg| cfg.session.not_before == 1_767_323_045).await;

    // `authgate revoke --all` sets it to now (rounded up to the next second).
    let started = k8s_openapi::jiff::Timestamp::now().as_second();
    let out = revoke(&c.kubeconfig, &["-n", n, "--policy", "app", "--all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("authpolicy/app"));
    let spec = aps.get("app").await.unwrap().spec.session.not_before.unwrap().0.as_second();
    assert!((started..=started + 5).contains(&spec), "notBefore {spec} is now ({started})");
    until_config(&c, n, "app", "notBefore from revoke --all", |cfg| cfg.session.not_before == spec as u64).await;
    assert_eq!(rollout_identity(&c, n, "app").await, rolled_before, "no pod roll for notBefore");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_of_a_missing_policy_says_so_and_expired_ones_are_deleted() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("prune");
    let n = ns.name.as_str();
    let _ctl = ControllerProcess::start(&c, n, 300);
    let revocations: Api<SessionRevocation> = c.api(n);
    revocations.create(&PostParams::default(), &revocation("lost", Some("nope"), Some("alice"), None)).await.unwrap();
    let ready = wait_for("lost PolicyNotFound", T, || async {
        let r = revocations.get("lost").await.ok()?;
        let conds = r.status?.conditions;
        cluster::condition(&conds, "Ready").filter(|c| c.reason == "PolicyNotFound").cloned()
    })
    .await;
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains(r#"AuthPolicy "nope" does not exist in namespace"#), "{}", ready.message);

    // Sessions of a 5 s policy: a revocation from a minute ago matches
    // nothing any more, and one from now matches nothing in 5 s.
    let short =
        policy_yaml("short", &["gh"]).replace("  providers: [gh]\n", "  providers: [gh]\n  session: {ttl: 5s}\n");
    assert!(short.contains("ttl: 5s"));
    c.apply(n, &short);
    let mut old = revocation("old", Some("short"), Some("alice"), None);
    let a_minute_ago = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(60);
    old.spec.before = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(a_minute_ago));
    revocations.create(&PostParams::default(), &old).await.unwrap();
    let fresh = revocation("fresh", Some("short"), None, Some("a@example.com"));
    let fresh = revocations.create(&PostParams::default(), &fresh).await.unwrap();
    wait_for("old deleted", T, || async { revocations.get_opt("old").await.ok()?.is_none().then_some(()) }).await;
    let created_at = fresh.metadata.creation_timestamp.unwrap().0.as_second();
    let expires = wait_for("fresh expiresAt = creation + 5 s", T, || async {
        let at = revocations.get_opt("fresh").await.ok()??.status?.expires_at?;
        (at.0.as_second() - created_at == 5).then_some(at)
    })
    .await;
    // Deleted at its expiry by the requeue, not by a resync (300 s here).
    let deleted = wait_for("fresh deleted at expiresAt", Duration::from_secs(20), || async {
        revocations.get_opt("fresh").await.ok()?.is_none().then(k8s_openapi::jiff::Timestamp::now)
    })
    .await;
    assert!(deleted >= expires.0, "not before expiresAt");
    assert!(revocations.get_opt("lost").await.unwrap().is_some(), "a 12 h default expiry is far away");
}

fn revoke(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("revoke")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("authgate revoke runs")
}

/// A kubeconfig holding a token of ServiceAccount `name` in `ns`.
fn service_account_kubeconfig(c: &Cluster, ns: &str, name: &str) -> PathBuf {
    let out = c.kubectl(&["create", "serviceaccount", "-n", ns, name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = c.kubectl(&["create", "token", name, "-n", ns, "--duration=1h"]);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap();
    let path = std::env::temp_dir().join(format!("authgate-{ns}-{name}.kubeconfig"));
    std::fs::write(&path, c.kubectl(&["config", "view", "--raw", "--minify"]).stdout).unwrap();
    for args in [
        vec!["config".to_owned(), "set-credentials".into(), name.into(), format!("--token={}", token.trim())],
        vec!["config".into(), "set-context".into(), "--current".into(), format!("--user={name}")],
    ] {
        let out = Command::new(&c.kubectl).arg("--kubeconfig").arg(&path).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    path
}

/// Applies the chart's RBAC (as RBAC mode does), for its aggregated role.
fn chart_rbac(c: &Cluster) {
    let helm = std::env::var("AUTHGATE_HELM").unwrap_or_else(|_| "helm".into());
    let chart = repo("charts/authgate");
    let rendered = Command::new(&helm)
        .args(["template", "authgate", &chart.to_string_lossy(), "--namespace", cluster::CHART_NAMESPACE])
        .args(["--show-only", "templates/rbac.yaml"])
        .output()
        .unwrap_or_else(|e| panic!("needs helm ({helm}): {e}"));
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    // Its namespaced objects (the leader-election Role) need their namespace.
    let _ = c.kubectl(&["create", "namespace", cluster::CHART_NAMESPACE]);
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &String::from_utf8_lossy(&rendered.stdout));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn authgate_revoke_creates_a_revocation_with_an_editors_kubeconfig_and_says_what_is_wrong() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("cli");
    let n = ns.name.as_str();
    c.apply(n, &policy_yaml("app", &["gh"]));
    let editor = service_account_kubeconfig(&c, n, "editor");

    // No permission yet: said, not hidden.
    let out = revoke(&editor, &["-n", n, "--user", "alice"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no permission to create sessionrevocations"), "{err}");

    // The chart's role for people: aggregated into admin and edit (the test
    // control plane runs no aggregation controller, so it is bound directly).
    chart_rbac(&c);
    let role = c.kubectl(&["get", "clusterrole", "authgate-session-revoker", "-o", "json"]);
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    let role: serde_json::Value = serde_json::from_slice(&role.stdout).unwrap();
    for label in ["rbac.authorization.k8s.io/aggregate-to-admin", "rbac.authorization.k8s.io/aggregate-to-edit"] {
        assert_eq!(role["metadata"]["labels"][label], "true", "{label}");
    }
    let sa = format!("system:serviceaccount:{n}:editor");
    let binding = ["create", "rolebinding", "editor", "-n", n, "--clusterrole=authgate-session-revoker"];
    let out = c.kubectl(&[&binding[..], &[&format!("--user={sa}")]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the binding takes effect", T, || async {
        let out = c.kubectl(&["auth", "can-i", "create", "sessionrevocations.authgate.dev", "-n", n, "--as", &sa]);
        (String::from_utf8_lossy(&out.stdout).trim() == "yes").then_some(())
    })
    .await;

    let out = revoke(&editor, &["-n", n, "--policy", "app", "--user", "alice", "--before", "2026-05-01T12:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(name.starts_with("revoke-"), "{name}");
    let created = c.api::<SessionRevocation>(n).get(&name).await.unwrap();
    assert_eq!(created.spec.policy.as_deref(), Some("app"));
    assert_eq!(created.spec.user.as_deref(), Some("alice"));
    assert_eq!(created.spec.before.unwrap().0.as_second(), 1_777_636_800);

    let out = revoke(&editor, &["-n", n, "--email", "bob@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let created = c.api::<SessionRevocation>(n).get(&name).await.unwrap();
    assert_eq!((created.spec.policy, created.spec.email.as_deref()), (None, Some("bob@example.com")));
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    assert!((now - 5..=now + 1).contains(&created.spec.before.unwrap().0.as_second()), "before defaults to now");

    let out = revoke(&editor, &["-n", n, "--policy", "nope", "--user", "alice"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!(r#"AuthPolicy "nope" not found in namespace "{n}""#)), "{err}");
    // The role does not change policies: --all says so.
    let out = revoke(&editor, &["-n", n, "--policy", "app", "--all"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no permission to patch authpolicies"), "{err}");
    let help = revoke(&editor, &["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("GitOps tools"));
}

#[tokio::test(flavor = "multi_thread")]
async fn more_revocations_than_a_config_carries_keep_the_newest_and_say_so() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("cap");
    let n = ns.name.as_str();
    let (_ctl, _aps) = ready_app(&c, n).await;
    let cap = authgate::contract::session::MAX_REVOCATIONS;
    let revocations: Api<SessionRevocation> = c.api(n);
    let now = k8s_openapi::jiff::Timestamp::now();
    // u0 is the newest, u{cap} the oldest: the one left out.
    let creates = (0..=cap).map(|i| {
        let mut r = revocation(&format!("r{i:03}"), Some("app"), Some(&format!("u{i}")), None);
        let before = now - k8s_openapi::jiff::SignedDuration::from_secs(i as i64 + 1);
        r.spec.before = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(before));
        let api = revocations.clone();
        async move { api.create(&PostParams::default(), &r).await.unwrap() }
    });
    futures::future::join_all(creates).await;
    until_config(&c, n, "app", "the newest revocations", |cfg| {
        let users = revoked_users(cfg);
        users.len() == cap && users[0] == "u0" && users[cap - 1] == format!("u{}", cap - 1)
    })
    .await;
    wait_for("a RevocationsCapped Event", T, || async {
        let out = c.kubectl(&["get", "events.events.k8s.io", "-n", n, "-o", "json"]);
        let events: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        events["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "RevocationsCapped" && e["regarding"]["name"] == "app")
            .and_then(|e| e["note"].as_str().map(str::to_owned))
    })
    .await
    .contains("1 older ones are NOT enforced")
    .then_some(())
    .expect("the Event says how many are not enforced");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_policy_still_gets_its_revocations_into_the_last_good_config() {
    let Some(c) = connect().await else { return };
    revocations_served(&c);
    let ns = c.namespace("blocked");
    let n = ns.name.as_str();
    let (_ctl, aps) = ready_app(&c, n).await;
    let good = config(&c, n, "app").await;
    let rolled_before = rollout_identity(&c, n, "app").await;
    let out = c.kubectl(&["patch", "-n", n, "ap/app", "--type=merge", "-p", r#"{"spec":{"providers":["nope"]}}"#]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("ProviderNotFound", T, || async {
        cluster::has(cluster::policy_condition(&aps, "app", "Ready").await, "False", "ProviderNotFound")
    })
    .await;

    let revocations: Api<SessionRevocation> = c.api(n);
    revocations.create(&PostParams::default(), &revocation("alice", None, Some("alice"), None)).await.unwrap();
    until_config(&c, n, "app", "alice's revocation", |cfg| revoked_users(cfg) == ["alice"]).await;
    let out = c.kubectl(&[
        "patch",
        "-n",
        n,
        "ap/app",
        "--type=merge",
        "-p",
        r#"{"spec":{"session":{"notBefore":"2026-01-02T03:04:05Z"}}}"#,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until_config(&c, n, "app", "notBefore", |cfg| cfg.session.not_before == 1_767_323_045).await;
    // Everything else is the last good configuration, keys included.
    let mut after = config(&c, n, "app").await;
    assert_eq!(
        after.session.keys.iter().map(|k| k.expose().to_owned()).collect::<Vec<_>>(),
        good.session.keys.iter().map(|k| k.expose().to_owned()).collect::<Vec<_>>()
    );
    after.session.revocations.clear();
    after.session.not_before = 0;
    assert_eq!(after, good, "only the revocations and notBefore changed");
    assert_eq!(rollout_identity(&c, n, "app").await, rolled_before);
}
