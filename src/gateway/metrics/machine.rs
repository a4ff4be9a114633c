//! Metrics of callers without a browser: requests by authentication
//! method, bearer verification failures by reason, and device-flow
//! outcomes.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{ReasonLabels, ResultLabels};
use crate::access::Proof;

/// Labels of the authenticated-request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct MethodLabels {
    /// `session`, `bearer`, `api_token` or `device`.
    pub method: &'static str,
}

/// The machine-caller metrics, registered with the gateway's.
#[derive(Clone, Debug)]
pub struct MachineMetrics {
    by_method: [Counter; 4],
    bearer_failures: Family<ReasonLabels, Counter>,
    device: Family<ResultLabels, Counter>,
}

const METHODS: [Proof; 4] = [Proof::SignIn, Proof::Bearer, Proof::ApiToken, Proof::Device];

impl MachineMetrics {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let by_method = Family::<MethodLabels, Counter>::default();
        let handles = METHODS.map(|p| by_method.get_or_create_owned(&MethodLabels { method: p.method() }));
        let bearer_failures = Family::<ReasonLabels, Counter>::default();
        let device = Family::<ResultLabels, Counter>::default();
        registry.register(
            "authenticated_requests",
            "Requests whose caller was established, by authentication method: session, bearer, api_token, device",
            by_method,
        );
        registry.register(
            "bearer_failures",
            "Machine credentials refused, by reason (algorithm, signature, issuer, audience, expired, ...)",
            bearer_failures.clone(),
        );
        registry.register(
            "device_flow",
            "Device-flow events by result: authorized, approved, denied, issued, pending, slow_down, expired, denied_poll, invalid_grant, wrong_code, csrf, rate_limited, unavailable",
            device.clone(),
        );
        Self { by_method: handles, bearer_failures, device }
    }

    /// Counts a request whose caller proved who they are by `proof`.
    pub fn authenticated(&self, proof: Proof) {
        self.by_method[proof as usize].inc();
    }

    /// Counts a refused machine credential.
    pub fn bearer_failure(&self, reason: &'static str) {
        self.bearer_failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a device-flow event.
    pub fn device(&self, result: &'static str) {
        self.device.get_or_create(&ResultLabels { result }).inc();
    }
}
