//! Two controller replicas with leader election: exactly one reconciles,
//! and killing it hands over within the lease duration.

mod common;

use std::time::{Duration, Instant};

use authgate::api::AuthPolicy;
use common::cluster;
use common::cluster::{ControllerProcess, cond_state, connect, github_provider_yaml, policy_yaml, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

const LEASE_SECONDS: u64 = 4;

fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn ready(aps: &Api<AuthPolicy>, name: &str) -> Option<()> {
    let o = aps.get_opt(name).await.ok()??;
    (cond_state(&o.status?.conditions, "Ready")? == ("True".into(), "Available".into())).then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_one_leader_reconciles_and_a_standby_takes_over() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("ha");
    // Under the chart's RBAC, Leases may only live in the chart's namespace.
    let lease_ns = if cluster::rbac_mode() { cluster::CHART_NAMESPACE.to_owned() } else { ns.name.clone() };
    let lease_name = format!("authgate-{}", ns.name);
    let lease =
        ["--leader-election", "--lease-name", &lease_name, "--lease-namespace", &lease_ns, "--lease-seconds", "4"];
    let a = ControllerProcess::start_with(&c, &ns.name, 300, &lease);
    let b = ControllerProcess::start_with(&c, &ns.name, 300, &lease);
    let (leader, standby) = wait_for("one leader", Duration::from_secs(30), || async {
        let (ma, mb) = (a.metrics_opt().await?, b.metrics_opt().await?);
        match (gauge(&ma, "authgate_controller_leader"), gauge(&mb, "authgate_controller_leader")) {
            (1, 0) => Some((0, 1)),
            (0, 1) => Some((1, 0)),
            _ => None,
        }
    })
    .await;
    let mut procs = [a, b];

    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "v1"));
    c.apply(&ns.name, &policy_yaml("one", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    wait_for("one Ready", Duration::from_secs(90), || ready(&aps, "one")).await;
    let reconciles = |m: &str| gauge(m, "authgate_controller_reconciles_total");
    assert!(reconciles(&procs[leader].metrics().await) > 0);
    assert_eq!(reconciles(&procs[standby].metrics().await), 0, "the standby must not reconcile");
    let deployments: Api<Deployment> = c.api(&ns.name);
    let before = deployments.get("one-gateway").await.unwrap();

    // Kill the leader without letting it release the Lease.
    let killed = Instant::now();
    procs[leader].kill();
    wait_for("standby takes over", Duration::from_secs(LEASE_SECONDS * 3 + 10), || async {
        (gauge(&procs[standby].metrics().await, "authgate_controller_leader") == 1).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    assert!(takeover <= Duration::from_secs(LEASE_SECONDS * 3), "takeover took {takeover:?}");
    eprintln!("takeover after {takeover:?}");

    c.apply(&ns.name, &policy_yaml("two", &["gh"]));
    wait_for("two Ready after failover", Duration::from_secs(90), || ready(&aps, "two")).await;
    // Nothing lost or duplicated: one Deployment per policy, the first untouched.
    let all = deployments.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = all.items.iter().map(|d| d.name_any()).collect();
    names.sort();
    assert_eq!(names, ["one-gateway", "two-gateway"]);
    let after = deployments.get("one-gateway").await.unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);
}
