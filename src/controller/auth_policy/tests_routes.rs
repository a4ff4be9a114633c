//! The AuthPolicy reconcile with routes, upstream TLS and provider CA
//! bundles, against a mock apiserver ([`crate::controller::fixtures`]):
//! every referenced Secret and ConfigMap is read once and rendered into
//! `gateway.yaml`; a missing one writes nothing but status; the steady
//! state sends no request.

use std::sync::Arc;

use base64::Engine;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Secret;

use super::reconcile;
use super::tests::{STATUS, answer, reports_only, triples};
use crate::api::AuthPolicy;
use crate::contract::config::GatewayConfig;
use crate::controller::fixtures::objects::{self, NS, POLICY_GENERATION};
use crate::controller::fixtures::{
    ApiServerVerifier, Cluster, conditions_of, message_of, prime_client_secret, reconcile_against,
};
use crate::controller::refs::{self, Values};

const CREDENTIALS: &str = "/api/v1/namespaces/team-a/secrets/grafana-auth-credentials";
const CREDS: &str = "upstream-creds";
const API_KEY: &str = "k-123-not-for-logs";
const TOKEN_SECRET: &str = "cc-456-not-for-logs";

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
}

fn config_map_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/configmaps/{name}")
}

/// The Secret both routes take their credentials from (two keys, one object).
fn creds() -> Secret {
    // A trailing newline, as `kubectl create secret --from-file` leaves it: dropped.
    objects::secret(CREDS, "21", &[("api-key", &format!("{API_KEY}\n")), ("client-secret", TOKEN_SECRET)])
}

/// `grafana` with two routes: an API key header and a `client_credentials`
/// token, both from [`creds`]; changed since its status was written.
fn routed_policy() -> AuthPolicy {
    let mut p = objects::policy();
    p.spec.routes = serde_json::from_value(serde_json::json!([
        {
            "pathPrefix": "/api/github",
            "upstream": {"url": "https://api.github.com", "timeout": "10s", "connectTimeout": "2s"},
            "methods": ["GET"],
            "stripPrefix": true,
            "headers": [{"name": "X-Api-Key", "prefix": "Key ", "valueFrom": {"secretKeyRef": {"name": CREDS, "key": "api-key"}}}],
        },
        {
            "pathPrefix": "/api/metrics",
            "upstream": {"service": {"name": "prometheus", "port": 9090}},
            "tokenAuth": {
                "tokenUrl": "https://id.example.com/token", "clientId": "metrics",
                "clientSecretRef": {"name": CREDS, "key": "client-secret"},
                "scopes": ["metrics.read"], "audience": "prometheus", "params": {"tenant": "a"},
            },
        },
    ]))
    .expect("valid routes");
    p.metadata.generation = Some(POLICY_GENERATION + 1);
    p
}

fn gateway_yaml(body: &serde_json::Value) -> GatewayConfig {
    let encoded = body["data"]["gateway.yaml"].as_str().expect("gateway.yaml in the applied Secret");
    let yaml = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
    GatewayConfig::from_yaml(std::str::from_utf8(&yaml).expect("UTF-8")).expect("a valid gateway.yaml")
}

/// Scripts the rewrite of the gateway's Secret (read live, then applied)
/// and returns the `gateway.yaml` applied. The Deployment is not touched:
/// running gateways reload the file, and its pod template carries only
/// the restart fingerprint, which routes do not change.
async fn expect_rewrite(api: &mut ApiServerVerifier, steady: &Cluster) -> GatewayConfig {
    api.expect_get(CREDENTIALS).await.respond(StatusCode::OK, &steady.secrets[0]);
    let got = api.next().await;
    assert_eq!((got.method.clone(), got.path.as_str()), (Method::PATCH, CREDENTIALS), "the Secret is applied");
    let config = gateway_yaml(&got.body);
    let echo = got.body.clone();
    got.respond(StatusCode::OK, &echo);
    // Said once, as a Normal Event: no pod roll follows.
    api.expect_event("Normal", "ConfigUpdated", "AuthPolicy", objects::POLICY).await;
    config
}

