//! The AuthPolicy reconcile against a mock apiserver
//! ([`crate::controller::fixtures`]): which requests it sends, in which
//! order and with what in them. The real-apiserver suite in
//! `tests/controller.rs` covers the same reconciler end to end; these pin
//! down the write discipline, which a real cluster would forgive.

use std::sync::Arc;

use http::StatusCode;

use super::reconcile;
use crate::api::{AuthPolicy, AuthPolicyStatus};
use crate::controller::fixtures::objects::{self, POLICY_GENERATION};
use crate::controller::fixtures::{
    ApiServerVerifier, Cluster, Received, conditions_of, message_of, prime_client_secret, reconcile_against,
};

/// Where the policy's status is patched.
pub(super) const STATUS: &str = "/apis/authgate.dev/v1alpha1/namespaces/team-a/authpolicies/grafana/status";

/// Answers a status patch as the apiserver does, with `policy` carrying the
/// patched status, and returns that status.
pub(super) fn answer(got: Received, policy: &AuthPolicy) -> serde_json::Value {
    let status = got.body["status"].clone();
    let mut patched = policy.clone();
    patched.status = Some(serde_json::from_value::<AuthPolicyStatus>(status.clone()).expect("an AuthPolicyStatus"));
    got.respond(StatusCode::OK, &patched);
    status
}

/// `(type, status, reason)` triples, owned, for comparing with [`conditions_of`].
pub(super) fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected.iter().map(|(t, s, r)| ((*t).into(), (*s).into(), (*r).into())).collect()
}

