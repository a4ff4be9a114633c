//! ApiTokens against the real control plane: the controller writes the
//! token into an owned Secret, only its hash reaches the policy's
//! gateway.yaml, rotation issues a new one, and deleting the ApiToken takes
//! it out of gateway.yaml without rolling the gateway pods.

mod common;

use std::time::Duration;

use authgate::api::{ApiToken, AuthPolicy};
use authgate::contract::api_token::{looks_like, sha256_hex};
use common::cluster::{self, Cluster, ControllerProcess, connect, github_provider_yaml, policy_yaml, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

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
    let _ctl = ControllerProcess::start(&c, n, 300);
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

    // Deletion takes it out, without a pod roll.
    tokens.delete("ci", &DeleteParams::default()).await.unwrap();
    wait_for("no token in gateway.yaml", T, || async { hashes_in_config(&c, n, "app").await.is_empty().then_some(()) })
        .await;
    assert_eq!(config_hash(&c, n, "app").await, hash_before, "no pod roll for a revoked token");
}
