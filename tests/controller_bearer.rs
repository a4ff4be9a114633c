//! Bearer JWTs configured by the controller on the real control plane: a
//! policy trusting the cluster's ServiceAccount issuer (`kubernetes: {}`)
//! gets the apiserver's keys embedded in its gateway.yaml; the gateway runs
//! from exactly that file, and a TokenRequest token with the policy's
//! audience reaches the upstream, while one for another audience does not.

mod common;

use std::time::Duration;

use authgate::api::AuthPolicy;
use common::cluster::{ControllerProcess, cond_state, connect, wait_for};
use common::echo::{header, report};
use common::{Echo, Gateway, Op, OpSettings, op};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use reqwest::StatusCode;

const AUDIENCE: &str = "urn:authgate:e2e-api";

#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_token_reaches_the_upstream_through_the_kubernetes_issuer() {
    let Some(c) = connect().await else { return };
    let gw_port = common::free_port();
    let redirect = format!("http://127.0.0.1:{gw_port}/oauth2/callback");
    let settings = OpSettings {
        clients: vec![op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&redirect])],
        ..OpSettings::default()
    };
    let Some(op) = Op::start(settings).await else { return };
    let echo = Echo::start().await;
    let ns = c.namespace("bearer");
    c.apply(
        &ns.name,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: corp}}
stringData: {{client-secret: {secret}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: deployer}}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {{name: corp}}
spec:
  type: oidc
  clientId: {id}
  clientSecretRef: {{name: corp, key: client-secret}}
  issuerUrl: {issuer}
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: app}}
spec:
  upstream: {{url: "{upstream}"}}
  externalUrl: http://127.0.0.1:{gw_port}
  providers: [corp]
  bearer:
    issuers:
      - kubernetes: {{}}
        audiences: [{AUDIENCE}]
"#,
            secret = common::CLIENT_SECRET,
            id = common::CLIENT_ID,
            issuer = op.issuer_str,
            upstream = echo.url(),
        ),
    );
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    let ready = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for("policy Ready", Duration::from_secs(180), || async {
            let p = aps.get_opt("app").await.ok()??;
            (cond_state(&p.status?.conditions, "Ready")? == ("True".into(), "Available".into())).then_some(())
        }),
    )
    .await;
    assert!(ready.is_ok(), "policy not Ready in 120s:\n{}", c.describe(&ns.name));

    let secret = c.api::<Secret>(&ns.name).get("app-auth-credentials").await.unwrap();
    let yaml = secret.data.unwrap()["gateway.yaml"].0.clone();
    let config = authgate::gateway::GatewayConfig::from_yaml(std::str::from_utf8(&yaml).unwrap()).unwrap();
    let bearer = &config.machine.bearer;
    assert_eq!(bearer.len(), 1);
    assert_eq!(bearer[0].name, "kubernetes");
    assert!(bearer[0].jwks.as_deref().is_some_and(|j| j.contains("\"keys\"")), "the apiserver's JWKS is embedded");
    assert!(bearer[0].jwks_url.is_none(), "the gateway fetches nothing from the apiserver");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let gateway = Gateway::start_from_file(&path, gw_port, &[]).await;

    let token = |audience: &str| {
        let out = c.kubectl(&["create", "token", "deployer", "-n", &ns.name, "--audience", audience]);
        assert!(out.status.success(), "kubectl create token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let http = reqwest::Client::new();
    let r = http.get(gateway.url("/deploy")).bearer_auth(token(AUDIENCE)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = report(&r.text().await.unwrap());
    let user = format!("system:serviceaccount:{}:deployer", ns.name);
    assert_eq!(header(&seen, "x-auth-request-user").as_deref(), Some(user.as_str()));

    let hits = echo.hits();
    let r = http.get(gateway.url("/deploy")).bearer_auth(token("urn:other")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "another audience");
    assert_eq!(echo.hits(), hits);
}

/// `provider: corp` reuses the IdentityProvider's discovered issuer and
/// keys URL with its client id as the login client; an `issuerUrl` whose
/// discovery cannot be fetched blocks the policy with a reason that says
/// so, and is retried (not terminal).
#[tokio::test(flavor = "multi_thread")]
async fn provider_issuers_are_rendered_and_unreachable_issuer_urls_block() {
    let Some(c) = connect().await else { return };
    let Some(op) = Op::start(OpSettings::default()).await else { return };
    let ns = c.namespace("bearer-idp");
    let dead = format!("http://127.0.0.1:{}/nobody", common::free_port());
    c.apply(
        &ns.name,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: corp}}
stringData: {{client-secret: {secret}}}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {{name: corp}}
spec:
  type: oidc
  clientId: {id}
  clientSecretRef: {{name: corp, key: client-secret}}
  issuerUrl: {issuer}
  claims: {{groups: roles}}
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: app}}
spec:
  upstream: {{url: "http://127.0.0.1:9/"}}
  externalUrl: http://127.0.0.1:8080
  providers: [corp]
  bearer:
    issuers:
      - provider: corp
        audiences: [urn:authgate:upstream]
        algorithms: [RS256]
        claims: {{username: client_id}}
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: dead}}
spec:
  upstream: {{url: "http://127.0.0.1:9/"}}
  externalUrl: http://127.0.0.1:8081
  providers: [corp]
  bearer:
    issuers:
      - issuerUrl: {dead}
        audiences: [urn:authgate:upstream]
"#,
            secret = common::CLIENT_SECRET,
            id = common::CLIENT_ID,
            issuer = op.issuer_str,
        ),
    );
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let config = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for("gateway.yaml with a bearer issuer", Duration::from_secs(180), || async {
            common::cluster::gateway_config(&c, &ns.name, "app").await.filter(|g| !g.machine.bearer.is_empty())
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("no bearer issuer rendered:\n{}", c.describe(&ns.name)));
    let issuer = &config.machine.bearer[0];
    assert_eq!(issuer.name, "corp", "named after the provider, so its filters apply");
    assert_eq!(issuer.issuer, op.issuer_str);
    assert_eq!(issuer.jwks_url.as_ref().map(|u| u.as_str()), Some(op.endpoint("jwks").as_str()));
    assert_eq!(issuer.login_client_ids, vec![common::CLIENT_ID.to_owned()]);
    assert_eq!(issuer.claims.username, "client_id", "the issuer's own claims win");
    assert_eq!(issuer.claims.groups, "roles", "the provider's mapping fills the rest");
    assert_eq!(issuer.audiences, vec!["urn:authgate:upstream".to_owned()]);

    let aps: Api<AuthPolicy> = c.api(&ns.name);
    let blocked = tokio::time::timeout(
        Duration::from_secs(60),
        wait_for("dead policy blocked", Duration::from_secs(90), || async {
            let cond = common::cluster::policy_condition(&aps, "dead", "ResolvedRefs").await?;
            (cond.status == "False" && cond.reason == "BearerIssuerUnavailable").then_some(cond)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("dead issuer not reported:\n{}", c.describe(&ns.name)));
    assert!(blocked.message.contains("spec.bearer.issuers[0]"), "{}", blocked.message);
    assert!(blocked.message.contains("/.well-known/openid-configuration"), "{}", blocked.message);
}
