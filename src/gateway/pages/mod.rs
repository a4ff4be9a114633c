//! The few HTML pages the gateway renders itself: the provider chooser,
//! access denied, sign-in errors, "signed out" and the device approval
//! pages ([`crate::gateway::routes::device_page`]). All share one layout ([`layout`]) that names the
//! service and shows its branding; maud escapes every dynamic value; pages
//! forbid framing, scripts and caching.

pub mod denied;
pub mod layout;
pub mod sign_in;

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

pub use denied::{Who, denied};
pub use layout::Look;
pub use sign_in::{Choice, chooser, error, signed_out, store_unavailable};

/// The Content-Security-Policy every page starts from.
pub(crate) const BASE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// Adds the headers every gateway response carries. A page's own
/// Content-Security-Policy (set by [`layout::page`], perhaps allowing its
/// logo) is kept; anything else gets the strictest one.
pub fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let ours = h.get(CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(BASE_CSP));
    if !ours {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
            ),
        );
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// [`store_unavailable`] for API clients.
pub fn store_unavailable_json() -> Response {
    let body = serde_json::json!({"error": "session_store_unavailable", "message": "sessions cannot be checked right now; retry later"});
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 401 for an API client: sign-in required, as JSON.
pub(crate) fn unauthorized_json() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "unauthorized", "message": "sign-in required"})),
    )
        .into_response();
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests;
