//! The whole product at once: the controller on the real control plane
//! writes a policy's gateway config into its Secret; the gateway binary runs
//! with exactly that file; a real browser signs in through it at the real
//! OpenID Provider.

mod common;

use std::time::Duration;

use authgate::api::AuthPolicy;
use common::cluster::{ControllerProcess, cond_state, connect, wait_for};
use common::echo::header;
use common::{Browser, Echo, Gateway, Op, OpSettings, op};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

#[tokio::test(flavor = "multi_thread")]
async fn browser_signs_in_through_a_gateway_configured_by_the_controller() {
    let Some(c) = connect().await else { return };
    let gw_port = common::free_port();
    let redirect = format!("http://127.0.0.1:{gw_port}/oauth2/callback");
    let settings = OpSettings {
        clients: vec![op::client(common::CLIENT_ID, common::CLIENT_SECRET, &[&redirect])],
        ..OpSettings::default()
    };
    let Some(op) = Op::start(settings).await else { return };
    let Some(browser) = Browser::start().await else { return };
    let echo = Echo::start().await;

    let ns = c.namespace("e2e");
    c.apply(
        &ns.name,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: corp}}
stringData: {{client-secret: {secret}}}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {{name: corp}}
spec:
  type: oidc
  clientId: {id}
  clientSecretRef: {{name: corp, key: client-secret}}
  issuerUrl: {issuer}
  scopes: [openid, email, profile, groups]
  allowedGroups: [sre]
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: app}}
spec:
  upstream: {{url: "{upstream}"}}
  externalUrl: http://127.0.0.1:{gw_port}
  providers: [corp]
  access: {{allowedDomains: [example.com]}}
"#,
            secret = common::CLIENT_SECRET,
            id = common::CLIENT_ID,
            issuer = op.issuer_str,
            upstream = echo.url(),
        ),
    );
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    // The outer timeout fires first, so a failure prints the namespace's state.
    let ready = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for("policy Ready", Duration::from_secs(180), || async {
            let p = aps.get_opt("app").await.ok()??;
            (cond_state(&p.status?.conditions, "Ready")? == ("True".into(), "Available".into())).then_some(())
        }),
    )
    .await;
    assert!(ready.is_ok(), "policy not Ready in 120s:\n{}", c.describe(&ns.name));

    // Exactly the file the gateway pod would mount.
    let secret = c.api::<Secret>(&ns.name).get("app-auth-credentials").await.unwrap();
    let yaml = &secret.data.unwrap()["gateway.yaml"].0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let gateway = Gateway::start_from_file(&path, gw_port, &[]).await;

    browser.goto(&gateway.url("/from/controller?ok=1")).await;
    browser.sign_in_at_op("alice").await;
    let seen = browser.echo().await;
    assert_eq!(seen["path"], "/from/controller");
    assert_eq!(header(&seen, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    let bearer = header(&seen, "authorization").expect("Authorization forwarded");
    let token = bearer.strip_prefix("Bearer ").expect("Bearer scheme");
    let claims = op.verify_access_token(token).await;
    assert_eq!(claims["sub"], "alice");

    // The provider-wide group filter from the IdentityProvider is enforced:
    // bob has an example.com address but is not in `sre`.
    let Some(browser2) = Browser::start().await else { return };
    browser2.goto(&gateway.url("/")).await;
    browser2.sign_in_at_op("bob").await;
    // Wait for the 403 page itself (not the OP page being navigated away from).
    let reason = browser2.text("#access-denied #reason").await;
    assert!(reason.contains("not a member of an allowed group"), "bob must be refused: {reason}");
    let page = browser2.text("#access-denied").await;
    assert!(!page.contains("sre"), "the 403 page must not list the rules: {page}");
}
