//! ApiTokens against the real control plane: the controller writes the
//! token into an owned Secret, only its hash reaches the policy's
//! gateway.yaml, rotation issues a new one, moving it to another policy
//! takes it out of the old one at once, and deleting the ApiToken takes it
//! out of gateway.yaml without rolling the gateway pods. Gateways run from
//! exactly those files enforce the token's scopes, its policy, its
//! revocation and, with the controller stopped, its expiry.

mod common;

use std::time::{Duration, Instant};

use authgate::api::{ApiToken, AuthPolicy};
use authgate::contract::api_token::{looks_like, sha256_hex};
use authgate::gateway::GatewayConfig;
use common::Gateway;
use common::cluster::{self, Cluster, ControllerProcess, connect, github_provider_yaml, policy_yaml, wait_for};
use common::echo::{Echo, header, report};
use common::projected::{Projected, wait_for_reloads};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use reqwest::StatusCode;

const T: Duration = Duration::from_secs(60);

fn api_token(name: &str, policy: &str) -> ApiToken {
    let spec = serde_json::from_value(serde_json::json!({
        "policy": policy, "user": "ci-bot", "groups": ["deployers"], "scopes": ["read"], "ttl": "1h"
    }))
    .unwrap();
    ApiToken::new(name, spec)
}

async fn config_hash(c: &Cluster, ns: &str, policy: &str) -> String {
    let d = c.api::<Deployment>(ns).get(&format!("{policy}-gateway")).await.unwrap();
    d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()["authgate.dev/config-hash"].clone()
}

async fn raw_gateway_yaml(c: &Cluster, ns: &str, policy: &str) -> String {
    let s = c.api::<Secret>(ns).get(&format!("{policy}-auth-credentials")).await.unwrap();
    String::from_utf8(s.data.unwrap()["gateway.yaml"].0.clone()).unwrap()
}

/// The token in Secret `<name>-token`, once it holds one.
async fn issued(c: &Cluster, ns: &str, name: &str) -> (Secret, String) {
    let secrets: Api<Secret> = c.api(ns);
    wait_for(&format!("Secret {name}-token"), T, || async {
        let s = secrets.get_opt(&format!("{name}-token")).await.ok()??;
        let token = String::from_utf8(s.data.as_ref()?.get("token")?.0.clone()).ok()?;
        Some((s, token))
    })
    .await
}

