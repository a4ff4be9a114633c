//! The one layout every gateway page shares: the service's name and
//! branding on top, the page's own content, the policy's footer, and the
//! security headers. Rendered with maud, which escapes every value it
//! interpolates; nothing here builds HTML from strings.

use axum::response::{Html, IntoResponse, Response};
use http::header::CONTENT_SECURITY_POLICY;
use http::{HeaderValue, StatusCode};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::Branding;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d232b;display:flex;\
justify-content:center;padding-top:10vh;margin:0}\
main{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:2rem 2.5rem;max-width:32rem;\
box-shadow:0 2px 8px rgba(0,0,0,.05)}\
header{margin:0 0 1.2rem;padding-bottom:1rem;border-bottom:1px solid #eef0f3}\
header img{max-height:48px;max-width:12rem;display:block;margin-bottom:.6rem}\
.service{font-size:1.05rem;font-weight:600}.host{color:#5b6572;font-size:.9rem}\
h1{font-size:1.35rem;margin:0 0 1rem}p{line-height:1.5}\
a.button{display:block;margin:.6rem 0;padding:.7rem 1rem;border:1px solid #b9c0c9;border-radius:6px;\
text-decoration:none;color:#1d232b;text-align:center}a.button:hover{background:#eef1f4}\
.kind{display:block;color:#5b6572;font-size:.8rem}.reason{font-weight:600}\
footer{margin-top:1.5rem;color:#5b6572;font-size:.85rem;white-space:pre-wrap}\
dt{font-weight:600}dd{margin:0 0 .5rem 0;word-break:break-all}\
.warn{background:#fff4e5;border:1px solid #f0c58a;padding:.7rem 1rem;border-radius:6px}\
input[type=text]{font-size:1.3rem;letter-spacing:.15rem;padding:.4rem;width:12rem;text-transform:uppercase}\
button{padding:.6rem 1.2rem;margin:.6rem .6rem 0 0;font-size:1rem}";

/// Who the pages speak for: the service being accessed and its branding.
#[derive(Clone, Copy, Debug, Default)]
pub struct Look<'a> {
    /// The policy's name.
    pub service: Option<&'a str>,
    /// The external URL's host.
    pub host: Option<&'a str>,
    /// The policy's `branding`.
    pub branding: Option<&'a Branding>,
}

impl Look<'_> {
    /// The service's name: the branding's title, else the policy's name.
    pub fn name(&self) -> Option<&str> {
        self.branding.and_then(|b| b.title.as_deref()).or(self.service).filter(|s| !s.is_empty())
    }

    /// The logo URL and its origin, for an https:// logo only.
    pub fn logo(&self) -> Option<(&str, String)> {
        let raw = self.branding?.logo_url.as_deref()?;
        let url = url::Url::parse(raw).ok()?;
        (url.scheme() == "https" && url.host_str().is_some()).then(|| (raw, url.origin().ascii_serialization()))
    }
}

/// Where the page's forms may post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forms {
    /// Nowhere: the page has no form.
    None,
    /// To this gateway only.
    SelfOnly,
}

/// The page's Content-Security-Policy: nothing but inline styles, no
/// framing, and images from `img_origin` only.
pub fn csp(forms: Forms, img_origin: Option<&str>) -> String {
    let form = match forms {
        Forms::None => "'none'",
        Forms::SelfOnly => "'self'",
    };
    let mut csp = format!("{}; form-action {form}", super::BASE_CSP);
    if let Some(origin) = img_origin {
        csp.push_str("; img-src ");
        csp.push_str(origin);
    }
    csp
}

/// The complete page: `title` as heading, `id` on `<main>`, `body` inside.
pub fn page(look: &Look<'_>, status: StatusCode, title: &str, id: &str, forms: Forms, body: Markup) -> Response {
    let logo = look.logo();
    let name = look.name();
    let branding = look.branding;
    let footer = branding.and_then(|b| b.footer.as_deref()).filter(|f| !f.is_empty());
    let tab_title = match name {
        Some(n) => format!("{title} · {n}"),
        None => title.to_owned(),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (tab_title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main id=(id) {
                    @if logo.is_some() || name.is_some() || look.host.is_some() {
                        header id="service" {
                            @if let Some((src, _)) = &logo {
                                img id="logo" src=(src) alt="" referrerpolicy="no-referrer";
                            }
                            @if let Some(n) = name { div.service id="service-name" { (n) } }
                            @if let Some(h) = look.host { div.host id="service-host" { (h) } }
                        }
                    }
                    h1 { (title) }
                    (body)
                    @if let Some(f) = footer { footer id="footer" { (f) } }
                }
            }
        }
    };
    let mut response = super::harden((status, Html(markup.into_string())).into_response());
    let policy = csp(forms, logo.as_ref().map(|(_, origin)| origin.as_str()));
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}
