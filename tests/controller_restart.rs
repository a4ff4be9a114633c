//! The controller survives an apiserver restart and converges afterwards.
//! Its own test binary, so the restart disturbs no other test.

mod common;

use std::process::Command;
use std::time::Duration;

use authgate::api::AuthPolicy;
use common::cluster::{ControllerProcess, cond_state, connect, github_provider_yaml, policy_yaml, wait_for};
use kube::Api;

async fn ready(aps: &Api<AuthPolicy>, name: &str) -> Option<()> {
    let o = aps.get_opt(name).await.ok()??;
    (cond_state(&o.status?.conditions, "Ready")? == ("True".into(), "Available".into())).then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_survives_an_apiserver_restart() {
    let Some(c) = connect().await else { return };
    let (Some(script), Some(state)) = (std::env::var_os("AUTHGATE_CP_SCRIPT"), std::env::var_os("AUTHGATE_CP_STATE"))
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "AUTHGATE_CP_SCRIPT/STATE must be set in CI");
        eprintln!("SKIP: AUTHGATE_CP_SCRIPT/AUTHGATE_CP_STATE not set");
        return;
    };
    let ns = c.namespace("restart");
    let mut ctl = ControllerProcess::start(&c, &ns.name, 300);
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "v1"));
    c.apply(&ns.name, &policy_yaml("before", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    wait_for("before Ready", Duration::from_secs(90), || ready(&aps, "before")).await;

    let out = Command::new("bash").arg(&script).arg("restart-apiserver").arg(&state).output().unwrap();
    assert!(out.status.success(), "restart failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(ctl.alive(), "controller exited during the apiserver restart");

    // Work created after the restart is picked up by the same process.
    c.apply(&ns.name, &policy_yaml("after", &["gh"]));
    wait_for("after Ready", Duration::from_secs(120), || ready(&aps, "after")).await;
    assert!(ctl.alive());
    let out = c.kubectl(&[
        "get",
        "-n",
        &ns.name,
        "deploy/after-gateway",
        "secret/after-auth-credentials",
        "svc/after-gateway",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
