//! The layout's promises: every dynamic value is escaped, and the only
//! image origin the pages allow is the logo's.

use axum::response::Response;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};

use super::*;
use crate::api::{Branding, ProviderType};

const EVIL: &str = r#"<b id="x">'&'</b>"#;
const EVIL_ESCAPED: &str = "&lt;b id=&quot;x&quot;&gt;'&amp;'&lt;/b&gt;";

async fn body(r: Response) -> String {
    String::from_utf8(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

fn branding(logo: Option<&str>) -> Branding {
    Branding {
        title: Some(format!("title{EVIL}")),
        logo_url: logo.map(str::to_owned),
        footer: Some(format!("footer{EVIL}")),
        contact: Some(format!("contact{EVIL}")),
    }
}

fn csp(r: &Response) -> String {
    r.headers().get(CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_dynamic_value_is_escaped() {
    let b = branding(Some("https://cdn.example.com/logo.png?a=1&b=\"2\""));
    let look = Look { service: Some("svc"), host: Some("app.example.com"), branding: Some(&b) };
    let choice = Choice {
        name: format!("n{EVIL}"),
        shown: format!("shown{EVIL}"),
        kind: ProviderType::Oidc,
        href: format!("/start?{EVIL}"),
    };
    let who = Who { user: &format!("user{EVIL}"), provider: &format!("idp{EVIL}") };
    let pages = [
        chooser(&look, std::slice::from_ref(&choice)),
        denied(&look, &format!("reason{EVIL}"), Some(who), &format!("/retry{EVIL}")),
        error(&look, StatusCode::BAD_REQUEST, &format!("msg{EVIL}"), &format!("/retry{EVIL}")),
        signed_out(&look, &format!("/again{EVIL}")),
        store_unavailable(&look),
    ];
    for page in pages {
        let text = body(page).await;
        assert!(!text.contains(EVIL), "raw markup in {text}");
        assert!(!text.contains("<b "), "raw markup in {text}");
        for needle in ["title", "footer"] {
            assert!(text.contains(&format!("{needle}{EVIL_ESCAPED}")), "{needle} escaped in {text}");
        }
        assert!(text.contains(r#"src="https://cdn.example.com/logo.png?a=1&amp;b=&quot;2&quot;""#), "{text}");
    }
    let denied_text = body(denied(&look, &format!("reason{EVIL}"), Some(who), "/r")).await;
    for needle in ["reason", "user", "idp", "contact"] {
        assert!(denied_text.contains(&format!("{needle}{EVIL_ESCAPED}")), "{needle} escaped in {denied_text}");
    }
    let chooser_text = body(chooser(&look, &[choice])).await;
    for needle in [r#"id="provider-n&lt;b"#, "shown&lt;b", "/start?&lt;b"] {
        assert!(chooser_text.contains(needle), "{needle} in {chooser_text}");
    }
}

#[tokio::test]
async fn img_src_allows_exactly_the_logo_origin() {
    let b = branding(Some("https://cdn.example.com:8443/brand/logo.svg"));
    let look = Look { service: None, host: None, branding: Some(&b) };
    let r = signed_out(&look, "/start");
    let policy = csp(&r);
    assert!(policy.ends_with("; img-src https://cdn.example.com:8443"), "{policy}");
    assert_eq!(policy.matches("img-src").count(), 1);
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    // harden, applied again by the routes, keeps the page's own policy.
    assert_eq!(csp(&harden(r)), policy);
}

#[tokio::test]
async fn no_logo_or_a_non_https_logo_allows_no_images() {
    for logo in
        [None, Some("http://cdn.example.com/logo.png"), Some("javascript:alert(1)"), Some("data:image/png;base64,AA")]
    {
        let b = branding(logo);
        let look = Look { service: None, host: None, branding: Some(&b) };
        let r = chooser(&look, &[]);
        let policy = csp(&r);
        assert!(!policy.contains("img-src"), "{logo:?}: {policy}");
        let text = body(r).await;
        assert!(!text.contains("<img"), "{logo:?}: {text}");
    }
}

#[tokio::test]
async fn denied_page_is_403_and_hardened() {
    let r = denied(&Look::default(), "the email domain <evil>.org is not allowed", None, "/oauth2/start");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    assert!(csp(&r).contains("frame-ancestors 'none'") && csp(&r).contains("form-action 'none'"));
    let text = body(r).await;
    assert!(text.contains("&lt;evil&gt;.org"));
    assert!(!text.contains("<evil>"));
}

#[tokio::test]
async fn contact_is_a_link_only_for_mailto_and_https() {
    for (contact, link) in [
        ("mailto:help@example.com", Some(r#"<a href="mailto:help@example.com">help@example.com</a>"#)),
        ("https://help.example.com/access", Some(r#"<a href="https://help.example.com/access">"#)),
        ("javascript:alert(1)", None),
        ("#platform on Slack", None),
    ] {
        let b = Branding { contact: Some(contact.into()), ..Branding::default() };
        let look = Look { branding: Some(&b), ..Look::default() };
        let text = body(denied(&look, "no", None, "/r")).await;
        match link {
            Some(l) => assert!(text.contains(l), "{contact}: {text}"),
            None => assert!(!text.contains("<a href=\"javascript") && text.contains(contact), "{contact}: {text}"),
        }
    }
}

#[tokio::test]
async fn the_service_is_named_by_title_else_policy_and_host() {
    let look = Look { service: Some("grafana"), host: Some("grafana.example.com"), branding: None };
    let text = body(chooser(&look, &[])).await;
    assert!(text.contains(r#"<div class="service" id="service-name">grafana</div>"#), "{text}");
    assert!(text.contains("grafana.example.com"));
    assert!(text.contains("<title>Sign in · grafana</title>"), "{text}");
    let b = Branding { title: Some("Grafana (prod)".into()), ..Branding::default() };
    let look = Look { branding: Some(&b), ..look };
    assert!(body(chooser(&look, &[])).await.contains(">Grafana (prod)</div>"));
}
