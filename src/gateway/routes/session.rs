//! The session endpoints: `/oauth2/sign_out` and `/oauth2/userinfo`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;

use crate::access::safe_redirect;
use crate::gateway::authn::{Authn, Caller};
use crate::gateway::pages;
use crate::gateway::server::{Gateway, found};
use crate::gateway::session::{SessionStore, now};

/// Query of `/oauth2/sign_out`.
#[derive(Deserialize)]
pub struct SignOutQuery {
    rd: Option<String>,
}

pub(crate) async fn sign_out(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<SignOutQuery>,
    headers: HeaderMap,
) -> Response {
    // Only a cookie this gateway can open is its own to delete.
    let loaded = gw.sessions().load(&headers).await;
    if loaded.unavailable {
        // Not signed out server-side: say so rather than pretend.
        return crate::gateway::routes::proxy::store_unavailable(&gw, &headers);
    }
    let mut response = match q.rd.as_deref().and_then(|rd| safe_redirect(rd, &gw.config.external_url)) {
        Some(target) => found(&target),
        None => pages::signed_out(&gw.start_href(None, None, Some("login"))),
    };
    if loaded.record.is_some() || loaded.ticket.is_some() {
        gw.sessions().end(&loaded, response.headers_mut()).await;
    }
    pages::harden(response)
}

pub(crate) async fn userinfo(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let Authn::Caller(Caller::Session(session)) = gw.authenticate(&headers, now()).await else {
        return unauthorized_json();
    };
    let view = session.view();
    let mut r = Json(serde_json::json!({
        "user": view.user,
        "email": view.email,
        "groups": view.groups().collect::<Vec<_>>(),
        "provider": view.provider,
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn unauthorized_json() -> Response {
    let mut r =
        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "unauthorized", "message": "sign-in required"})))
            .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
