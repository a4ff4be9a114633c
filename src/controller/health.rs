//! The controller's HTTP endpoints: `/healthz`, `/readyz`, `/metrics` and
//! `/loglevel` (GET to read, PUT a filter such as `debug` to change it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;
use crate::telemetry::LogLevelHandle;

/// Shared state of the endpoints.
#[derive(Clone)]
pub struct HealthState {
    /// Metrics to render.
    pub metrics: Arc<Metrics>,
    /// Set once the controller is running (leader or standby).
    pub ready: Arc<AtomicBool>,
    /// Runtime log level.
    pub log: LogLevelHandle,
}

/// Serves until the process ends.
pub async fn serve(addr: SocketAddr, state: HealthState) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/loglevel", get(get_level).put(set_level))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn get_level(State(s): State<HealthState>) -> impl IntoResponse {
    s.log.with_current(|f| f.to_string()).unwrap_or_default()
}

async fn set_level(State(s): State<HealthState>, body: String) -> impl IntoResponse {
    match tracing_subscriber::EnvFilter::try_new(body.trim()) {
        Ok(filter) => match s.log.reload(filter) {
            Ok(()) => (StatusCode::OK, "updated".to_owned()),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => (StatusCode::BAD_REQUEST, format!("invalid filter: {e}")),
    }
}
