//! The controller's HTTP endpoints, on two listeners:
//!
//! - the public one (`--metrics-addr`): `/healthz`, `/readyz` and
//!   `/metrics`, for the kubelet's probes and Prometheus. The chart's
//!   NetworkPolicy lets any source reach it.
//! - the admin one (`--admin-addr`, loopback only): `/loglevel`, GET to
//!   read the log filter, PUT a filter such as `debug` to change it. It has
//!   no authentication, so nothing outside the pod may reach it: operators
//!   use `kubectl port-forward` or `kubectl exec`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

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

/// `/healthz`, `/readyz` and `/metrics`: safe to expose.
pub fn public_router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/loglevel`: changes the process, so loopback only.
pub fn admin_router(state: HealthState) -> Router {
    Router::new().route("/loglevel", get(get_level).put(set_level)).with_state(state)
}

/// `addr` if it is a loopback address; the admin listener binds nowhere else.
pub fn loopback_only(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "admin address {addr} is not a loopback address: /loglevel has no authentication, so it listens on 127.0.0.1 or [::1] only (reach it with kubectl port-forward)"
            ),
        ))
    }
}

/// The two bound listeners.
pub struct Listeners {
    /// `/healthz`, `/readyz`, `/metrics`.
    pub public: TcpListener,
    /// `/loglevel`, on loopback.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both; refuses an admin address that is not loopback.
    pub async fn bind(public: SocketAddr, admin: SocketAddr) -> std::io::Result<Self> {
        let admin = loopback_only(admin)?;
        let public = TcpListener::bind(public).await?;
        let admin = TcpListener::bind(admin).await?;
        Ok(Self { public, admin })
    }
}

/// Serves both listeners until the process ends or one fails.
pub async fn serve(listeners: Listeners, state: HealthState) -> std::io::Result<()> {
    let public = axum::serve(listeners.public, public_router(state.clone()));
    let admin = axum::serve(listeners.admin, admin_router(state));
    tokio::try_join!(public.into_future(), admin.into_future())?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{EnvFilter, Registry, reload};

    /// A state whose log handle controls a subscriber of its own (not the
    /// global one), kept alive by the returned guard.
    fn state() -> (HealthState, impl Sized) {
        let (layer, log) = reload::Layer::<EnvFilter, Registry>::new(EnvFilter::new("info"));
        let subscriber = tracing_subscriber::registry().with(layer);
        let state = HealthState { metrics: Arc::new(Metrics::default()), ready: Arc::new(AtomicBool::new(true)), log };
        (state, subscriber)
    }

    fn level(s: &HealthState) -> String {
        s.log.with_current(|f| f.to_string()).unwrap()
    }

    /// One HTTP/1.1 request; returns the status code and body.
    async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        let status = out.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn loglevel_is_served_on_the_loopback_admin_listener_only() {
        let (state, _guard) = state();
        let listeners = Listeners::bind("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let public = listeners.public.local_addr().unwrap();
        let admin = listeners.admin.local_addr().unwrap();
        tokio::spawn(serve(listeners, state.clone()));

        assert_eq!(request(public, "GET", "/healthz", "").await.0, 200);
        assert_eq!(request(public, "GET", "/readyz", "").await.0, 200);
        assert_eq!(request(public, "GET", "/metrics", "").await.0, 200);

        // The public listener neither changes nor reveals the level.
        let (status, _) = request(public, "PUT", "/loglevel", "trace").await;
        assert!(status == 404 || status == 405, "PUT /loglevel on the public listener: {status}");
        assert_eq!(request(public, "GET", "/loglevel", "").await.0, 404);
        assert_eq!(level(&state), "info");

        // The admin listener does, and serves nothing else.
        assert_eq!(request(admin, "GET", "/loglevel", "").await, (200, "info".to_owned()));
        assert_eq!(request(admin, "PUT", "/loglevel", "debug\n").await, (200, "updated".to_owned()));
        assert_eq!(level(&state), "debug");
        assert_eq!(request(admin, "GET", "/loglevel", "").await, (200, "debug".to_owned()));
        assert_eq!(request(admin, "PUT", "/loglevel", "no=such=filter").await.0, 400);
        assert_eq!(level(&state), "debug");
        assert_eq!(request(admin, "GET", "/metrics", "").await.0, 404);
    }

    #[tokio::test]
    async fn admin_listener_refuses_non_loopback_addresses() {
        for addr in ["0.0.0.0:0", "[::]:0", "10.0.0.7:8081", "[::ffff:127.0.0.1]:8081"] {
            let err = Listeners::bind("127.0.0.1:0".parse().unwrap(), addr.parse().unwrap())
                .await
                .err()
                .unwrap_or_else(|| panic!("{addr} must be refused"));
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{addr}");
            assert!(err.to_string().contains("not a loopback address"), "{err}");
        }
        for addr in ["127.0.0.1:8081", "127.0.0.2:1", "[::1]:8081"] {
            assert!(loopback_only(addr.parse().unwrap()).is_ok(), "{addr}");
        }
    }
}
