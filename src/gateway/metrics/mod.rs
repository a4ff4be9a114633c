//! Prometheus metrics of the gateway.
//!
//! The per-request counters are created once at startup and incremented
//! through their handles, and the latency histogram is lock-free, so the
//! proxy hot path touches only atomics.

mod codes;
mod histogram;
mod machine;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::AtomicHistogram;
pub use machine::MachineMetrics;

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent upstream with a valid session.
    Proxied,
    /// Sent upstream without authentication (`authentication: Disabled`).
    PassedThrough,
    /// Browser without a session, sent to sign in.
    LoginRedirect,
    /// API client without a session, answered 401.
    Unauthorized,
    /// The upstream could not be reached, failed or timed out.
    UpstreamError,
    /// Refused before authentication or forwarding: `CONNECT`, `OPTIONS *`,
    /// a dot segment in the path, or a broken request body.
    BadRequest,
    /// A forward-auth check that let the request pass.
    ForwardAuthAllowed,
    /// A forward-auth check refused before authentication: an untrusted
    /// peer, a foreign host, an aliased or malformed original request.
    ForwardAuthRefused,
    /// The session store (or a bearer issuer's keys) could not be
    /// reached: 503, nothing let in.
    StoreUnavailable,
    /// A caller was established but may not make this request: 403.
    Forbidden,
}

impl Outcome {
    const ALL: [Outcome; 10] = [
        Self::Proxied,
        Self::PassedThrough,
        Self::LoginRedirect,
        Self::Unauthorized,
        Self::UpstreamError,
        Self::BadRequest,
        Self::ForwardAuthAllowed,
        Self::ForwardAuthRefused,
        Self::StoreUnavailable,
        Self::Forbidden,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Proxied => "proxied",
            Self::PassedThrough => "passed_through",
            Self::LoginRedirect => "login_redirect",
            Self::Unauthorized => "unauthorized",
            Self::UpstreamError => "upstream_error",
            Self::BadRequest => "bad_request",
            Self::ForwardAuthAllowed => "forward_auth_allowed",
            Self::ForwardAuthRefused => "forward_auth_refused",
            Self::StoreUnavailable => "session_store_unavailable",
            Self::Forbidden => "forbidden",
        }
    }
}

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// See [`Outcome`].
    pub outcome: &'static str,
}

/// Labels of the login counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// Provider name.
    pub provider: String,
    /// `success` or why not.
    pub result: &'static str,
}

/// Labels of the refresh, re-validation, reload and logout counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// What happened; each counter documents its values.
    pub result: &'static str,
}

/// Labels of the revoked-session counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why the session ended.
    pub reason: &'static str,
}

/// Labels of the session-store error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `load`, `save` or `end`.
    pub operation: &'static str,
}

/// Labels of the upstream-token metrics: which token endpoint, for which
/// client. Routes that share both share the series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `host[:port]` of the token URL.
    pub endpoint: String,
    /// The OAuth2 client ID.
    pub client: String,
}

/// Labels of the token fetch counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenFetchLabels {
    /// `host[:port]` of the token URL.
    pub endpoint: String,
    /// The OAuth2 client ID.
    pub client: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Metrics of the `client_credentials` tokens that routes inject.
///
/// They are process-wide ([`upstream_tokens`]): token sources are built
/// with the route table, before and apart from [`Metrics`], and every
/// [`Metrics`] renders the same series.
#[derive(Clone, Debug, Default)]
pub struct TokenMetrics {
    fetches: Family<TokenFetchLabels, Counter>,
    expiry: Family<TokenLabels, Gauge>,
}

/// One token source's handles into [`TokenMetrics`], created once so that
/// recording takes no lock and allocates nothing.
#[derive(Clone, Debug)]
pub struct TokenCounters {
    ok: Counter,
    error: Counter,
    expiry: Gauge,
}

impl TokenMetrics {
    /// The handles for tokens of `client` from the endpoint `endpoint`.
    pub fn handles(&self, endpoint: &str, client: &str) -> TokenCounters {
        let fetch = |result| {
            self.fetches.get_or_create_owned(&TokenFetchLabels {
                endpoint: endpoint.to_owned(),
                client: client.to_owned(),
                result,
            })
        };
        let labels = TokenLabels { endpoint: endpoint.to_owned(), client: client.to_owned() };
        TokenCounters { ok: fetch("ok"), error: fetch("error"), expiry: self.expiry.get_or_create_owned(&labels) }
    }
}

impl TokenCounters {
    /// Counts a token obtained that expires at `expires_at` (Unix seconds).
    pub fn fetched(&self, expires_at: i64) {
        self.ok.inc();
        self.expiry.set(expires_at);
    }

    /// Counts a failed fetch.
    pub fn failed(&self) {
        self.error.inc();
    }
}

static UPSTREAM_TOKENS: LazyLock<TokenMetrics> = LazyLock::new(TokenMetrics::default);

/// The process's [`TokenMetrics`].
pub fn upstream_tokens() -> &'static TokenMetrics {
    &UPSTREAM_TOKENS
}

