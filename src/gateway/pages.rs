//! The few HTML pages the gateway renders itself: the provider chooser,
//! access denied, sign-in errors and "signed out". Every dynamic value is
//! HTML-escaped; pages forbid framing, scripts and caching.

use axum::response::{Html, IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Adds the headers every gateway page carries.
pub fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
        ),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn page(status: StatusCode, title: &str, id: &str, body: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d232b;display:flex;justify-content:center;padding-top:12vh;margin:0}}
main{{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:2rem 2.5rem;max-width:30rem;box-shadow:0 2px 8px rgba(0,0,0,.05)}}
h1{{font-size:1.35rem;margin:0 0 1rem}} p{{line-height:1.5}}
a.button{{display:block;margin:.6rem 0;padding:.7rem 1rem;border:1px solid #b9c0c9;border-radius:6px;text-decoration:none;color:#1d232b;text-align:center}}
a.button:hover{{background:#eef1f4}} .reason{{font-weight:600}}
</style></head>
<body><main id="{id}"><h1>{title}</h1>
{body}
</main></body></html>
"#,
        title = escape(title),
    );
    harden((status, Html(html)).into_response())
}

/// The sign-in chooser: one link per provider, `(name, href)`.
pub fn chooser(providers: &[(String, String)]) -> Response {
    let mut body = String::from("<p>Choose how to sign in.</p>\n");
    for (name, href) in providers {
        body.push_str(&format!(
            "<a class=\"button\" id=\"provider-{id}\" href=\"{href}\">Sign in with {name}</a>\n",
            id = escape(name),
            href = escape(href),
            name = escape(name),
        ));
    }
    page(StatusCode::OK, "Sign in", "sign-in", &body)
}

/// 403: the user signed in but may not enter. `reason` names the user's
/// own data (e.g. their domain), never the rules.
pub fn denied(reason: &str, retry_href: &str) -> Response {
    let body = format!(
        "<p>You signed in, but you are not allowed to access this service:</p>\n<p class=\"reason\" id=\"reason\">{}.</p>\n\
         <p>If you think this is wrong, ask the service's owner for access.</p>\n\
         <a class=\"button\" id=\"retry\" href=\"{}\">Sign in with another account</a>",
        escape(reason),
        escape(retry_href),
    );
    page(StatusCode::FORBIDDEN, "Access denied", "access-denied", &body)
}

/// A sign-in that could not be completed.
pub fn error(status: StatusCode, message: &str, retry_href: &str) -> Response {
    let body = format!(
        "<p class=\"reason\" id=\"reason\">{}.</p>\n<a class=\"button\" id=\"retry\" href=\"{}\">Try again</a>",
        escape(message),
        escape(retry_href),
    );
    page(status, "Sign-in failed", "sign-in-error", &body)
}

/// The session store cannot be reached (503).
pub fn store_unavailable() -> Response {
    let body = "<p class=\"reason\" id=\"reason\">Sessions cannot be checked right now. Try again in a moment.</p>";
    let mut r = page(StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "store-unavailable", body);
    r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
    r
}

/// [`store_unavailable`] for API clients.
pub fn store_unavailable_json() -> Response {
    let body = serde_json::json!({"error": "session_store_unavailable", "message": "sessions cannot be checked right now; retry later"});
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
    r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    r
}

/// After sign-out.
pub fn signed_out(sign_in_href: &str) -> Response {
    let body = format!(
        "<p>You are signed out of this service.</p>\n<a class=\"button\" id=\"sign-in-again\" href=\"{}\">Sign in again</a>",
        escape(sign_in_href),
    );
    page(StatusCode::OK, "Signed out", "signed-out", &body)
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
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dynamic() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[tokio::test]
    async fn denied_page_is_403_and_hardened() {
        let r = denied("the email domain <evil>.org is not allowed", "/oauth2/start");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers().get(CACHE_CONTROL).unwrap(), "no-store");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("&lt;evil&gt;.org"));
        assert!(!text.contains("<evil>"));
    }
}
