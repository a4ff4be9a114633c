//! The object gauges of `/metrics`, recounted from the reflector stores
//! every 10 s: objects by kind and Ready status, and ApiTokens by state
//! (what an alert on "tokens about to lapse" or "tokens never issued"
//! needs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use super::context::Context;
use super::metrics::{ApiTokenLabels, ObjectLabels};
use crate::api::ApiToken;
use crate::api::conditions::{READY, find};

/// The states `authgate_controller_api_tokens{state}` reports, every one
/// always present (0 when none).
pub const API_TOKEN_STATES: [&str; 3] = ["active", "expired", "pending"];

const KINDS: [&str; 3] = ["IdentityProvider", "AuthPolicy", "ApiToken"];

/// Recounts forever; spawned once by the controller.
pub async fn run(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        recount(&ctx, Timestamp::now());
    }
}

fn recount(ctx: &Context, now: Timestamp) {
    let mut objects: HashMap<(&'static str, &'static str), i64> = HashMap::new();
    let mut count = |kind, conditions: Option<&[Condition]>| {
        *objects.entry((kind, ready_label(conditions.and_then(|c| find(c, READY))))).or_default() += 1;
    };
    for i in ctx.providers.state() {
        count("IdentityProvider", i.status.as_ref().map(|s| s.conditions.as_slice()));
    }
    for p in ctx.policies.state() {
        count("AuthPolicy", p.status.as_ref().map(|s| s.conditions.as_slice()));
    }
    let tokens = ctx.api_tokens.state();
    let mut states: HashMap<&'static str, i64> = HashMap::new();
    for t in &tokens {
        count("ApiToken", t.status.as_ref().map(|s| s.conditions.as_slice()));
        *states.entry(api_token_state(t, now)).or_default() += 1;
    }
    for kind in KINDS {
        for ready in ["True", "False", "Unknown"] {
            let n = objects.get(&(kind, ready)).copied().unwrap_or(0);
            ctx.metrics.objects.get_or_create(&ObjectLabels { kind, ready }).set(n);
        }
    }
    for state in API_TOKEN_STATES {
        ctx.metrics.api_tokens.get_or_create(&ApiTokenLabels { state }).set(states.get(state).copied().unwrap_or(0));
    }
}

fn ready_label(c: Option<&Condition>) -> &'static str {
    match c.map(|c| c.status.as_str()) {
        Some("True") => "True",
        Some("False") => "False",
        _ => "Unknown",
    }
}

/// `expired` once `status.expiresAt` has passed (the gateway refuses it
/// from then, whether or not the controller has said so yet), `active`
/// while issued and Ready, `pending` otherwise (not issued yet, or its
/// Secret name is taken).
pub fn api_token_state(token: &ApiToken, now: Timestamp) -> &'static str {
    let Some(status) = &token.status else { return "pending" };
    if status.expires_at.as_ref().is_some_and(|at| at.0 <= now) {
        return "expired";
    }
    match find(&status.conditions, READY).map(|c| c.status.as_str()) {
        Some("True") => "active",
        _ => "pending",
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::SignedDuration;

    use super::*;
    use crate::api::ApiTokenStatus;

    fn token(status: Option<ApiTokenStatus>) -> ApiToken {
        let spec = serde_json::from_value(serde_json::json!({"policy": "app", "user": "ci", "ttl": "1h"})).unwrap();
        let mut t = ApiToken::new("ci", spec);
        t.status = status;
        t
    }

    fn ready(status: &str, expires_at: Timestamp) -> ApiTokenStatus {
        let condition = Condition {
            type_: READY.into(),
            status: status.into(),
            reason: "Issued".into(),
            message: String::new(),
            last_transition_time: Time(expires_at),
            observed_generation: None,
        };
        ApiTokenStatus { expires_at: Some(Time(expires_at)), conditions: vec![condition], ..ApiTokenStatus::default() }
    }

    #[test]
    fn states_follow_the_clock_and_the_ready_condition() {
        let now = Timestamp::now();
        let later = now + SignedDuration::from_secs(60);
        assert_eq!(api_token_state(&token(None), now), "pending");
        assert_eq!(api_token_state(&token(Some(ready("True", later))), now), "active");
        assert_eq!(api_token_state(&token(Some(ready("False", later))), now), "pending");
        // Past expiresAt it is expired even while Ready still says True.
        assert_eq!(api_token_state(&token(Some(ready("True", now))), now), "expired");
        assert_eq!(api_token_state(&token(Some(ready("True", later))), later), "expired");
    }
}
