//! The device approval pages. Like the gateway's other pages they forbid
//! framing (no clickjacking of the Approve button), scripts and caching;
//! unlike them they post forms, to this gateway only.

use axum::response::{Html, IntoResponse, Response};
use http::header::CONTENT_SECURITY_POLICY;
use http::{HeaderValue, StatusCode};

use crate::gateway::device::Grant;
use crate::gateway::pages::{escape, harden};

fn page(status: StatusCode, title: &str, id: &str, body: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d232b;display:flex;justify-content:center;padding-top:10vh;margin:0}}
main{{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:2rem 2.5rem;max-width:34rem;box-shadow:0 2px 8px rgba(0,0,0,.05)}}
h1{{font-size:1.35rem;margin:0 0 1rem}} p{{line-height:1.5}} dt{{font-weight:600}} dd{{margin:0 0 .5rem 0;word-break:break-all}}
.warn{{background:#fff4e5;border:1px solid #f0c58a;padding:.7rem 1rem;border-radius:6px}}
input[type=text]{{font-size:1.3rem;letter-spacing:.15rem;padding:.4rem;width:12rem;text-transform:uppercase}}
button{{padding:.6rem 1.2rem;margin:.6rem .6rem 0 0;font-size:1rem}}
</style></head>
<body><main id="{id}"><h1>{title}</h1>
{body}
</main></body></html>
"#,
        title = escape(title),
    );
    let mut r = harden((status, Html(html)).into_response());
    r.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    r
}

const PHISHING: &str = "<p class=\"warn\">Only continue if <strong>you</strong> just started signing in on a device \
or command line of your own and it showed you this code. Someone who sends you a code and asks you to enter it is \
trying to get access in your name.</p>";

/// Asks for the code shown on the device.
pub fn enter_code(action: &str) -> Response {
    let body = format!(
        r#"{PHISHING}
<form method="get" action="{action}">
<p><label for="user_code">Code shown on your device</label></p>
<input type="text" id="user_code" name="user_code" autocomplete="off" autofocus required maxlength="16" placeholder="XXXX-XXXX">
<button type="submit" id="continue">Continue</button>
</form>"#,
        action = escape(action)
    );
    page(StatusCode::OK, "Connect a device", "device-enter", &body)
}

/// The code was not one of a pending request.
pub fn unknown_code(action: &str) -> Response {
    let body = format!(
        r#"<p class="reason">That code is not valid: it is mistyped, expired, or was already used.</p>
<form method="get" action="{action}">
<input type="text" name="user_code" autocomplete="off" required maxlength="16" placeholder="XXXX-XXXX">
<button type="submit">Try again</button>
</form>"#,
        action = escape(action)
    );
    page(StatusCode::NOT_FOUND, "Unknown code", "device-unknown", &body)
}

/// Too many wrong codes.
pub fn rate_limited() -> Response {
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "device-rate-limited",
        "<p>Too many wrong codes were entered. Wait a few minutes and try again.</p>",
    );
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

/// The approval form without a valid CSRF token.
pub fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "device-forbidden",
        "<p>This form did not come from this page (it is missing its security token or is too old). Open the approval page again.</p>",
    )
}

/// What is asking, and Approve / Deny.
pub fn confirm(action: &str, grant: &Grant, user: &str, csrf: &str) -> Response {
    let requested = chrono::DateTime::from_timestamp(grant.requested_at as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let body = format!(
        r#"{PHISHING}
<p>A device asks to act as <strong>{user}</strong>.</p>
<dl>
<dt>Code</dt><dd id="code">{code}</dd>
<dt>Client</dt><dd id="client">{client}</dd>
<dt>From IP address</dt><dd id="ip">{ip}</dd>
<dt>Program</dt><dd id="agent">{agent}</dd>
<dt>Requested at</dt><dd id="time">{requested}</dd>
</dl>
<p>Check that the code matches the one on your device.</p>
<form method="post" action="{action}">
<input type="hidden" name="user_code" value="{code}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form>"#,
        user = escape(user),
        code = escape(&grant.user_code),
        client = escape(&grant.client_id),
        ip = escape(&grant.ip),
        agent = escape(&grant.user_agent),
        action = escape(action),
        csrf = escape(csrf),
    );
    page(StatusCode::OK, "Approve a device?", "device-confirm", &body)
}

/// The decision was recorded.
pub fn decided(approved: bool) -> Response {
    if approved {
        page(StatusCode::OK, "Device approved", "device-approved", "<p>You can return to your device now.</p>")
    } else {
        page(StatusCode::OK, "Device denied", "device-denied", "<p>The device was not given access.</p>")
    }
}
