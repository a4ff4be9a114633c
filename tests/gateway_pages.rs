//! The pages people see, in the real browser: headless Chromium in front
//! of the real gateway and the real OpenID Provider. The chooser names the
//! service and each provider by its display name and type; the 403 says
//! why, who is signed in, what to do next and whom to ask; the
//! signed-out page; a policy's branding (title, logo, footer) on each,
//! with an HTML-looking footer shown as text. Each page is saved as a
//! screenshot under target/screenshots/ for a person to look at.

mod common;

use authgate::api::Branding;
use common::{Browser, Echo, Gateway, Op, gateway};

const FOOTER: &str = "<b>Ops</b> & friends <script>alert(1)</script>";
const LOGO: &str = "https://assets.example.com/brand/logo.png";

#[tokio::test(flavor = "multi_thread")]
async fn chooser_denied_and_signed_out_pages_name_the_service_and_show_the_branding() {
    common::init();
    let port = common::free_port();
    let Some(op) = Op::with_two_clients(port).await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let echo = Echo::start().await;
    let mut corp = gateway::oidc_provider(&op, "corp", "corp-client", "corp-secret");
    corp.display_name = Some("Corp SSO".into());
    let partner = gateway::oidc_provider(&op, "partner", "partner-client", "partner-secret");
    let mut config = gateway::config(port, &echo.url(), vec![corp, partner]);
    config.access.allowed_domains = vec!["example.com".into()];
    config.service_name = Some("grafana".into());
    config.branding = Some(Branding {
        title: Some("Grafana (production)".into()),
        logo_url: Some(LOGO.into()),
        footer: Some(FOOTER.into()),
        contact: Some("mailto:platform@example.com".into()),
    });
    let gw = Gateway::start(config).await;

    // The chooser.
    browser.goto(&gw.url("/dashboards")).await;
    let corp_button = browser.text("#sign-in #provider-corp").await;
    assert!(corp_button.contains("Sign in with Corp SSO"), "{corp_button}");
    assert!(corp_button.contains("OpenID Connect"), "{corp_button}");
    // Without a displayName an OIDC provider is named by its issuer's host.
    let partner_button = browser.text("#provider-partner").await;
    assert!(partner_button.contains("Sign in with 127.0.0.1"), "{partner_button}");
    assert!(partner_button.contains("OpenID Connect"), "{partner_button}");
    assert_branding(&browser).await;
    let shot = browser.screenshot("chooser").await;
    assert!(shot.exists());

    // eve signs in with the partner provider; her domain is not allowed.
    browser.click("#provider-partner").await;
    browser.sign_in_at_op("eve").await;
    let reason = browser.text("#access-denied #reason").await;
    assert!(reason.contains("evil.org"), "{reason}");
    let who = browser.text("#access-denied #signed-in-as").await;
    assert_eq!(who, "Signed in as eve@evil.org via 127.0.0.1.");
    assert!(browser.text("#next-steps").await.contains("another account"));
    assert_eq!(browser.text("#retry").await, "Sign in with another account");
    let retry = browser.attr("#retry", "href").await.expect("retry link");
    assert!(retry.contains("/oauth2/start") && retry.contains("prompt=login"), "{retry}");
    let contact = browser.text("#contact").await;
    assert!(contact.contains("platform@example.com"), "{contact}");
    assert_eq!(browser.attr("#contact a", "href").await.as_deref(), Some("mailto:platform@example.com"));
    assert_branding(&browser).await;
    browser.screenshot("denied").await;

    // "Sign in with another account" leads back to the chooser, and from
    // there to the OP's login form again (prompt=login).
    browser.click("#retry").await;
    let again = browser.attr("#sign-in #provider-corp", "href").await.expect("chooser link");
    assert!(again.contains("prompt=login"), "{again}");
    browser.click("#provider-corp").await;
    browser.sign_in_at_op("alice").await;
    browser.echo().await;

    // The signed-out page.
    browser.goto(&gw.url("/oauth2/sign_out")).await;
    let out = browser.text("#signed-out").await;
    assert!(out.contains("You are signed out of this service."), "{out}");
    assert_eq!(browser.text("#sign-in-again").await, "Sign in again");
    assert_branding(&browser).await;
    browser.screenshot("signed-out").await;
    browser.close().await;
}

/// The title, host, logo and footer of the current page.
async fn assert_branding(browser: &Browser) {
    assert_eq!(browser.text("#service-name").await, "Grafana (production)");
    assert_eq!(browser.text("#service-host").await, "127.0.0.1");
    assert_eq!(browser.attr("#logo", "src").await.as_deref(), Some(LOGO));
    assert_eq!(browser.attr("#logo", "referrerpolicy").await.as_deref(), Some("no-referrer"));
    // The footer is text: its tags are shown, none is an element.
    assert_eq!(browser.text("#footer").await, FOOTER);
    assert!(!browser.has("#footer b").await && !browser.has("#footer script").await);
    let title = browser.client.title().await.expect("title");
    assert!(title.ends_with("· Grafana (production)"), "{title}");
}
