//! `session.store: Redis` through the reconcile, against a mock apiserver:
//! the password Secret is read and rendered into `gateway.yaml`; without
//! it nothing but status is written, naming the field.

use std::sync::Arc;

use base64::Engine;
use http::{Method, StatusCode};

use super::super::reconcile;
use super::super::tests::{STATUS, answer, reports_only, triples};
use crate::api::AuthPolicy;
use crate::contract::config::GatewayConfig;
use crate::contract::session::StoreConfig;
use crate::controller::fixtures::objects::{self, NS, POLICY_GENERATION};
use crate::controller::fixtures::{Cluster, conditions_of, prime_client_secret, reconcile_against};

const CREDENTIALS: &str = "/api/v1/namespaces/team-a/secrets/grafana-auth-credentials";
const PASSWORD: &str = "redis-pw-not-for-logs";

fn redis_policy() -> AuthPolicy {
    let mut p = objects::policy();
    p.spec.session = serde_json::from_value(serde_json::json!({
        "store": "Redis",
        "redis": {
            "address": "redis.cache.svc:6379",
            "username": "gateway",
            "database": 2,
            "passwordSecretRef": {"name": "redis-auth", "key": "password"},
        },
    }))
    .expect("valid session settings");
    p.metadata.generation = Some(POLICY_GENERATION + 1);
    p
}

#[tokio::test]
async fn a_redis_store_is_rendered_with_its_password_resolved() {
    let steady = Cluster::steady();
    let mut cluster = Cluster::steady();
    let auth = objects::secret("redis-auth", "51", &[("password", &format!("{PASSWORD}\n"))]);
    cluster.secret_versions.push(objects::secret_meta(&auth));
    let (ctx, mut api) = cluster.connect();
    prime_client_secret(&ctx, &mut api).await;
    let policy = redis_policy();
    let sent = policy.clone();
    let script = async move {
        api.expect_get(&format!("/api/v1/namespaces/{NS}/secrets/redis-auth")).await.respond(StatusCode::OK, &auth);
        api.expect_get(CREDENTIALS).await.respond(StatusCode::OK, &steady.secrets[0]);
        let got = api.next().await;
        assert_eq!((got.method.clone(), got.path.as_str()), (Method::PATCH, CREDENTIALS), "the Secret is applied");
        let encoded = got.body["data"]["gateway.yaml"].as_str().expect("gateway.yaml").to_owned();
        let echo = got.body.clone();
        got.respond(StatusCode::OK, &echo);
        let yaml = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
        let config = GatewayConfig::from_yaml(std::str::from_utf8(&yaml).expect("UTF-8")).expect("valid");
        let StoreConfig::Redis(redis) = &config.session.store else { panic!("a Redis store: {:?}", config.session) };
        assert_eq!(redis.addresses, ["redis.cache.svc:6379"]);
        assert_eq!((redis.username.as_deref(), redis.database), (Some("gateway"), 2));
        assert_eq!(redis.password.as_ref().map(|p| p.expose()), Some(PASSWORD), "newline dropped");
        assert_eq!((redis.sentinel_master.as_deref(), redis.key_prefix.as_deref()), (None, None));

        api.expect_event("Normal", "ConfigUpdated", "AuthPolicy", objects::POLICY).await;
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        assert_eq!(
            conditions_of(&status),
            triples(&[
                ("Accepted", "True", "Valid"),
                ("ResolvedRefs", "True", "Resolved"),
                ("Ready", "True", "Available")
            ])
        );
        assert!(!status.to_string().contains(PASSWORD), "no value in status");
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn a_missing_redis_password_secret_writes_nothing_and_says_which() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let policy = redis_policy();
    let expected = triples(&[
        ("Accepted", "True", "Valid"),
        ("ResolvedRefs", "False", "SecretNotFound"),
        ("Ready", "False", "SecretNotFound"),
        ("Reconciling", "True", "SecretNotFound"),
    ]);
    let why = r#"session.redis.passwordSecretRef: Secret "redis-auth" not found"#.to_owned();
    let sent = policy.clone();
    let script = async move {
        api.expect_get(&format!("/api/v1/namespaces/{NS}/secrets/redis-auth")).await.not_found();
        reports_only(api, sent, expected, why).await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}
