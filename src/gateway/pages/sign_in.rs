//! The sign-in pages: the provider chooser, a sign-in that failed, the
//! session store being down, and "signed out".

use axum::response::Response;
use http::{HeaderValue, StatusCode};
use maud::html;

use super::layout::{Forms, Look, page};
use crate::api::ProviderType;

/// One button of the chooser.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The provider's name (the `provider` parameter); the button's id.
    pub name: String,
    /// What the button says: "Sign in with <shown>".
    pub shown: String,
    /// The provider's type, shown under the name.
    pub kind: ProviderType,
    /// Where the button goes.
    pub href: String,
}

/// How a provider type is called on the page.
pub fn kind_label(kind: ProviderType) -> &'static str {
    match kind {
        ProviderType::Oidc => "OpenID Connect",
        ProviderType::Github => "GitHub",
        ProviderType::Gitlab => "GitLab",
        ProviderType::Google => "Google",
    }
}

/// The sign-in chooser: one button per provider, in the policy's order.
pub fn chooser(look: &Look<'_>, choices: &[Choice]) -> Response {
    let body = html! {
        p { "Choose how to sign in." }
        @for c in choices {
            a.button id={ "provider-" (c.name) } href=(c.href) {
                "Sign in with " (c.shown)
                span.kind { (kind_label(c.kind)) }
            }
        }
    };
    page(look, StatusCode::OK, "Sign in", "sign-in", Forms::None, body)
}

/// A sign-in that could not be completed.
pub fn error(look: &Look<'_>, status: StatusCode, message: &str, retry_href: &str) -> Response {
    let body = html! {
        p.reason id="reason" { (message) "." }
        a.button id="retry" href=(retry_href) { "Try again" }
    };
    page(look, status, "Sign-in failed", "sign-in-error", Forms::None, body)
}

/// The session store cannot be reached (503).
pub fn store_unavailable(look: &Look<'_>) -> Response {
    let body = html! {
        p.reason id="reason" { "Sessions cannot be checked right now. Try again in a moment." }
    };
    let mut r =
        page(look, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "store-unavailable", Forms::None, body);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// After sign-out.
pub fn signed_out(look: &Look<'_>, sign_in_href: &str) -> Response {
    let body = html! {
        p { "You are signed out of this service." }
        a.button id="sign-in-again" href=(sign_in_href) { "Sign in again" }
    };
    page(look, StatusCode::OK, "Signed out", "signed-out", Forms::None, body)
}
