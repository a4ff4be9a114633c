//! 403: the user signed in but may not enter. The page says why (in terms
//! of the user's own data, never the rules), who they are signed in as,
//! and what to do next: sign in with another account, or whom to ask.

use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};

use super::layout::{Forms, Look, page};

/// Who was refused: the user name and the provider's shown name.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// The user as the provider named them.
    pub user: &'a str,
    /// The provider's display name.
    pub provider: &'a str,
}

/// `contact` as a link when it is a `mailto:` or `https://` URL, else as
/// text.
fn contact(contact: &str) -> Markup {
    let link = contact.starts_with("https://") || contact.starts_with("mailto:");
    let text = contact.strip_prefix("mailto:").unwrap_or(contact);
    html! {
        p id="contact" {
            "If you think you should have access, ask "
            @if link { a href=(contact) { (text) } } @else { (text) }
            "."
        }
    }
}

/// The access-denied page. `retry_href` signs in again with the
/// provider's login form forced (another account).
pub fn denied(look: &Look<'_>, reason: &str, who: Option<Who<'_>>, retry_href: &str) -> Response {
    let ask = look.branding.and_then(|b| b.contact.as_deref()).filter(|c| !c.is_empty());
    let body = html! {
        p { "You signed in, but you are not allowed to access this service:" }
        p.reason id="reason" { (reason) "." }
        @if let Some(w) = who {
            p id="signed-in-as" { "Signed in as " strong { (w.user) } " via " (w.provider) "." }
        }
        p id="next-steps" { "If you have another account that may access this service, sign in with it." }
        a.button id="retry" href=(retry_href) { "Sign in with another account" }
        @match ask {
            Some(c) => (contact(c)),
            None => p id="contact" { "If you think this is wrong, ask the service's owner for access." },
        }
    };
    page(look, StatusCode::FORBIDDEN, "Access denied", "access-denied", Forms::None, body)
}
