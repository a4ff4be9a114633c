//! Routes' Secrets and CA bundles on the real control plane (started by
//! `make test`): what the controller renders into `gateway.yaml`, what it
//! keeps when a reference breaks, and an IdentityProvider whose discovery
//! is served by a private CA.

mod common;

use std::time::Duration;

use authgate::api::{AuthPolicy, IdentityProvider};
use common::cluster::{
    self, ControllerProcess, connect, gateway_config, github_provider_yaml, has, policy_condition, policy_yaml,
    provider_condition, secret_yaml, wait_for,
};
use common::pki::TestCa;
use common::tls_proxy::TlsProxy;
use common::{Op, OpSettings};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

const T: Duration = Duration::from_secs(90);

/// Policy `name` behind provider `gh`, with a route `/api` to Service `api`
/// that sends `X-Api-Key: Key <token of Secret secret>`.
fn routed_policy(name: &str, secret: &str) -> String {
    format!(
        r#"{}  routes:
  - pathPrefix: /api
    upstream: {{service: {{name: api, port: 8080}}, timeout: 15s}}
    headers:
    - name: X-Api-Key
      prefix: "Key "
      valueFrom: {{secretKeyRef: {{name: {secret}, key: token}}}}
"#,
        policy_yaml(name, &["gh"])
    )
}

/// The route's injected header value in the policy's current `gateway.yaml`.
async fn injected(c: &cluster::Cluster, ns: &str) -> Option<String> {
    let config = gateway_config(c, ns, "app").await?;
    Some(config.routes.first()?.headers.first()?.value.expose().to_owned())
}