#[tokio::test]
async fn steady_state_reconcile_sends_no_request() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let policy = Arc::new(objects::policy());
    reconcile_against(api.assert_no_more_requests(), reconcile(policy, ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn stale_observed_generation_is_one_status_patch() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    policy.status = Some(objects::ready_policy_status(POLICY_GENERATION - 1));
    let sent = policy.clone();
    let script = async move {
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        let expected = serde_json::to_value(objects::ready_policy_status(POLICY_GENERATION)).expect("serializes");
        assert_eq!(status, expected, "observedGeneration moves on and nothing else changes");
        // Ready neither flipped nor changed reason: no Event.
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn stale_condition_message_is_one_status_patch() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    let mut stale = objects::ready_policy_status(POLICY_GENERATION);
    stale.conditions[2].message = "written by an older controller".into();
    policy.status = Some(stale);
    let sent = policy.clone();
    let script = async move {
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        let expected = serde_json::to_value(objects::ready_policy_status(POLICY_GENERATION)).expect("serializes");
        assert_eq!(status, expected, "the message is corrected and lastTransitionTime kept");
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

/// A script for a policy that cannot be applied: one status patch with
/// `expected` conditions and a Ready message containing `why`, one Warning
/// Event with the Ready reason, and no other request: no read or write of
/// the Secret, Deployment or Service.
pub(super) async fn reports_only(
    mut api: ApiServerVerifier,
    policy: AuthPolicy,
    expected: Vec<(String, String, String)>,
    why: String,
) {
    let status = answer(api.expect_status_patch(STATUS).await, &policy);
    assert_eq!(status["observedGeneration"], policy.metadata.generation.expect("set"));
    assert_eq!(conditions_of(&status), expected);
    let ready = message_of(&status, "Ready");
    assert!(ready.contains(&why), "Ready message {ready:?} lacks {why:?}");
    assert!(ready.ends_with("the last good gateway configuration keeps serving"), "{ready:?}");
    let reason = expected.iter().find(|(t, ..)| t == "Ready").map(|(.., r)| r.clone()).expect("a Ready condition");
    api.expect_event("Warning", &reason, "AuthPolicy", objects::POLICY).await;
    api.assert_no_more_requests().await;
}

#[tokio::test]
async fn invalid_access_rule_leaves_children_and_reports_in_status() {
    // Not primed: the rules are checked before any provider is resolved.
    let (ctx, api) = Cluster::steady().connect();
    let mut policy = objects::policy();
    policy.spec.access.allow.allowed_emails = vec!["not-an-email".into()];
    policy.metadata.generation = Some(POLICY_GENERATION + 1);
    let expected =
        triples(&[("Accepted", "False", "Invalid"), ("Ready", "False", "Invalid"), ("Stalled", "True", "Invalid")]);
    let why = r#"allowedEmails entry "not-an-email" is not an email address"#.to_owned();
    let script = reports_only(api, policy.clone(), expected, why);
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn provider_not_ready_leaves_children_and_reports_in_status() {
    let mut cluster = Cluster::steady();
    let mut lost = objects::ready_provider_status(1);
    lost.conditions[2] = objects::condition("Ready", false, "SecretNotFound", "Secret gone", 1);
    cluster.providers[0].status = Some(lost);
    let (ctx, api) = cluster.connect();
    let policy = objects::policy();
    let expected = triples(&[
        ("Accepted", "True", "Valid"),
        ("ResolvedRefs", "False", "ProviderNotReady"),
        ("Ready", "False", "ProviderNotReady"),
        ("Reconciling", "True", "ProviderNotReady"),
    ]);
    let why = r#"IdentityProvider "corp" is not Ready (SecretNotFound: Secret gone)"#.to_owned();
    let script = reports_only(api, policy.clone(), expected, why);
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn missing_provider_leaves_children_and_reports_in_status() {
    let mut cluster = Cluster::steady();
    cluster.providers.clear();
    let (ctx, api) = cluster.connect();
    let policy = objects::policy();
    let expected = triples(&[
        ("Accepted", "True", "Valid"),
        ("ResolvedRefs", "False", "ProviderNotFound"),
        ("Ready", "False", "ProviderNotFound"),
        ("Reconciling", "True", "ProviderNotFound"),
    ]);
    let why = r#"IdentityProvider "corp" does not exist in namespace "team-a""#.to_owned();
    let script = reports_only(api, policy.clone(), expected, why);
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}

#[tokio::test]
async fn a_foreign_ingress_is_read_never_written_and_reported() {
    let (ctx, mut api) = Cluster::steady().connect();
    prime_client_secret(&ctx, &mut api).await;
    let mut policy = objects::policy();
    policy.spec.expose = Some(crate::api::Expose { ingress: Some(Default::default()), http_route: None });
    policy.metadata.generation = Some(POLICY_GENERATION + 1);
    let sent = policy.clone();
    let script = async move {
        // Not in the label-selected cache: read live, found to be someone else's.
        let got = api.expect_get("/apis/networking.k8s.io/v1/namespaces/team-a/ingresses/grafana-gateway").await;
        let mut foreign = k8s_openapi::api::networking::v1::Ingress::default();
        foreign.metadata.name = Some("grafana-gateway".into());
        foreign.metadata.namespace = Some("team-a".into());
        got.respond(StatusCode::OK, &foreign);
        let status = answer(api.expect_status_patch(STATUS).await, &sent);
        assert_eq!(
            conditions_of(&status),
            triples(&[
                ("Accepted", "False", "RouteConflict"),
                ("Ready", "False", "RouteConflict"),
                ("Stalled", "True", "RouteConflict"),
            ])
        );
        let accepted = message_of(&status, "Accepted");
        assert!(accepted.contains("Ingress team-a/grafana-gateway already exists"), "{accepted}");
        assert!(message_of(&status, "Ready").ends_with("the gateway itself is up to date"));
        api.expect_event("Warning", "RouteConflict", "AuthPolicy", objects::POLICY).await;
        // No patch or delete of the Ingress, and the other children were current.
        api.assert_no_more_requests().await;
    };
    reconcile_against(script, reconcile(Arc::new(policy), ctx)).await.expect("reconcile succeeds");
}
