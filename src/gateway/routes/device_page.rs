//! The device approval pages. Like the gateway's other pages they forbid
//! framing (no clickjacking of the Approve button), scripts and caching;
//! unlike them they post forms, to this gateway only.

use axum::response::Response;
use http::{HeaderValue, StatusCode};
use maud::{Markup, html};

use crate::gateway::device::Grant;
use crate::gateway::pages::Look;
use crate::gateway::pages::layout::{Forms, page};

fn phishing() -> Markup {
    html! {
        p.warn {
            "Only continue if " strong { "you" } " just started signing in on a device or command line of your own \
             and it showed you this code. Someone who sends you a code and asks you to enter it is trying to get \
             access in your name."
        }
    }
}

/// Asks for the code shown on the device.
pub fn enter_code(look: &Look<'_>, action: &str) -> Response {
    let body = html! {
        (phishing())
        form method="get" action=(action) {
            p { label for="user_code" { "Code shown on your device" } }
            input type="text" id="user_code" name="user_code" autocomplete="off" autofocus required maxlength="16" placeholder="XXXX-XXXX";
            button type="submit" id="continue" { "Continue" }
        }
    };
    page(look, StatusCode::OK, "Connect a device", "device-enter", Forms::SelfOnly, body)
}

/// The code was not one of a pending request.
pub fn unknown_code(look: &Look<'_>, action: &str) -> Response {
    let body = html! {
        p.reason { "That code is not valid: it is mistyped, expired, or was already used." }
        form method="get" action=(action) {
            input type="text" name="user_code" autocomplete="off" required maxlength="16" placeholder="XXXX-XXXX";
            button type="submit" { "Try again" }
        }
    };
    page(look, StatusCode::NOT_FOUND, "Unknown code", "device-unknown", Forms::SelfOnly, body)
}

/// Too many wrong codes.
pub fn rate_limited(look: &Look<'_>) -> Response {
    let body = html! { p { "Too many wrong codes were entered. Wait a few minutes and try again." } };
    let mut r =
        page(look, StatusCode::TOO_MANY_REQUESTS, "Too many attempts", "device-rate-limited", Forms::SelfOnly, body);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

/// The approval form without a valid CSRF token.
pub fn forbidden(look: &Look<'_>) -> Response {
    let body = html! {
        p { "This form did not come from this page (it is missing its security token or is too old). Open the approval page again." }
    };
    page(look, StatusCode::FORBIDDEN, "Request refused", "device-forbidden", Forms::SelfOnly, body)
}

/// What is asking, and Approve / Deny.
pub fn confirm(look: &Look<'_>, action: &str, grant: &Grant, user: &str, csrf: &str) -> Response {
    let requested = chrono::DateTime::from_timestamp(grant.requested_at as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let body = html! {
        (phishing())
        p { "A device asks to act as " strong { (user) } "." }
        dl {
            dt { "Code" } dd id="code" { (grant.user_code) }
            dt { "Client" } dd id="client" { (grant.client_id) }
            dt { "From IP address" } dd id="ip" { (grant.ip) }
            dt { "Program" } dd id="agent" { (grant.user_agent) }
            dt { "Requested at" } dd id="time" { (requested) }
        }
        p { "Check that the code matches the one on your device." }
        form method="post" action=(action) {
            input type="hidden" name="user_code" value=(grant.user_code);
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name="action" value="approve" id="approve" { "Approve" }
            button type="submit" name="action" value="deny" id="deny" { "Deny" }
        }
    };
    page(look, StatusCode::OK, "Approve a device?", "device-confirm", Forms::SelfOnly, body)
}

/// The decision was recorded.
pub fn decided(look: &Look<'_>, approved: bool) -> Response {
    if approved {
        let body = html! { p { "You can return to your device now." } };
        page(look, StatusCode::OK, "Device approved", "device-approved", Forms::SelfOnly, body)
    } else {
        let body = html! { p { "The device was not given access." } };
        page(look, StatusCode::OK, "Device denied", "device-denied", Forms::SelfOnly, body)
    }
}