/// All gateway metrics.
pub struct Metrics {
    registry: Registry,
    outcomes: [Counter; 10],
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<ResultLabels, Counter>,
    upstream_latency: AtomicHistogram,
    revoked: Family<ReasonLabels, Counter>,
    revalidations: Family<ResultLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    logouts: Family<ResultLabels, Counter>,
    store_errors: Family<OperationLabels, Counter>,
    /// Machine callers: methods, bearer failures, device flow.
    pub machine: MachineMetrics,
    responses: codes::ResponseCodes,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("authgate_gateway");
        let requests = Family::<OutcomeLabels, Counter>::default();
        let outcomes = Outcome::ALL.map(|o| requests.get_or_create_owned(&OutcomeLabels { outcome: o.label() }));
        let logins = Family::<LoginLabels, Counter>::default();
        let refreshes = Family::<ResultLabels, Counter>::default();
        let revoked = Family::<ReasonLabels, Counter>::default();
        let revalidations = Family::<ResultLabels, Counter>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        let logouts = Family::<ResultLabels, Counter>::default();
        let store_errors = Family::<OperationLabels, Counter>::default();
        let upstream_latency = AtomicHistogram::new(&[
            0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register("requests", "Requests by outcome", requests);
        registry.register("logins", "Completed or failed sign-ins by provider and result", logins.clone());
        registry.register("token_refreshes", "Access token refreshes by result", refreshes.clone());
        registry.register(
            "upstream_duration_seconds",
            "Time until the upstream's response headers arrived",
            upstream_latency.clone(),
        );
        registry.register(
            "sessions_revoked",
            "Sessions ended before their expiry, by reason: sign_out, not_before, user, backchannel_logout, revalidation",
            revoked.clone(),
        );
        registry.register(
            "session_revalidations",
            "Re-validations of live sessions against the provider and policy, by result: passed, denied, error (within the grace), failed_closed",
            revalidations.clone(),
        );
        registry.register(
            "config_reloads",
            "Reloads of gateway.yaml, by result: accepted, refused (the last good config keeps serving)",
            reloads.clone(),
        );
        registry.register(
            "backchannel_logouts",
            "OpenID Connect back-channel logout requests, by result: accepted, refused",
            logouts.clone(),
        );
        registry.register(
            "session_store_errors",
            "Failed session store operations (Redis unreachable or erroring), by operation",
            store_errors.clone(),
        );
        let machine = MachineMetrics::register(&mut registry);
        let responses = codes::ResponseCodes::register(&mut registry);
        registry.register_collector(Box::new(crate::telemetry::process::ProcessCollector));
        let tokens = upstream_tokens();
        registry.register(
            "upstream_token_fetches",
            "client_credentials token requests of routes with tokenAuth, by token endpoint, client and result",
            tokens.fetches.clone(),
        );
        registry.register(
            "upstream_token_expiry_timestamp_seconds",
            "When the newest client_credentials token of a route expires (Unix time)",
            tokens.expiry.clone(),
        );
        Self {
            registry,
            outcomes,
            logins,
            refreshes,
            upstream_latency,
            revoked,
            revalidations,
            reloads,
            logouts,
            store_errors,
            machine,
            responses,
        }
    }
}

impl Metrics {
    /// Counts a request.
    pub fn request(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].inc();
    }

    /// Counts a public response by its status code.
    pub fn response(&self, status: http::StatusCode) {
        self.responses.count(status);
    }

    /// Counts a sign-in result.
    pub fn login(&self, provider: &str, result: &'static str) {
        self.logins.get_or_create(&LoginLabels { provider: provider.to_owned(), result }).inc();
    }

    /// Counts a refresh result.
    pub fn refresh(&self, result: &'static str) {
        self.refreshes.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a session ended before its expiry.
    pub fn session_revoked(&self, reason: &'static str) {
        self.revoked.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a re-validation result.
    pub fn revalidation(&self, result: &'static str) {
        self.revalidations.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a config reload result.
    pub fn config_reload(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a back-channel logout request.
    pub fn backchannel_logout(&self, result: &'static str) {
        self.logouts.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a failed session store operation.
    pub fn store_error(&self, operation: &'static str) {
        self.store_errors.get_or_create(&OperationLabels { operation }).inc();
    }

    /// Records the time to the upstream's response headers.
    pub fn upstream_latency(&self, elapsed: Duration) {
        self.upstream_latency.observe(elapsed);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_families() {
        let m = Metrics::default();
        m.request(Outcome::Proxied);
        m.request(Outcome::Proxied);
        m.login("corp", "success");
        m.refresh("success");
        m.upstream_latency(Duration::from_micros(300));
        m.upstream_latency(Duration::from_secs(20));
        let token = upstream_tokens().handles("login.example.com", "metrics-test");
        token.fetched(1_900_000_000);
        token.failed();
        token.failed();
        m.response(http::StatusCode::OK);
        m.response(http::StatusCode::from_u16(418).unwrap());
        m.machine.authenticated(crate::access::Proof::Bearer);
        m.machine.bearer_failure("audience");
        let text = m.render();
        assert!(text.contains(r#"authgate_gateway_responses_total{code="200"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_responses_total{code="4xx"} 1"#), "{text}");
        assert!(text.contains("authgate_gateway_build_info{version="), "{text}");
        assert!(text.contains(r#"authgate_gateway_authenticated_requests_total{method="bearer"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_authenticated_requests_total{method="api_token"} 0"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_bearer_failures_total{reason="audience"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_requests_total{outcome="proxied"} 2"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_logins_total{provider="corp",result="success"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_token_refreshes_total{result="success"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_upstream_duration_seconds_bucket{le="0.0005"} 1"#), "{text}");
        assert!(text.contains(r#"authgate_gateway_upstream_duration_seconds_bucket{le="10.0"} 1"#), "{text}");
        assert!(text.contains("authgate_gateway_upstream_duration_seconds_count 2"), "{text}");
        let fetches =
            r#"authgate_gateway_upstream_token_fetches_total{endpoint="login.example.com",client="metrics-test""#;
        assert!(text.contains(&format!(r#"{fetches},result="ok"}} 1"#)), "{text}");
        assert!(text.contains(&format!(r#"{fetches},result="error"}} 2"#)), "{text}");
        assert!(
            text.contains(r#"authgate_gateway_upstream_token_expiry_timestamp_seconds{endpoint="login.example.com",client="metrics-test"} 1900000000"#),
            "{text}"
        );
    }
}
