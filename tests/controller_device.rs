//! `spec.deviceFlow` through the real controller and kube-apiserver: with
//! several gateway replicas on the cookie store it is refused in status
//! (`DeviceFlowNeedsSharedStore`), and once served it reaches gateway.yaml.

mod common;

use std::time::Duration;

use authgate::api::AuthPolicy;
use common::cluster::{
    ControllerProcess, connect, gateway_config, github_provider_yaml, has, policy_condition, policy_yaml, wait_for,
};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn device_flow_with_several_replicas_needs_redis_and_is_rendered_when_served() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("device-flow");
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "first-secret"));
    let policy = |replicas: u32| {
        format!("{}  deviceFlow: {{tokenTtl: 2h}}\n  gateway: {{replicas: {replicas}}}\n", policy_yaml("app", &["gh"]))
    };
    c.apply(&ns.name, &policy(3));
    let aps = c.api::<AuthPolicy>(&ns.name);
    wait_for("DeviceFlowNeedsSharedStore", T, || async {
        has(policy_condition(&aps, "app", "Accepted").await, "False", "DeviceFlowNeedsSharedStore")
    })
    .await;
    let message = policy_condition(&aps, "app", "Accepted").await.unwrap().message;
    assert!(message.contains("session.store: Redis"), "{message}");
    assert!(
        gateway_config(&c, &ns.name, "app").await.is_none_or(|g| g.machine.device_flow.is_none()),
        "nothing of the refused device flow is served"
    );

    c.apply(&ns.name, &policy(1));
    let served = wait_for("the device flow in gateway.yaml", T, || async {
        gateway_config(&c, &ns.name, "app").await?.machine.device_flow
    })
    .await;
    assert_eq!(served.token_ttl_seconds, 7200);
    wait_for("Accepted again", T, || async { has(policy_condition(&aps, "app", "Accepted").await, "True", "Valid") })
        .await;
}
