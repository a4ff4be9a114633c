//! The gateway's routers and request handlers, one file per concern:
//! signing in, the session endpoints, everything else (the proxy), and the
//! operations endpoints on their own port.

pub mod backchannel;
pub mod device;
mod device_page;
pub mod forward_auth;
pub mod login;
pub mod machine;
pub mod proxy;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use super::config::Authentication;
use super::metrics::Metrics;
use super::server::{Gateway, Worker};
use super::upstream::Upstreams;

/// The public router of one serving thread, forwarding through its own
/// `upstreams` pools.
pub fn public(gw: Arc<Gateway>, upstreams: Upstreams) -> Router {
    let enabled = gw.config.authentication == Authentication::Enabled;
    let paths = gw.paths.clone();
    let mut router = Router::new();
    if enabled {
        router = router
            .route(&paths.start, get(login::start))
            .route(&paths.callback, get(login::callback))
            .route(&paths.sign_out, get(session::sign_out).post(session::sign_out))
            .route(&paths.userinfo, get(session::userinfo))
            .route(&session::sibling_path(&paths.sign_out, "signed_out"), get(session::signed_out))
            .route(
                &session::sibling_path(&paths.sign_out, "backchannel_logout"),
                post(backchannel::backchannel_logout),
            );
        if gw.config.machine.device_flow.is_some() {
            let d = device::DevicePaths::of(&gw);
            router = router
                .route(&d.code, post(device::device_code))
                .route(&d.approve, get(device::approval_page).post(device::decide))
                .route(&d.token, post(device::token))
                .route(&d.metadata, get(device::metadata));
        }
        if gw.forward_auth.is_some() {
            router = router
                .route(&paths.auth, any(forward_auth::auth_request))
                .route(&paths.verify, any(forward_auth::verify))
                .route(&format!("{}/", paths.ext_authz), any(forward_auth::ext_authz))
                .route(&format!("{}/{{*original}}", paths.ext_authz), any(forward_auth::ext_authz));
        }
    }
    let observe = super::observe::ObserveLayer::new(gw.metrics.clone(), gw.config.access_log);
    router.fallback(proxy::proxy_request).with_state(Worker { gw, upstreams: Arc::new(upstreams) }).layer(observe)
}

/// The operations router: `/healthz`, `/readyz` and `/metrics`. It holds
/// only the metrics, which outlive config reloads.
pub fn ops(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut r = metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