async fn gateway_objects(c: &cluster::Cluster, ns: &str) -> (Secret, Deployment) {
    let secret = c.api::<Secret>(ns).get("app-auth-credentials").await.expect("the gateway's Secret");
    let deployment = c.api::<Deployment>(ns).get("app-gateway").await.expect("the gateway's Deployment");
    (secret, deployment)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_route_secret_keeps_the_last_good_gateway_byte_identical_and_says_why() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("routes");
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "gh-client-secret"));
    c.apply(&ns.name, &secret_yaml("api-keys", "token", "first-api-key"));
    c.apply(&ns.name, &routed_policy("app", "api-keys"));
    wait_for("policy Ready", T, || async { has(policy_condition(&aps, "app", "Ready").await, "True", "Available") })
        .await;
    let config = gateway_config(&c, &ns.name, "app").await.expect("gateway.yaml");
    assert_eq!(config.routes.len(), 1, "{:?}", config.routes);
    let route = &config.routes[0];
    assert_eq!(
        (route.path_prefix.as_str(), route.upstream.as_str()),
        ("/api", &*format!("http://api.{}.svc:8080/", ns.name))
    );
    assert_eq!(route.timeout_seconds, Some(15));
    assert_eq!(route.headers[0].name, "X-Api-Key");
    assert_eq!(route.headers[0].value.expose(), "Key first-api-key");
    let (secret, deployment) = gateway_objects(&c, &ns.name).await;

    // The route now names a Secret that does not exist.
    c.apply(&ns.name, &routed_policy("app", "api-keys-next"));
    wait_for("SecretNotFound", T, || async {
        has(policy_condition(&aps, "app", "ResolvedRefs").await, "False", "SecretNotFound")
    })
    .await;
    let ready = policy_condition(&aps, "app", "Ready").await.expect("Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "SecretNotFound"));
    assert_eq!(
        ready.message,
        r#"routes["/api"].headers["X-Api-Key"]: Secret "api-keys-next" not found; the last good gateway configuration keeps serving"#
    );
    // Several more reconciles (a missing reference is retried every 5 s) change nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (secret_after, deployment_after) = gateway_objects(&c, &ns.name).await;
    assert_eq!(secret_after.resource_version(), secret.resource_version(), "the gateway's Secret was not written");
    assert_eq!(secret_after.data, secret.data, "byte-identical");
    assert_eq!(deployment_after.resource_version(), deployment.resource_version(), "the Deployment was not written");
    assert_eq!(deployment_after.spec, deployment.spec);
    // Said in status and as an Event, without the value.
    let events = c.kubectl(&["get", "events.events.k8s.io", "-n", &ns.name, "-o", "json"]);
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(events.contains("SecretNotFound") && events.contains(r#"\"api-keys-next\" not found"#), "{events}");
    let status = c.kubectl(&["get", "ap", "app", "-n", &ns.name, "-o", "yaml"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(!status.contains("first-api-key") && !events.contains("first-api-key"), "no value leaks");

    // Creating the Secret heals it.
    c.apply(&ns.name, &secret_yaml("api-keys-next", "token", "second-api-key"));
    wait_for("the new value rendered", T, || async {
        (injected(&c, &ns.name).await? == "Key second-api-key").then_some(())
    })
    .await;
    wait_for("Ready again", T, || async { has(policy_condition(&aps, "app", "Ready").await, "True", "Available") })
        .await;
    assert!(has(policy_condition(&aps, "app", "ResolvedRefs").await, "True", "Resolved").is_some());
    // Running gateways reload the new value: the pods do not roll.
    let (_, after) = gateway_objects(&c, &ns.name).await;
    let hash = |d: &Deployment| d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.clone();
    assert_eq!(hash(&after), hash(&deployment), "no pod roll for a reloadable change");

    // A changed value reaches the gateway at once: the Secret's watch wakes
    // exactly this policy (no resync for 300 s, no retry while healthy).
    c.apply(&ns.name, &secret_yaml("api-keys-next", "token", "third-api-key"));
    wait_for("the changed value rendered", Duration::from_secs(20), || async {
        (injected(&c, &ns.name).await? == "Key third-api-key").then_some(())
    })
    .await;
}

/// A client Secret and an oidc IdentityProvider `corp` at `issuer`,
/// trusting the ConfigMap `ca` when it is given.
fn oidc_provider_yaml(issuer: &str, ca: Option<&str>) -> String {
    let bundle =
        ca.map(|n| format!("\n  caBundle: {{configMapKeyRef: {{name: {n}, key: ca.crt}}}}")).unwrap_or_default();
    format!(
        r#"{}---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {{name: corp}}
spec:
  type: oidc
  clientId: authgate
  clientSecretRef: {{name: corp-oauth, key: client-secret}}
  issuerUrl: {issuer}{bundle}
"#,
        secret_yaml("corp-oauth", "client-secret", "corp-client-secret")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_provider_behind_a_private_ca_is_ready_with_its_bundle_and_only_then() {
    let Some(c) = connect().await else { return };
    let Some(op) = Op::start(OpSettings::default()).await else { return };
    let ca = TestCa::new("authgate test CA");
    let proxy = TlsProxy::start(&ca.server(&["localhost"]), "localhost", &op.issuer).await;
    let issuer = proxy.origin.clone();
    let ns = c.namespace("private-ca");
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let idps: Api<IdentityProvider> = c.api(&ns.name);

    // Without the bundle the OP's certificate is not trusted.
    c.apply(&ns.name, &oidc_provider_yaml(&issuer, None));
    wait_for("DiscoveryFailed", T, || async {
        has(provider_condition(&idps, "corp", "ResolvedRefs").await, "False", "DiscoveryFailed")
    })
    .await;
    let ready = provider_condition(&idps, "corp", "Ready").await.expect("Ready");
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains(&format!("OpenID discovery at {issuer}/.well-known/openid-configuration failed"))
            && ready.message.contains("certificate"),
        "the reason names the URL and the certificate: {}",
        ready.message
    );

    // A bundle that is not there yet is said so.
    c.apply(&ns.name, &oidc_provider_yaml(&issuer, Some("corp-ca")));
    wait_for("ConfigMapNotFound", T, || async {
        has(provider_condition(&idps, "corp", "ResolvedRefs").await, "False", "ConfigMapNotFound")
    })
    .await;
    let ready = provider_condition(&idps, "corp", "Ready").await.expect("Ready");
    assert_eq!(ready.message, r#"caBundle: ConfigMap "corp-ca" not found"#);

    // Creating it wakes the provider (its own retry is 30 s away).
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: corp-ca}}\ndata:\n  ca.crt: |\n{}",
        ca.cert_pem.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    c.apply(&ns.name, &config_map);
    wait_for("Ready with the bundle", Duration::from_secs(20), || async {
        has(provider_condition(&idps, "corp", "Ready").await, "True", "Ready")
    })
    .await;
    let endpoints = idps.get("corp").await.unwrap().status.unwrap().endpoints.expect("endpoints");
    assert_eq!(endpoints.issuer.as_deref(), Some(issuer.as_str()));
    assert!(endpoints.token_url.starts_with(&format!("{issuer}/")), "{}", endpoints.token_url);
    assert!(proxy.hits.load(std::sync::atomic::Ordering::Relaxed) > 0, "discovery went through the TLS proxy");

    // A policy using the provider hands the gateway the same bundle.
    c.apply(&ns.name, &policy_yaml("app", &["corp"]));
    let config = wait_for("gateway.yaml", T, || gateway_config(&c, &ns.name, "app")).await;
    assert_eq!(config.providers[0].name, "corp");
    assert_eq!(config.providers[0].ca_pem.as_deref().map(str::trim_end), Some(ca.cert_pem.trim_end()));
    assert_eq!(config.providers[0].token_url.as_str(), endpoints.token_url);
}