/// Expected conditions of an applied, available policy.
fn available() -> Vec<(String, String, String)> {
    triples(&[("Accepted", "True", "Valid"), ("ResolvedRefs", "True", "Resolved"), ("Ready", "True", "Available")])
}

#[tokio::test]
async fn routes_are_rendered_with_their_header_and_token_secrets_resolved() {
    let steady = Cluster::steady();
    let mut cluster = Cluster::steady();
    cluster.secret_versions.push(objects::secret_meta(&creds()));
    let (ctx, mut api) = cluster.connect();
    prime_client_secret(&ctx, &mut api).await;
    let policy = routed_policy();
    let sent = policy.clone();
    let script = async move {
        // One read of the Secret, for both of its keys.
        api.expect_get(&secret_path(CREDS)).await.respond(StatusCode::OK, &creds());
        let config = expect_rewrite(&mut api, &steady).await;
        let [github, metrics] = config.routes.as_slice() else { panic!("two routes: {:?}", config.routes) };
        assert_eq!(github.upstream.as_str(), "https://api.github.com/");
        assert_eq!((github.methods.as_slice(), github.strip_prefix), (&["GET".to_owned()][..], true));
        assert_eq!((github.timeout_seconds, github.connect_timeout_seconds), (Some(10), Some(2)));
        assert_eq!(github.headers.len(), 1);
        assert_eq!(github.headers[0].name, "X-Api-Key");
        assert_eq!(github.headers[0].value.expose(), format!("Key {API_KEY}"), "prefix + value, newline dropped");
        assert_eq!(metrics.upstream.as_str(), "http://prometheus.team-a.svc:9090/");
        let token = metrics.token_auth.as_ref().expect("tokenAuth");
        assert_eq!(token.client_secret.expose(), TOKEN_SECRET);
        assert_eq!((token.client_id.as_str(), token.token_url.as_str()), ("metrics", "https://id.example.com/token"));
        assert_eq!(
            (token.scopes.as_slice(), token.audience.as_deref()),
            (&["metrics.read".to_owned()][..], Some("prometheus"))
        );
        assert_eq!(token.params.get("tenant").map(String::as_str), Some("a"));
        assert_eq!(config.providers[0].client_secret.expose(), objects::CLIENT_SECRET_VALUE);

        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        assert_eq!(conditions_of(&status), available());
        assert_eq!(status["observedGeneration"], POLICY_GENERATION + 1);
        let text = status.to_string();
        assert!(!text.contains(API_KEY) && !text.contains(TOKEN_SECRET), "no value in status: {text}");
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn steady_state_with_routes_sends_no_request() {
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).expect("a certificate").cert.pem();
    let trust = objects::config_map("trust", "41", &[("ca.crt", &ca)]);
    let mut policy = routed_policy();
    policy.metadata.generation = Some(POLICY_GENERATION);
    policy.spec.routes.push(
        serde_json::from_value(serde_json::json!({
            "pathPrefix": "/internal",
            "upstream": {"url": "https://internal.team-a.svc", "tls": {"caBundle": {"configMapKeyRef": {"name": "trust", "key": "ca.crt"}}}},
        }))
        .expect("a valid route"),
    );
    let mut values = Values::default();
    for r in refs::of_policy(&policy.spec) {
        let value = match r.key.as_str() {
            "api-key" => API_KEY,
            "ca.crt" => ca.trim_end(),
            _ => TOKEN_SECRET,
        };
        values.insert(&r, value.to_owned());
    }
    let (credentials, gateway, service) = objects::children_with(&policy, &objects::provider(), &values);
    let mut cluster = Cluster::steady();
    cluster.policies = vec![policy.clone()];
    (cluster.secrets, cluster.deployments, cluster.services) = (vec![credentials], vec![gateway], vec![service]);
    cluster.secret_versions.push(objects::secret_meta(&creds()));
    cluster.config_map_versions.push(objects::config_map_meta(&trust));
    let (ctx, mut api) = cluster.connect();
    prime_client_secret(&ctx, &mut api).await;
    // The first reconcile reads the route Secret and ConfigMap once each;
    // from then on the metadata stores vouch for the cached values.
    let wants = refs::of_policy(&policy.spec);
    let serve = async {
        api.expect_get(&secret_path(CREDS)).await.respond(StatusCode::OK, &creds());
        api.expect_get(&config_map_path("trust")).await.respond(StatusCode::OK, &trust);
    };
    let (primed, ()) = tokio::join!(ctx.caches.resolve(&ctx.client, NS, &wants), serve);
    primed.expect("the mock answers").expect("every reference resolves");
    reconcile_against(api.assert_no_more_requests(), reconcile(Arc::new(policy), ctx))
        .await
        .expect("reconcile succeeds");
}

/// A policy whose route names [`CREDS`]: the Secret as `served` (`None`:
/// absent) is read, nothing but status is written, and the status says why.
async fn route_secret_problem(served: Option<Secret>, reason: &str, why: &str) {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let policy = routed_policy();
    let expected = triples(&[
        ("Accepted", "True", "Valid"),
        ("ResolvedRefs", "False", reason),
        ("Ready", "False", reason),
        ("Reconciling", "True", reason),
    ]);
    let (sent, why) = (policy.clone(), why.to_owned());
    let script = async move {
        let got = api.expect_get(&secret_path(CREDS)).await;
        match served {
            Some(secret) => got.respond(StatusCode::OK, &secret),
            None => got.not_found(),
        }
        reports_only(api, sent, expected, why).await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn a_missing_route_secret_writes_nothing_and_says_which() {
    let why = r#"routes["/api/github"].headers["X-Api-Key"]: Secret "upstream-creds" not found"#;
    route_secret_problem(None, "SecretNotFound", why).await;
}

#[tokio::test]
async fn a_missing_key_of_a_route_secret_writes_nothing_and_says_which() {
    let partial = objects::secret(CREDS, "22", &[("client-secret", TOKEN_SECRET)]);
    let why = r#"routes["/api/github"].headers["X-Api-Key"]: Secret "upstream-creds" has no non-empty key "api-key""#;
    route_secret_problem(Some(partial), "SecretKeyNotFound", why).await;
}

#[tokio::test]
async fn a_missing_ca_config_map_writes_nothing_and_says_which() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    policy.spec.upstream = Some(
        serde_json::from_value(serde_json::json!({
            "url": "https://grafana.team-a.svc:3000",
            "tls": {"caBundle": {"configMapKeyRef": {"name": "grafana-ca", "key": "ca.crt"}}},
        }))
        .expect("a valid upstream"),
    );
    policy.metadata.generation = Some(POLICY_GENERATION + 1);
    let expected = triples(&[
        ("Accepted", "True", "Valid"),
        ("ResolvedRefs", "False", "ConfigMapNotFound"),
        ("Ready", "False", "ConfigMapNotFound"),
        ("Reconciling", "True", "ConfigMapNotFound"),
    ]);
    let why = r#"upstream.tls.caBundle: ConfigMap "grafana-ca" not found"#.to_owned();
    let sent = policy.clone();
    let script = async move {
        api.expect_get(&config_map_path("grafana-ca")).await.not_found();
        reports_only(api, sent, expected, why).await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn upstream_tls_and_a_provider_ca_bundle_are_rendered() {
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).expect("a certificate");
    let client = rcgen::generate_simple_self_signed(vec!["gateway.test".to_owned()]).expect("a certificate");
    let (ca_pem, cert_pem, key_pem) = (ca.cert.pem(), client.cert.pem(), client.signing_key.serialize_pem());
    let trust = objects::config_map("trust", "31", &[("ca.crt", &ca_pem)]);
    let mtls = objects::secret("gateway-mtls", "32", &[("tls.crt", &cert_pem), ("tls.key", &key_pem)]);
    let corp_ca = objects::config_map("corp-ca", "33", &[("bundle.pem", &ca_pem)]);

    let steady = Cluster::steady();
    let mut cluster = Cluster::steady();
    cluster.providers[0].spec.ca_bundle = Some(
        serde_json::from_value(serde_json::json!({"configMapKeyRef": {"name": "corp-ca", "key": "bundle.pem"}}))
            .expect("a valid caBundle"),
    );
    let (ctx, mut api) = cluster.connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    policy.spec.upstream = Some(
        serde_json::from_value(serde_json::json!({
            "url": "https://grafana.team-a.svc:3000",
            "connectTimeout": "3s",
            "tls": {"caBundle": {"configMapKeyRef": {"name": "trust", "key": "ca.crt"}}, "clientCertificateSecret": "gateway-mtls"},
        }))
        .expect("a valid upstream"),
    );
    policy.metadata.generation = Some(POLICY_GENERATION + 1);
    let sent = policy.clone();
    let script = async move {
        // The provider's bundle first (providers resolve first), then the policy's.
        api.expect_get(&config_map_path("corp-ca")).await.respond(StatusCode::OK, &corp_ca);
        api.expect_get(&config_map_path("trust")).await.respond(StatusCode::OK, &trust);
        // One read of the client certificate Secret for both its keys.
        api.expect_get(&secret_path("gateway-mtls")).await.respond(StatusCode::OK, &mtls);
        let config = expect_rewrite(&mut api, &steady).await;
        let tls = config.upstream_tls.as_ref().expect("upstream TLS");
        assert_eq!(tls.ca_pem.as_deref().map(str::trim_end), Some(ca_pem.trim_end()));
        assert_eq!(tls.client_cert_pem.as_deref().map(str::trim_end), Some(cert_pem.trim_end()));
        assert_eq!(tls.client_key_pem.as_ref().map(|k| k.expose().trim_end()), Some(key_pem.trim_end()));
        assert!(!tls.insecure_skip_verify);
        assert_eq!(config.timeouts.connect_seconds, 3);
        assert_eq!(config.providers[0].ca_pem.as_deref().map(str::trim_end), Some(ca_pem.trim_end()));
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        assert_eq!(conditions_of(&status), available());
        assert!(!status.to_string().contains("PRIVATE KEY"));
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn insecure_skip_verify_is_accepted_and_flagged_loudly() {
    let steady = Cluster::steady();
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    policy.spec.routes = serde_json::from_value(serde_json::json!([
        {"pathPrefix": "/legacy", "upstream": {"url": "https://legacy.team-a.svc", "tls": {"insecureSkipVerify": true}}},
    ]))
    .expect("a valid route");
    policy.metadata.generation = Some(POLICY_GENERATION + 1);
    let sent = policy.clone();
    let script = async move {
        let config = expect_rewrite(&mut api, &steady).await;
        assert!(config.routes[0].tls.as_ref().is_some_and(|t| t.insecure_skip_verify));
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        assert_eq!(
            conditions_of(&status),
            triples(&[
                ("Accepted", "True", "InsecureSkipVerify"),
                ("ResolvedRefs", "True", "Resolved"),
                ("Ready", "True", "Available"),
            ])
        );
        let accepted = message_of(&status, "Accepted");
        assert!(accepted.starts_with("WARNING: tls.insecureSkipVerify is set on routes[\"/legacy\"]"), "{accepted}");
        api.expect_event("Warning", "InsecureSkipVerify", "AuthPolicy", objects::POLICY).await;
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn token_params_that_replace_the_grant_are_invalid() {
    // Not primed: the rules are checked before anything is read.
    let (ctx, api) = Cluster::steady().connect();
    let mut policy = routed_policy();
    policy.spec.routes[1].token_auth.as_mut().expect("tokenAuth").params.insert("client_secret".into(), "x".into());
    let expected =
        triples(&[("Accepted", "False", "Invalid"), ("Ready", "False", "Invalid"), ("Stalled", "True", "Invalid")]);
    let why = r#"routes["/api/metrics"].tokenAuth.params may not set "client_secret""#.to_owned();
    let script = reports_only(api, policy.clone(), expected, why);
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}
