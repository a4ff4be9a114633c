//! Writing status: only when it changed, and with Events on transitions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::info;

use super::context::Context;
use super::error::Result;
use crate::api::FIELD_MANAGER;
use crate::api::conditions::{self, Desired, READY};

/// The current time as a metav1 Time.
pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Merges desired conditions into the existing ones.
pub fn merged(existing: &[Condition], desired: &[Desired], generation: Option<i64>) -> Vec<Condition> {
    conditions::merge(existing, desired, generation, now())
}

/// `Ready=False` reasons that are routine progress rather than a problem;
/// their Events are `Normal`, not `Warning`.
const PROGRESS: &[&str] = &["GatewayProgressing"];

/// Patches `status` when it differs from `current`, and publishes an Event
/// when the Ready condition changed. Returns whether anything was written.
pub async fn publish<K, S>(
    ctx: &Context,
    obj: &K,
    current: Option<&S>,
    new: &S,
    ready_of: impl Fn(&S) -> Option<&Condition>,
) -> Result<bool>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(new) {
        return Ok(false);
    }
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({ "status": new });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch)).await?;
    ctx.metrics.wrote(kind_of::<K>());

    let before = current.and_then(&ready_of);
    if let Some(after) = ready_of(new) {
        let changed = before.is_none_or(|b| b.status != after.status || b.reason != after.reason);
        if changed {
            info!(kind = kind_of::<K>(), name = %obj.name_any(), namespace = %ns, ready = %after.status, reason = %after.reason, "status changed");
            let type_ = if after.status == "True" || PROGRESS.contains(&after.reason.as_str()) {
                EventType::Normal
            } else {
                EventType::Warning
            };
            event(ctx, obj, type_, &after.reason, &after.message).await;
        }
    }
    Ok(true)
}

/// Publishes a Warning Event about `obj`, best effort.
pub async fn warn<K>(ctx: &Context, obj: &K, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    event(ctx, obj, EventType::Warning, reason, note).await;
}

/// Publishes a Normal Event about `obj`, best effort.
pub async fn note<K>(ctx: &Context, obj: &K, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    event(ctx, obj, EventType::Normal, reason, note).await;
}

/// Publishes an Event about `obj`. Best effort: failing to record it must
/// not fail the reconcile.
async fn event<K>(ctx: &Context, obj: &K, type_: EventType, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(truncate(note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %err, "could not publish event");
    } else {
        ctx.metrics.wrote(kind_of::<K>());
    }
}

/// The Ready condition of a list.
pub fn ready(conds: &[Condition]) -> Option<&Condition> {
    conditions::find(conds, READY)
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // Kinds are static strings in generated code; leak-free mapping.
    match K::kind(&()).as_ref() {
        "IdentityProvider" => "IdentityProvider",
        "AuthPolicy" => "AuthPolicy",
        "SessionRevocation" => "SessionRevocation",
        "ApiToken" => "ApiToken",
        _ => "Other",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
