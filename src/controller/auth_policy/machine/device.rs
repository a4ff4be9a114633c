//! `spec.deviceFlow` as the gateway serves it.
//!
//! A device code is approved in a browser on one request and redeemed by
//! the device's polls on others. With the cookie session store each
//! gateway keeps pending codes in its own memory, so approval and polling
//! must meet on one pod: more than one replica needs `session.store:
//! Redis`, where every replica sees every code. A policy asking for both
//! is refused (`DeviceFlowNeedsSharedStore`) rather than served flakily.

use crate::api::conditions::ACCEPTED;
use crate::api::{AuthPolicy, SessionStoreKind};
use crate::contract::machine::{DEFAULT_DEVICE_CODE_TTL, DEFAULT_DEVICE_INTERVAL, DeviceFlowConfig};
use crate::contract::rules::parse_duration_secs;
use crate::controller::auth_policy::Blocked;

/// Device token lifetime when `tokenTtl` is not set: 12 hours.
pub const DEFAULT_DEVICE_TOKEN_TTL: u64 = 12 * 3600;

/// The device flow of `policy`, or why it cannot be served;
/// `default_replicas` is the controller's `--gateway-replicas`, what a
/// policy without `gateway.replicas` runs.
pub(in crate::controller::auth_policy) fn config(
    policy: &AuthPolicy,
    default_replicas: i32,
) -> Result<Option<DeviceFlowConfig>, Blocked> {
    let Some(device) = policy.spec.device_flow.as_ref().filter(|d| d.enabled) else {
        return Ok(None);
    };
    let replicas = policy.spec.gateway.as_ref().and_then(|g| g.replicas).unwrap_or(default_replicas);
    let shared = policy.spec.session.store == Some(SessionStoreKind::Redis);
    if replicas > 1 && !shared {
        return Err(Blocked::new(
            ACCEPTED,
            "DeviceFlowNeedsSharedStore",
            format!(
                "deviceFlow with {replicas} gateway replicas needs session.store: Redis (pending device codes must be seen by every replica); set gateway.replicas: 1 or use the Redis store"
            ),
            true,
        ));
    }
    let token_ttl_seconds = match device.token_ttl.as_deref() {
        None => DEFAULT_DEVICE_TOKEN_TTL,
        Some(text) => parse_duration_secs(text).ok_or_else(|| {
            Blocked::new(ACCEPTED, "Invalid", format!("deviceFlow.tokenTtl {text:?} is not a duration"), true)
        })?,
    };
    Ok(Some(DeviceFlowConfig {
        token_ttl_seconds,
        code_ttl_seconds: DEFAULT_DEVICE_CODE_TTL,
        interval_seconds: DEFAULT_DEVICE_INTERVAL,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::objects;

    fn with(spec: serde_json::Value) -> AuthPolicy {
        let mut policy = objects::policy();
        let mut value = serde_json::to_value(&policy.spec).unwrap();
        for (k, v) in spec.as_object().unwrap() {
            value[k] = v.clone();
        }
        policy.spec = serde_json::from_value(value).unwrap();
        policy
    }

    #[test]
    fn off_unless_enabled() {
        assert_eq!(config(&objects::policy(), 1).ok(), Some(None));
        assert_eq!(config(&with(serde_json::json!({"deviceFlow": {"enabled": false}})), 1).ok(), Some(None));
    }

    #[test]
    fn renders_the_token_ttl() {
        let c = config(&with(serde_json::json!({"deviceFlow": {"tokenTtl": "1h30m"}})), 1).ok().flatten().unwrap();
        assert_eq!(c.token_ttl_seconds, 5400);
        assert_eq!(c.code_ttl_seconds, DEFAULT_DEVICE_CODE_TTL);
        let c = config(&with(serde_json::json!({"deviceFlow": {}})), 1).ok().flatten().unwrap();
        assert_eq!(c.token_ttl_seconds, DEFAULT_DEVICE_TOKEN_TTL);
    }

    #[test]
    fn several_replicas_without_redis_are_refused() {
        let p = with(serde_json::json!({"deviceFlow": {}, "gateway": {"replicas": 3}}));
        let blocked = config(&p, 1).expect_err("refused");
        assert_eq!(blocked.reason, "DeviceFlowNeedsSharedStore");
        assert_eq!(blocked.condition, ACCEPTED);
        assert!(blocked.message.contains("session.store: Redis"), "{}", blocked.message);
        let one = with(serde_json::json!({"deviceFlow": {}, "gateway": {"replicas": 1}}));
        assert!(config(&one, 3).is_ok());
        // Without gateway.replicas the controller's default counts.
        let unset = with(serde_json::json!({"deviceFlow": {}}));
        assert!(config(&unset, 1).is_ok());
        assert_eq!(config(&unset, 2).expect_err("refused").reason, "DeviceFlowNeedsSharedStore");
    }

    #[test]
    fn several_replicas_with_redis_are_served() {
        let p = with(serde_json::json!({
            "deviceFlow": {},
            "gateway": {"replicas": 3},
            "session": {"store": "Redis", "redis": {"address": "redis.team-a.svc:6379"}},
        }));
        assert!(config(&p, 1).ok().flatten().is_some());
    }
}