async fn hashes_in_config(c: &Cluster, ns: &str, policy: &str) -> Vec<String> {
    cluster::gateway_config(c, ns, policy)
        .await
        .map(|cfg| cfg.machine.api_tokens.iter().map(|e| e.sha256.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apitoken_is_issued_into_its_secret_its_hash_alone_reaches_its_policy_and_deletion_revokes_it() {
    let Some(c) = connect().await else { return };
    let out = c.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd/apitokens.authgate.dev"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ns = c.namespace("apitoken");
    let n = ns.name.as_str();
    let ctl = ControllerProcess::start(&c, n, 300);
    c.apply(n, &github_provider_yaml("gh", "gh-secret", "s"));
    c.apply(n, &policy_yaml("app", &["gh"]));
    c.apply(n, &policy_yaml("other", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(n);
    for p in ["app", "other"] {
        wait_for(&format!("policy {p} Ready"), Duration::from_secs(90), || async {
            cluster::has(cluster::policy_condition(&aps, p, "Ready").await, "True", "Available")
        })
        .await;
    }
    let hash_before = config_hash(&c, n, "app").await;

    let tokens: Api<ApiToken> = c.api(n);
    let created = tokens.create(&PostParams::default(), &api_token("ci", "app")).await.unwrap();
    let (secret, token) = issued(&c, n, "ci").await;
    assert!(looks_like(&token), "the Secret holds an agt_ token");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.labels().get("app.kubernetes.io/managed-by").map(String::as_str), Some("authgate"));
    let owner = &secret.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("ApiToken", Some(true)));
    assert_eq!(Some(owner.uid.clone()), created.uid());

    let hash = sha256_hex(&token);
    let ready = wait_for("ApiToken ci Ready", T, || async {
        let t = tokens.get("ci").await.ok()?;
        let conds = t.status.as_ref()?.conditions.clone();
        cluster::has(cluster::condition(&conds, "Ready").cloned(), "True", "Issued").map(|()| t)
    })
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.token_sha256.as_deref(), Some(hash.as_str()));
    assert_eq!(status.secret_name.as_deref(), Some("ci-token"));
    assert_eq!(status.expires_at.unwrap().0.as_second() - status.issued_at.unwrap().0.as_second(), 3600);

    // The controller counts its ApiTokens by state (recounted every 10 s).
    wait_for("api_tokens{state=active} 1", T, || async {
        let m = ctl.metrics_opt().await?;
        let want = [
            "authgate_controller_api_tokens{state=\"active\"} 1",
            "authgate_controller_api_tokens{state=\"expired\"} 0",
        ];
        want.iter().all(|w| m.lines().any(|l| l == *w)).then_some(())
    })
    .await;

    wait_for("the hash in app's gateway.yaml", T, || async {
        hashes_in_config(&c, n, "app").await.contains(&hash).then_some(())
    })
    .await;
    let entry = cluster::gateway_config(&c, n, "app").await.unwrap().machine.api_tokens[0].clone();
    assert_eq!((entry.name.as_str(), entry.user.as_str()), ("ci", "ci-bot"));
    assert_eq!(entry.scopes, ["read"]);
    assert!(!raw_gateway_yaml(&c, n, "app").await.contains(&token), "the token itself never reaches gateway.yaml");
    assert!(hashes_in_config(&c, n, "other").await.is_empty(), "another policy does not carry it");
    assert_eq!(config_hash(&c, n, "app").await, hash_before, "no pod roll for a new token");

    // Steady state: the Secret is not rewritten.
    let rv = secret.resource_version();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(issued(&c, n, "ci").await.0.resource_version(), rv);

    // Rotation issues a new token; the old hash leaves gateway.yaml.
    let rotate = serde_json::json!({"metadata": {"annotations": {"authgate.dev/rotate": "1"}}});
    tokens.patch("ci", &PatchParams::default(), &Patch::Merge(&rotate)).await.unwrap();
    let rotated = wait_for("a new token", T, || async {
        let (_, t) = issued(&c, n, "ci").await;
        (t != token).then_some(t)
    })
    .await;
    assert!(looks_like(&rotated));
    let new_hash = sha256_hex(&rotated);
    wait_for("only the new hash in gateway.yaml", T, || async {
        (hashes_in_config(&c, n, "app").await == [new_hash.clone()]).then_some(())
    })
    .await;

    // A token for a policy that does not exist says so, and is issued into
    // its config once the policy appears (woken by it, not by a resync).
    tokens.create(&PostParams::default(), &api_token("early", "later")).await.unwrap();
    let reason = |want: &'static str| {
        let tokens = tokens.clone();
        async move {
            let t = tokens.get("early").await.ok()?;
            let conds = t.status?.conditions;
            cluster::condition(&conds, "Ready").filter(|c| c.reason == want).cloned()
        }
    };
    let lost = wait_for("early PolicyNotFound", T, || reason("PolicyNotFound")).await;
    assert!(lost.message.contains(r#"AuthPolicy "later" does not exist"#), "{}", lost.message);
    c.apply(n, &policy_yaml("later", &["gh"]));
    wait_for("early Issued once its policy exists", T, || reason("Issued")).await;

    // Moved to policy other: it leaves app at once (the resync is 300 s
    // here), and other carries it.
    let moved = Instant::now();
    let to_other = serde_json::json!({"spec": {"policy": "other"}});
    tokens.patch("ci", &PatchParams::default(), &Patch::Merge(&to_other)).await.unwrap();
    wait_for("the hash only in other's gateway.yaml", T, || async {
        let (app, other) = (hashes_in_config(&c, n, "app").await, hashes_in_config(&c, n, "other").await);
        (app.is_empty() && other == [new_hash.clone()]).then_some(())
    })
    .await;
    assert!(moved.elapsed() < Duration::from_secs(15), "watch-driven, not a resync: {:?}", moved.elapsed());

    // Deletion takes it out, without a pod roll.
    tokens.delete("ci", &DeleteParams::default()).await.unwrap();
    wait_for("no token in gateway.yaml", T, || async {
        hashes_in_config(&c, n, "other").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(config_hash(&c, n, "app").await, hash_before, "no pod roll for a revoked token");
}

/// Two policies with scopes in front of one echo upstream, at the given
/// gateway ports.
fn scoped_policies_yaml(upstream: &str, app_port: u16, other_port: u16) -> String {
    let policy = |name: &str, port: u16| {
        format!(
            r#"apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: {name}}}
spec:
  upstream: {{url: "{upstream}"}}
  externalUrl: http://127.0.0.1:{port}
  providers: [gh]
  scopes:
    - {{name: read, methods: [GET], pathPrefixes: [/api]}}
    - {{name: admin}}
"#
        )
    };
    format!("{}---\n{}", policy("app", app_port), policy("other", other_port))
}

fn token_for(name: &str, policy: &str, ttl: &str) -> ApiToken {
    let spec = serde_json::from_value(serde_json::json!({
        "policy": policy, "user": format!("{name}-bot"), "groups": ["deployers"], "scopes": ["read"], "ttl": ttl
    }))
    .unwrap();
    ApiToken::new(name, spec)
}

/// Copies `policy`'s gateway.yaml from its Secret into `projected` when it
/// changed, as the kubelet does for a mounted Secret; returns whether it did.
async fn kubelet_sync(c: &Cluster, ns: &str, policy: &str, projected: &mut Projected, last: &mut String) -> bool {
    let now = raw_gateway_yaml(c, ns, policy).await;
    if now == *last {
        return false;
    }
    projected.write(&now);
    *last = now;
    true
}

/// A gateway run from exactly the gateway.yaml the controller wrote for `policy`.
async fn gateway_for(c: &Cluster, ns: &str, policy: &str, port: u16) -> (Gateway, Projected, String) {
    let raw = raw_gateway_yaml(c, ns, policy).await;
    let config = GatewayConfig::from_yaml(&raw).unwrap();
    let mut projected = Projected::new(&config);
    projected.write(&raw);
    let gateway = Gateway::start_from_file(&projected.path(), port, &[]).await;
    (gateway, projected, raw)
}

async fn call(gateway: &Gateway, method: reqwest::Method, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().request(method, gateway.url(path)).bearer_auth(token).send().await.unwrap()
}

/// The gateways side of ApiTokens, each run from the gateway.yaml the
/// controller wrote: a token passes inside its scopes and gets 403 outside
/// them, another policy's gateway refuses it, deleting it revokes it within
/// the stated bound (controller write + the gateway's 2 s reload) with no
/// pod roll, and its expiry is enforced by the gateway alone while the
/// controller is stopped.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_enforces_an_apitokens_scopes_policy_revocation_and_expiry() {
    let Some(c) = connect().await else { return };
    let out = c.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd/apitokens.authgate.dev"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let echo = Echo::start().await;
    let (app_port, other_port) = (common::free_port(), common::free_port());
    let ns = c.namespace("apitoken-gw");
    let n = ns.name.as_str();
    let mut ctl = ControllerProcess::start(&c, n, 300);
    c.apply(n, &github_provider_yaml("gh", "gh-secret", "s"));
    c.apply(n, &scoped_policies_yaml(echo.url().as_str(), app_port, other_port));
    let aps: Api<AuthPolicy> = c.api(n);
    for p in ["app", "other"] {
        wait_for(&format!("policy {p} Ready"), Duration::from_secs(90), || async {
            cluster::has(cluster::policy_condition(&aps, p, "Ready").await, "True", "Available")
        })
        .await;
    }
    let tokens: Api<ApiToken> = c.api(n);
    tokens.create(&PostParams::default(), &token_for("ci", "app", "1h")).await.unwrap();
    tokens.create(&PostParams::default(), &token_for("brief", "app", "40s")).await.unwrap();
    let (_, ci) = issued(&c, n, "ci").await;
    let (_, brief) = issued(&c, n, "brief").await;
    wait_for("both hashes in app's gateway.yaml", T, || async {
        let hashes = hashes_in_config(&c, n, "app").await;
        (hashes.contains(&sha256_hex(&ci)) && hashes.contains(&sha256_hex(&brief))).then_some(())
    })
    .await;
    // A scope the policy does not define is said in status.
    let mut wide = token_for("wide", "app", "1h");
    wide.spec.scopes = vec!["read".into(), "write".into()];
    tokens.create(&PostParams::default(), &wide).await.unwrap();
    let unknown = wait_for("wide UnknownScope", T, || async {
        let conds = tokens.get("wide").await.ok()?.status?.conditions;
        cluster::condition(&conds, "Ready").filter(|c| c.reason == "UnknownScope").cloned()
    })
    .await;
    assert!(unknown.message.contains(r#"["write"]"#) && unknown.message.contains("it defines read, admin"));

    let rolled_before = config_hash(&c, n, "app").await;
    let (app, mut projected, mut last) = gateway_for(&c, n, "app", app_port).await;
    let (other, _other_file, _) = gateway_for(&c, n, "other", other_port).await;

    // Inside its scope: through, as the token's identity.
    let r = call(&app, reqwest::Method::GET, "/api/items?x=1", &ci).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", app.logs());
    let seen = report(&r.text().await.unwrap());
    assert_eq!(header(&seen, "x-auth-request-user").as_deref(), Some("ci-bot"));
    assert_eq!(header(&seen, "x-auth-request-user-id").as_deref(), Some("apitoken:ci"));
    assert_eq!(header(&seen, "x-auth-request-groups").as_deref(), Some("deployers"));
    assert!(header(&seen, "authorization").is_none(), "the token does not travel upstream");
    assert_eq!(call(&app, reqwest::Method::GET, "/api", &brief).await.status(), StatusCode::OK);

    // Outside it (method, path, segment boundary, dot segments): 403, upstream untouched.
    let hits = echo.hits();
    for (method, path) in [
        (reqwest::Method::POST, "/api/items"),
        (reqwest::Method::DELETE, "/api"),
        (reqwest::Method::GET, "/admin"),
        (reqwest::Method::GET, "/apix"),
        (reqwest::Method::GET, "/api/../admin"),
        (reqwest::Method::GET, "/api/%2e%2e/admin"),
    ] {
        let r = call(&app, method.clone(), path, &ci).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("insufficient_scope"), "{method} {path}: {challenge}");
    }
    assert_eq!(echo.hits(), hits, "nothing outside the scopes reached the upstream");

    // A token of policy app is nothing to policy other.
    let r = call(&other, reqwest::Method::GET, "/api/items", &ci).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(other.metrics().await.contains("bearer_failures_total{reason=\"unknown_api_token\"} 1"));
    assert_eq!(echo.hits(), hits);

    // Deletion: the controller rewrites the Secret, the kubelet projects
    // it, the gateway reloads; the token is refused within the bound.
    let deleted = Instant::now();
    tokens.delete("ci", &DeleteParams::default()).await.unwrap();
    loop {
        kubelet_sync(&c, n, "app", &mut projected, &mut last).await;
        if call(&app, reqwest::Method::GET, "/api/items", &ci).await.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(deleted.elapsed() < Duration::from_secs(15), "still accepted 15 s after deletion:\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked_in = deleted.elapsed();
    eprintln!("delete ApiToken -> gateway refuses it (without the kubelet's sync period): {revoked_in:?}");
    assert!(revoked_in < Duration::from_secs(5), "controller write + 2 s reload, took {revoked_in:?}");
    wait_for_reloads(&app, "accepted", 1).await;
    assert_eq!(config_hash(&c, n, "app").await, rolled_before, "no pod roll for a revocation");
    assert_eq!(call(&app, reqwest::Method::GET, "/api", &brief).await.status(), StatusCode::OK, "the other stays");

    // Expiry with no controller: nobody rewrites gateway.yaml, yet the
    // gateway refuses the token once its expiresAt has passed.
    let expires_at = tokens.get("brief").await.unwrap().status.unwrap().expires_at.unwrap().0.as_second();
    ctl.kill();
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    assert!(now < expires_at, "the brief token expired before the controller was stopped; raise its ttl");
    assert_eq!(call(&app, reqwest::Method::GET, "/api", &brief).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(u64::try_from(expires_at - now).unwrap() + 1)).await;
    let hits = echo.hits();
    let r = call(&app, reqwest::Method::GET, "/api", &brief).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert!(app.metrics().await.contains("bearer_failures_total{reason=\"expired\"} 1"));
    assert_eq!(echo.hits(), hits);
    assert!(
        hashes_in_config(&c, n, "app").await.contains(&sha256_hex(&brief)),
        "the controller is stopped: the expired token is still in gateway.yaml, so the gateway refused it by itself"
    );
    assert!(!kubelet_sync(&c, n, "app", &mut projected, &mut last).await, "gateway.yaml did not change meanwhile");
}
