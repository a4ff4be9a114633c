//! The IdentityProvider reconcile against a mock apiserver
//! ([`crate::controller::fixtures`]). Unlike the AuthPolicy reconcile it
//! reads its client Secret from the apiserver every time; what it must not
//! do at steady state is write.

use std::sync::Arc;

use http::StatusCode;

use super::reconcile;
use crate::api::IdentityProviderStatus;
use crate::controller::fixtures::objects::{self, CLIENT_SECRET, NS};
use crate::controller::fixtures::{Cluster, conditions_of, message_of, reconcile_against};

/// Where the provider's status is patched.
const STATUS: &str = "/apis/authgate.dev/v1alpha1/namespaces/team-a/identityproviders/corp/status";

fn secret_path() -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{CLIENT_SECRET}")
}

fn cluster() -> Cluster {
    Cluster { providers: vec![objects::provider()], ..Cluster::default() }
}

#[tokio::test]
async fn steady_state_reads_the_client_secret_and_writes_nothing() {
    let (ctx, mut api) = cluster().connect();
    let script = async move {
        api.expect_get(&secret_path()).await.respond(StatusCode::OK, &objects::client_secret());
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(objects::provider()), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn missing_client_secret_is_reported_and_endpoints_kept() {
    let (ctx, mut api) = cluster().connect();
    let provider = objects::provider();
    let sent = provider.clone();
    let script = async move {
        api.expect_get(&secret_path()).await.not_found();
        let got = api.expect_status_patch(STATUS).await;
        let status = got.body["status"].clone();
        let mut patched = sent.clone();
        patched.status = Some(serde_json::from_value::<IdentityProviderStatus>(status.clone()).expect("a status"));
        got.respond(StatusCode::OK, &patched);
        let expected = [
            ("Accepted", "True", "Valid"),
            ("ResolvedRefs", "False", "SecretNotFound"),
            ("Ready", "False", "SecretNotFound"),
            ("Reconciling", "True", "SecretNotFound"),
        ]
        .map(|(t, s, r)| (t.to_owned(), s.to_owned(), r.to_owned()));
        assert_eq!(conditions_of(&status), expected);
        assert_eq!(message_of(&status, "Ready"), r#"clientSecretRef: Secret "corp-oauth" not found"#);
        // Policies keep the last resolved endpoints while the Secret is away.
        let endpoints = serde_json::to_value(objects::ready_provider_status(1).endpoints).expect("serializes");
        assert_eq!(status["endpoints"], endpoints);
        api.expect_event("Warning", "SecretNotFound", "IdentityProvider", objects::PROVIDER).await;
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(provider), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn missing_ca_bundle_is_reported_after_the_client_secret_is_read() {
    let mut provider = objects::provider();
    provider.spec.ca_bundle = Some(
        serde_json::from_value(serde_json::json!({"configMapKeyRef": {"name": "corp-ca", "key": "ca.crt"}}))
            .expect("a valid caBundle"),
    );
    let (ctx, mut api) = Cluster { providers: vec![provider.clone()], ..Cluster::default() }.connect();
    let sent = provider.clone();
    let script = async move {
        api.expect_get(&secret_path()).await.respond(StatusCode::OK, &objects::client_secret());
        api.expect_get(&format!("/api/v1/namespaces/{NS}/configmaps/corp-ca")).await.not_found();
        let got = api.expect_status_patch(STATUS).await;
        let status = got.body["status"].clone();
        let mut patched = sent.clone();
        patched.status = Some(serde_json::from_value::<IdentityProviderStatus>(status.clone()).expect("a status"));
        got.respond(StatusCode::OK, &patched);
        assert_eq!(conditions_of(&status)[1], ("ResolvedRefs".into(), "False".into(), "ConfigMapNotFound".into()));
        assert_eq!(message_of(&status, "Ready"), r#"caBundle: ConfigMap "corp-ca" not found"#);
        api.expect_event("Warning", "ConfigMapNotFound", "IdentityProvider", objects::PROVIDER).await;
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(provider), ctx)).await.expect("reconcile succeeds");
}
