//! Prometheus metrics of the controller.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `IdentityProvider` or `AuthPolicy`.
    pub kind: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Resource kind.
    pub kind: &'static str,
    /// Error class.
    pub reason: &'static str,
}

/// Labels of the objects-by-condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Resource kind.
    pub kind: &'static str,
    /// Ready condition status.
    pub ready: &'static str,
}

/// Labels of the ApiTokens-by-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiTokenLabels {
    /// `active`, `expired` or `pending` ([`super::counts::api_token_state`]).
    pub state: &'static str,
}

/// Labels of the duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Resource kind.
    pub kind: &'static str,
}

/// All controller metrics, registered in one registry.
pub struct Metrics {
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Failures by kind and reason.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration by kind.
    pub duration: Family<KindLabel, Histogram>,
    /// Objects by kind and Ready status, as of their last reconcile.
    pub objects: Family<ObjectLabels, Gauge>,
    /// ApiTokens by state.
    pub api_tokens: Family<ApiTokenLabels, Gauge>,
    /// Writes issued to the apiserver (children applied, statuses patched).
    pub writes: Family<KindLabel, Counter>,
    /// 1 while this replica holds the leader Lease (or runs without election).
    pub leader: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        let objects = Family::<ObjectLabels, Gauge>::default();
        let api_tokens = Family::<ApiTokenLabels, Gauge>::default();
        let writes = Family::<KindLabel, Counter>::default();
        let leader = Gauge::default();
        let mut registry = Registry::with_prefix("authgate_controller");
        registry.register_collector(Box::new(crate::telemetry::process::ProcessCollector));
        registry.register("reconciles", "Reconciles by kind and result", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles by kind and reason", errors.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration", duration.clone());
        registry.register("objects", "Objects by kind and Ready status", objects.clone());
        registry.register("api_tokens", "ApiTokens by state: active, expired, pending", api_tokens.clone());
        registry.register("writes", "Writes sent to the apiserver by kind", writes.clone());
        registry.register("leader", "Whether this replica is the active leader", leader.clone());
        Self { reconciles, errors, duration, objects, api_tokens, writes, leader, registry }
    }
}

impl Metrics {
    /// Records one finished reconcile.
    pub fn observe(&self, kind: &'static str, elapsed: Duration, error: Option<&'static str>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles.get_or_create(&ReconcileLabels { kind, result }).inc();
        self.duration.get_or_create(&KindLabel { kind }).observe(elapsed.as_secs_f64());
        if let Some(reason) = error {
            self.errors.get_or_create(&ErrorLabels { kind, reason }).inc();
        }
    }

    /// Counts one write to the apiserver.
    pub fn wrote(&self, kind: &'static str) {
        self.writes.get_or_create(&KindLabel { kind }).inc();
    }

    /// Renders the OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
