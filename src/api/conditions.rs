//! Status conditions as kstatus, Argo CD and `kubectl wait` read them.
//!
//! Conditions are computed as [`Desired`] values and merged into the existing
//! list so that `lastTransitionTime` moves only when a status flips, and a
//! status that did not change compares equal and is not written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The resource is valid and not in conflict with another.
pub const ACCEPTED: &str = "Accepted";
/// Every reference (Secrets, providers, issuer) resolved.
pub const RESOLVED_REFS: &str = "ResolvedRefs";
/// The resource is fully usable.
pub const READY: &str = "Ready";
/// kstatus: an error that only a person can fix.
pub const STALLED: &str = "Stalled";
/// kstatus: the controller is still working towards the desired state.
pub const RECONCILING: &str = "Reconciling";

/// A condition the controller wants, before it is merged with what exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human readable explanation.
    pub message: String,
}

impl Desired {
    /// A `True` condition.
    pub fn truthy(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status: true, reason, message: message.into() }
    }
    /// A `False` condition.
    pub fn falsy(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status: false, reason, message: message.into() }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Builds the new condition list. Conditions not in `desired` are dropped
/// (e.g. `Stalled` once the error is fixed); `lastTransitionTime` is kept
/// from `existing` while a condition's status stays the same.
pub fn merge(existing: &[Condition], desired: &[Desired], generation: Option<i64>, now: Time) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let previous = existing.iter().find(|c| c.type_ == d.type_);
            let status = status_str(d.status);
            let last_transition_time = match previous {
                Some(p) if p.status == status => p.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: d.type_.to_owned(),
                status: status.to_owned(),
                reason: d.reason.to_owned(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_moves_only_on_flip() {
        let first = merge(&[], &[Desired::truthy(READY, "Ready", "")], Some(1), at(100));
        let same = merge(&first, &[Desired::truthy(READY, "Ready", "")], Some(1), at(200));
        assert_eq!(first, same);
        let flipped = merge(&same, &[Desired::falsy(READY, "Broken", "x")], Some(2), at(300));
        assert_eq!(flipped[0].last_transition_time, at(300));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }

    #[test]
    fn dropped_conditions_disappear() {
        let first = merge(&[], &[Desired::truthy(STALLED, "X", ""), Desired::falsy(READY, "X", "")], None, at(1));
        let next = merge(&first, &[Desired::truthy(READY, "Ready", "")], None, at(2));
        assert_eq!(next.len(), 1);
        assert!(is_true(&next, READY));
        assert!(find(&next, STALLED).is_none());
    }
}
