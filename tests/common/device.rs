//! Helpers of the device-flow tests: a stack with the device flow, the
//! device's requests, and a signed-in person deciding on the approval page.

use authgate::contract::machine::DeviceFlowConfig;
use authgate::gateway::GatewayConfig;
use reqwest::StatusCode;
use serde_json::Value;

use super::agent::{Reply, hidden_inputs};
use super::{Accept, Agent, Stack};

pub const CLIENT: &str = "authgate-cli";
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub fn with_device_flow(code_ttl: u64, interval: u64) -> impl FnOnce(&mut GatewayConfig) {
    move |c| {
        c.access.allowed_domains = vec!["example.com".into()];
        c.access.allowed_groups = vec!["sre".into()];
        c.machine.device_flow =
            Some(DeviceFlowConfig { token_ttl_seconds: 3600, code_ttl_seconds: code_ttl, interval_seconds: interval });
    }
}

pub async fn device_code(stack: &Stack) -> Value {
    let r = reqwest::Client::new()
        .post(stack.gateway.url("/oauth2/device/code"))
        .form(&[("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

pub async fn poll(stack: &Stack, device_code: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(stack.gateway.url("/oauth2/token"))
        .form(&[("grant_type", GRANT), ("device_code", device_code), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

pub async fn signed_in(stack: &Stack, user: &str) -> Agent {
    let mut agent = Agent::new();
    let reply = agent.sign_in(&stack.gateway, user, "/").await;
    assert!(reply.status.is_redirection(), "sign-in: {}", reply.describe());
    assert!(agent.has_session_cookie());
    agent
}

pub fn approve_url(stack: &Stack, user_code: &str) -> String {
    format!("{}?user_code={user_code}", stack.gateway.url("/oauth2/device"))
}

pub async fn post_form(agent: &mut Agent, url: &str, form: &[(String, String)]) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    agent
        .send(
            reqwest::Method::POST,
            url,
            Accept::Html,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.into_bytes()),
        )
        .await
}

/// Opens the approval page for `user_code` and submits `action`.
pub async fn decide(agent: &mut Agent, stack: &Stack, user_code: &str, action: &str) -> Reply {
    let page = agent.get(&approve_url(stack, user_code), Accept::Html).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.describe());
    assert!(page.body.contains(CLIENT) && page.body.contains("127.0.0.1"), "the page names client and IP");
    let mut form = hidden_inputs(&page.body);
    form.push(("action".into(), action.into()));
    post_form(agent, &stack.gateway.url("/oauth2/device"), &form).await
}

pub async fn metric(stack: &Stack, line: &str) -> f64 {
    stack.gateway.metrics().await.lines().find_map(|l| l.strip_prefix(line)).map_or(0.0, |v| v.trim().parse().unwrap())
}
