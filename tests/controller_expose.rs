//! `spec.expose` against the real control plane: the generated Ingress and
//! HTTPRoute are accepted by the apiserver, route the external URL to the
//! gateway Service, follow the policy (switching kinds, garbage
//! collection), never touch a route the policy does not control, and write
//! nothing at steady state. The HTTPRoute test removes and then installs
//! the Gateway API CRDs, cluster-wide.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use authgate::api::AuthPolicy;
use common::cluster::{self, Cluster, ControllerProcess, cond_state, connect, github_provider_yaml, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::{Api, ResourceExt};

const T: Duration = Duration::from_secs(60);
const CRD: &str = "httproutes.gateway.networking.k8s.io";

/// A policy `app` in front of `app:8080` at `url`, with `expose` (a YAML flow mapping).
fn policy(url: &str, expose: &str) -> String {
    format!(
        "apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {{name: app}}\nspec:\n  upstream: {{service: {{name: app, port: 8080}}}}\n  externalUrl: {url}\n  providers: [gh]\n  expose: {expose}\n"
    )
}

const INGRESS: &str =
    "{ingress: {className: nginx, tlsSecretName: docs-tls, annotations: {example.com/owner: team-a}}}";

async fn state(aps: &Api<AuthPolicy>, type_: &str) -> Option<(String, String)> {
    cond_state(&aps.get_opt("app").await.ok()??.status?.conditions, type_)
}

fn is(state: Option<(String, String)>, status: &str, reason: &str) -> Option<()> {
    (state? == (status.to_owned(), reason.to_owned())).then_some(())
}

async fn message(aps: &Api<AuthPolicy>, type_: &str) -> String {
    let conds = aps.get("app").await.unwrap().status.unwrap().conditions;
    cluster::condition(&conds, type_).unwrap().message.clone()
}

fn patch(c: &Cluster, ns: &str, merge: &str) {
    let out = c.kubectl(&["patch", "-n", ns, "ap/app", "--type=merge", "-p", merge]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Sum of a counter over all its label sets, from /metrics text.
fn counter(text: &str, name: &str) -> u64 {
    text.lines().filter(|l| l.starts_with(name)).map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum()
}

/// Starts a controller and applies the provider and `policy_yaml`.
fn start(c: &Cluster, ns: &str, resync: u64, policy_yaml: &str) -> (ControllerProcess, Api<AuthPolicy>) {
    let ctl = ControllerProcess::start(c, ns, resync);
    c.apply(ns, &github_provider_yaml("gh", "gh-secret", "v1"));
    c.apply(ns, policy_yaml);
    (ctl, c.api(ns))
}

#[tokio::test(flavor = "multi_thread")]
async fn ingress_routes_the_external_url_follows_the_policy_and_is_garbage_collected() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("expose-ing");
    let (_ctl, aps) = start(&c, &ns.name, 300, &policy("https://Docs.example.com/wiki/", INGRESS));
    wait_for("Ready", Duration::from_secs(90), || async { is(state(&aps, "Ready").await, "True", "Available") }).await;
    let ingresses: Api<Ingress> = c.api(&ns.name);
    let ing = ingresses.get("app-gateway").await.expect("the apiserver accepted the Ingress");
    let owner = &ing.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (aps.get("app").await.unwrap().uid().unwrap().as_str(), Some(true))
    );
    assert_eq!(ing.labels()["app.kubernetes.io/managed-by"], "authgate");
    assert_eq!(ing.annotations()["example.com/owner"], "team-a");
    let spec = ing.spec.unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rule = &spec.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("docs.example.com"));
    let path = &rule.http.as_ref().unwrap().paths[0];
    assert_eq!((path.path.as_deref(), path.path_type.as_str()), (Some("/wiki"), "Prefix"));
    let backend = path.backend.service.as_ref().unwrap();
    assert_eq!(backend.name, "app-gateway");
    assert_eq!(backend.port.as_ref().unwrap().name.as_deref(), Some("http"));
    // The backend port is one the gateway Service really has.
    let svc = c.api::<Service>(&ns.name).get("app-gateway").await.unwrap();
    assert!(svc.spec.unwrap().ports.unwrap().iter().any(|p| p.name.as_deref() == Some("http")));
    let tls = &spec.tls.unwrap()[0];
    assert_eq!(
        (tls.hosts.as_deref(), tls.secret_name.as_deref()),
        (Some(&["docs.example.com".to_owned()][..]), Some("docs-tls"))
    );

    // A changed policy changes the Ingress; a removed annotation goes too.
    patch(&c, &ns.name, r#"{"spec":{"expose":{"ingress":{"annotations":null,"tlsSecretName":null}}}}"#);
    wait_for("Ingress updated", T, || async {
        let ing = ingresses.get_opt("app-gateway").await.ok()??;
        (!ing.annotations().contains_key("example.com/owner") && ing.spec?.tls.is_none()).then_some(())
    })
    .await;
    // No expose: the Ingress goes; back: it returns.
    patch(&c, &ns.name, r#"{"spec":{"expose":null}}"#);
    wait_for("Ingress deleted", T, || async { ingresses.get_opt("app-gateway").await.ok()?.is_none().then_some(()) })
        .await;
    patch(&c, &ns.name, r#"{"spec":{"expose":{"ingress":{"className":"nginx"}}}}"#);
    wait_for("Ingress recreated", T, || async { ingresses.get_opt("app-gateway").await.ok()?.map(|_| ()) }).await;

    // Deleting the policy lets the real garbage collector remove it.
    aps.delete("app", &DeleteParams::default()).await.unwrap();
    wait_for("Ingress garbage-collected", T, || async {
        ingresses.get_opt("app-gateway").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_ingress_of_the_same_name_is_left_untouched_and_named_in_status() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("expose-foreign");
    c.apply(
        &ns.name,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: app-gateway}\nspec:\n  rules:\n  - host: other.example.com\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}\n",
    );
    let ingresses: Api<Ingress> = c.api(&ns.name);
    let before = ingresses.get("app-gateway").await.unwrap();
    let (_ctl, aps) = start(&c, &ns.name, 2, &policy("https://app.example.com", INGRESS));
    wait_for("RouteConflict", T, || async { is(state(&aps, "Accepted").await, "False", "RouteConflict") }).await;
    let msg = message(&aps, "Accepted").await;
    assert!(msg.contains(&format!("Ingress {}/app-gateway", ns.name)), "{msg}");
    assert_eq!(state(&aps, "Ready").await.unwrap().0, "False");
    // The gateway's own children are written all the same.
    wait_for("gateway children", T, || async {
        c.api::<Deployment>(&ns.name).get_opt("app-gateway").await.ok()??;
        c.api::<Service>(&ns.name).get_opt("app-gateway").await.ok()?
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await; // two resyncs
    let after = ingresses.get("app-gateway").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version(), "the foreign Ingress was written");
    assert_eq!(after.spec, before.spec);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert!(after.metadata.owner_references.is_none());

    // Once it is gone the policy writes its own, at the next resync.
    ingresses.delete("app-gateway", &DeleteParams::default()).await.unwrap();
    wait_for("own Ingress", T, || async {
        let ing = ingresses.get_opt("app-gateway").await.ok()??;
        (ing.uid() != before.uid() && ing.spec?.rules?[0].host.as_deref() == Some("app.example.com")).then_some(())
    })
    .await;
    wait_for("Accepted", T, || async { is(state(&aps, "Accepted").await, "True", "Valid") }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn steady_state_with_an_ingress_writes_nothing() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("expose-steady");
    let (ctl, aps) = start(&c, &ns.name, 2, &policy("https://app.example.com/base", INGRESS));
    wait_for("Ready", Duration::from_secs(90), || async { is(state(&aps, "Ready").await, "True", "Available") }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ingresses: Api<Ingress> = c.api(&ns.name);
    let snapshot = || async {
        let ing = ingresses.get("app-gateway").await.unwrap();
        (ing.resource_version(), aps.get("app").await.unwrap().resource_version())
    };
    let (before, m1) = (snapshot().await, ctl.metrics().await);
    tokio::time::sleep(Duration::from_secs(8)).await; // four resync periods
    let (after, m2) = (snapshot().await, ctl.metrics().await);
    assert_eq!(before, after, "Ingress or policy resourceVersion changed at steady state");
    let reconciles = "authgate_controller_reconciles_total";
    assert!(counter(&m2, reconciles) > counter(&m1, reconciles) + 2, "resyncs did run:\n{m2}");
    let writes = "authgate_controller_writes_total";
    assert_eq!(counter(&m1, writes), counter(&m2, writes), "no writes at steady state");
}

/// Where scripts/setup.sh puts the Gateway API CRDs.
fn gateway_api_crds() -> PathBuf {
    if let Some(p) = std::env::var_os("AUTHGATE_GATEWAY_API_CRDS") {
        return p.into();
    }
    let cache = std::env::var_os("AUTHGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/authgate"));
    cache.join("tools/gateway-api-v1.3.0/gateway.networking.k8s.io_httproutes.yaml")
}

#[tokio::test(flavor = "multi_thread")]
async fn http_route_waits_for_the_gateway_api_without_looping_then_is_accepted() {
    let Some(c) = connect().await else { return };
    // Start without the Gateway API.
    let out = c.kubectl(&["delete", "crd", CRD, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ns = c.namespace("expose-route");
    let expose = "{httpRoute: {parentRefs: [{name: public, namespace: infra, sectionName: https}, {name: local}]}}";
    let (mut ctl, aps) = start(&c, &ns.name, 2, &policy("https://tools.example.com/app/", expose));
    wait_for("GatewayAPIMissing", T, || async { is(state(&aps, "ResolvedRefs").await, "False", "GatewayAPIMissing") })
        .await;
    let msg = message(&aps, "ResolvedRefs").await;
    assert!(msg.contains("install the Gateway API CRDs"), "{msg}");
    assert_eq!(state(&aps, "Stalled").await, Some(("True".into(), "GatewayAPIMissing".into())));
    wait_for("gateway Deployment", T, || async { c.api::<Deployment>(&ns.name).get_opt("app-gateway").await.ok()? })
        .await;
    // Nothing loops: status is not rewritten, nothing is written, and
    // reconciles come at the resync pace (every ~2 s), not in a hot loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rv, m1) = (aps.get("app").await.unwrap().resource_version(), ctl.metrics().await);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (rv2, m2) = (aps.get("app").await.unwrap().resource_version(), ctl.metrics().await);
    assert_eq!(rv, rv2, "status rewritten while the Gateway API is missing");
    let writes = "authgate_controller_writes_total";
    assert_eq!(counter(&m1, writes), counter(&m2, writes));
    let reconciles =
        counter(&m2, "authgate_controller_reconciles_total") - counter(&m1, "authgate_controller_reconciles_total");
    assert!((1..=12).contains(&reconciles), "{reconciles} reconciles in 8 s");
    assert!(ctl.alive(), "the controller survives a missing Gateway API");

    let crds = gateway_api_crds();
    if !common::require(&format!("the Gateway API CRDs ({}; scripts/setup.sh)", crds.display()), crds.exists()) {
        return;
    }
    let out = c.kubectl(&["apply", "--server-side", "-f", &crds.to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Right after the create, `kubectl wait` can find no conditions at all
    // yet and errors out instead of waiting: ask until it answers.
    wait_for("the HTTPRoute CRD Established", T, || async {
        let crd = format!("crd/{CRD}");
        c.kubectl(&["wait", "--for=condition=Established", "--timeout=5s", &crd]).status.success().then_some(())
    })
    .await;
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let routes: Api<DynamicObject> =
        Api::namespaced_with(c.client.clone(), &ns.name, &ApiResource::from_gvk_with_plural(&gvk, "httproutes"));
    let route =
        wait_for("HTTPRoute accepted by the apiserver", T, || async { routes.get_opt("app-gateway").await.ok()? })
            .await;
    assert_eq!(route.owner_references()[0].uid, aps.get("app").await.unwrap().uid().unwrap());
    let spec = &route.data["spec"];
    assert_eq!(spec["hostnames"], serde_json::json!(["tools.example.com"]));
    let parents: Vec<_> = spec["parentRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].clone(), p["namespace"].clone(), p["sectionName"].clone()))
        .collect();
    assert_eq!(
        parents,
        [
            ("public".into(), "infra".into(), "https".into()),
            ("local".into(), serde_json::Value::Null, serde_json::Value::Null)
        ]
    );
    let rule = &spec["rules"][0];
    assert_eq!(rule["matches"][0]["path"], serde_json::json!({"type": "PathPrefix", "value": "/app"}));
    assert_eq!(
        (rule["backendRefs"][0]["name"].as_str(), rule["backendRefs"][0]["port"].as_i64()),
        (Some("app-gateway"), Some(80))
    );
    wait_for("Ready", Duration::from_secs(90), || async { is(state(&aps, "Ready").await, "True", "Available") }).await;

    // Switching to an Ingress deletes the HTTPRoute.
    patch(&c, &ns.name, r#"{"spec":{"expose":{"httpRoute":null,"ingress":{}}}}"#);
    wait_for("HTTPRoute deleted", T, || async { routes.get_opt("app-gateway").await.ok()?.is_none().then_some(()) })
        .await;
    wait_for("Ingress", T, || async { c.api::<Ingress>(&ns.name).get_opt("app-gateway").await.ok()? }).await;

    // And back: deleting the policy lets the real garbage collector remove
    // the HTTPRoute too.
    patch(&c, &ns.name, r#"{"spec":{"expose":{"ingress":null,"httpRoute":{"parentRefs":[{"name":"local"}]}}}}"#);
    wait_for("HTTPRoute again", T, || async { routes.get_opt("app-gateway").await.ok()?.map(|_| ()) }).await;
    aps.delete("app", &DeleteParams::default()).await.unwrap();
    wait_for("HTTPRoute garbage-collected", T, || async {
        routes.get_opt("app-gateway").await.ok()?.is_none().then_some(())
    })
    .await;
}
