//! The controller against a real kube-apiserver, controller-manager,
//! scheduler and kwok node (started by `make test`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use authgate::api::{AuthPolicy, IdentityProvider};
use common::cluster;
use common::cluster::{ControllerProcess, cond_state, connect, github_provider_yaml, policy_yaml, repo, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

const T: Duration = Duration::from_secs(60);

async fn idp_state(api: &Api<IdentityProvider>, name: &str, type_: &str) -> Option<(String, String)> {
    let o = api.get_opt(name).await.ok()??;
    cond_state(&o.status?.conditions, type_)
}

async fn ap_state(api: &Api<AuthPolicy>, name: &str, type_: &str) -> Option<(String, String)> {
    let o = api.get_opt(name).await.ok()??;
    cond_state(&o.status?.conditions, type_)
}

fn is(state: Option<(String, String)>, status: &str, reason: &str) -> Option<()> {
    (state? == (status.to_owned(), reason.to_owned())).then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_apply_print_columns_and_become_ready() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("examples");
    let out = c.kubectl(&["apply", "-n", &ns.name, "-f", &repo("examples").to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let idps: Api<IdentityProvider> = c.api(&ns.name);
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    for name in ["github", "gitlab", "google"] {
        wait_for(&format!("{name} Ready"), T, || async { is(idp_state(&idps, name, "Ready").await, "True", "Ready") })
            .await;
    }
    // The example OIDC issuer is not reachable here: reported, not hidden.
    wait_for("corp-oidc DiscoveryFailed", T, || async {
        is(idp_state(&idps, "corp-oidc", "ResolvedRefs").await, "False", "DiscoveryFailed")
    })
    .await;
    wait_for("wiki ProviderNotReady", T, || async {
        is(ap_state(&aps, "wiki", "Ready").await, "False", "ProviderNotReady")
    })
    .await;

    let out = c.kubectl(&["wait", "-n", &ns.name, "--for=condition=Ready", "--timeout=60s", "idp/github"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        c.kubectl(&["wait", "-n", &ns.name, "--for=condition=Ready", "--timeout=90s", "ap/grafana", "ap/ci-dashboard"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A forward-auth-only policy (no upstream) still gets its gateway, which
    // serves sign-in and the auth endpoints.
    let out = c.kubectl(&["wait", "-n", &ns.name, "--for=condition=Ready", "--timeout=90s", "ap/kibana"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = c.kubectl(&[
        "get",
        "secret",
        "-n",
        &ns.name,
        "kibana-auth-credentials",
        "-o",
        "jsonpath={.data.gateway\\.yaml}",
    ]);
    let yaml = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret.stdout).unwrap();
    let config = authgate::gateway::config::GatewayConfig::from_yaml(std::str::from_utf8(&yaml).unwrap()).unwrap();
    assert_eq!(config.upstream, None);
    assert_eq!(config.forward_auth.map(|f| f.trusted_proxies), Some(vec!["10.0.0.0/8".to_owned()]));

    let text = |args: &[&str]| String::from_utf8(c.kubectl(args).stdout).unwrap();
    let idp_table = text(&["get", "idp", "-n", &ns.name]);
    let header: Vec<&str> = idp_table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "READY", "REASON", "AGE"], "{idp_table}");
    let github_row: Vec<&str> =
        idp_table.lines().find(|l| l.starts_with("github")).unwrap().split_whitespace().collect();
    assert_eq!(&github_row[..4], ["github", "github", "True", "Ready"], "{idp_table}");
    let oidc_row = idp_table.lines().find(|l| l.starts_with("corp-oidc")).unwrap();
    assert!(
        oidc_row.contains("oidc") && oidc_row.contains("False") && oidc_row.contains("DiscoveryFailed"),
        "{idp_table}"
    );
    let wide = text(&["get", "identityproviders", "-n", &ns.name, "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("MESSAGE"), "{wide}");

    let ap_table = text(&["get", "ap", "-n", &ns.name]);
    let header: Vec<&str> = ap_table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PROVIDERS", "UPSTREAM", "READY", "REASON", "AGE"], "{ap_table}");
    let grafana = ap_table.lines().find(|l| l.starts_with("grafana")).unwrap();
    assert!(
        grafana.contains("[\"github\"]")
            && grafana.contains("http://grafana.")
            && grafana.contains("True")
            && grafana.contains("Available"),
        "{ap_table}"
    );

    let all = text(&["get", "authgate", "-n", &ns.name]);
    assert!(
        all.contains("identityprovider.authgate.dev/github") && all.contains("authpolicy.authgate.dev/grafana"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admission_rejects_invalid_resources_with_clear_messages() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("admission");
    let mut dir: Vec<_> =
        std::fs::read_dir(repo("tests/fixtures/invalid")).unwrap().map(|e| e.unwrap().path()).collect();
    dir.sort();
    assert!(dir.len() >= 10);
    for path in &dir {
        let text = std::fs::read_to_string(path).unwrap();
        let expect = text.lines().next().unwrap().trim_start_matches("# expect: ");
        let out = c.kubectl(&["apply", "-n", &ns.name, "-f", &path.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was admitted", path.display());
        assert!(stderr.contains(expect), "{}: expected {expect:?} in: {stderr}", path.display());
    }
    // `type` is immutable.
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "v1"));
    let out = c.kubectl(&[
        "patch",
        "-n",
        &ns.name,
        "idp/gh",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"gitlab","allowedOrgs":null}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("type is immutable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_type_is_reported_and_deleting_the_winner_promotes_the_next() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("dup");
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let idps: Api<IdentityProvider> = c.api(&ns.name);
    c.apply(&ns.name, &github_provider_yaml("first", "s1", "one"));
    wait_for("first Ready", T, || async { is(idp_state(&idps, "first", "Ready").await, "True", "Ready") }).await;
    // creationTimestamp has second resolution; make the order unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.apply(&ns.name, &github_provider_yaml("second", "s2", "two"));
    wait_for("second DuplicateType", T, || async {
        is(idp_state(&idps, "second", "Accepted").await, "False", "DuplicateType")
    })
    .await;
    let second = idps.get("second").await.unwrap();
    let conds = second.status.unwrap().conditions;
    assert_eq!(cond_state(&conds, "Ready"), Some(("False".into(), "DuplicateType".into())));
    assert_eq!(cond_state(&conds, "Stalled"), Some(("True".into(), "DuplicateType".into())));
    let msg = &cluster::condition(&conds, "Accepted").unwrap().message;
    assert!(msg.contains("\"first\""), "message must name the winner: {msg}");
    assert_eq!(idp_state(&idps, "first", "Ready").await, Some(("True".into(), "Ready".into())));
    // A DuplicateType event was published for the loser.
    let events =
        String::from_utf8(c.kubectl(&["get", "events.events.k8s.io", "-n", &ns.name, "-o", "json"]).stdout).unwrap();
    assert!(events.contains("DuplicateType"), "no DuplicateType event");

    idps.delete("first", &DeleteParams::default()).await.unwrap();
    wait_for("second promoted", T, || async { is(idp_state(&idps, "second", "Ready").await, "True", "Ready") }).await;
    let conds = idps.get("second").await.unwrap().status.unwrap().conditions;
    assert!(cluster::condition(&conds, "Stalled").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_secret_is_reported_and_creating_it_makes_the_provider_ready() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("secret");
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let idps: Api<IdentityProvider> = c.api(&ns.name);
    let yaml = github_provider_yaml("gh", "late-secret", "v1");
    let idp_only = yaml.split("---").nth(1).unwrap();
    c.apply(&ns.name, idp_only);
    wait_for("SecretNotFound", T, || async {
        is(idp_state(&idps, "gh", "ResolvedRefs").await, "False", "SecretNotFound")
    })
    .await;
    assert_eq!(idp_state(&idps, "gh", "Ready").await, Some(("False".into(), "SecretNotFound".into())));
    // The Secret watch reacts: no restart, no waiting for a resync.
    c.apply(&ns.name, yaml.split("---").next().unwrap());
    wait_for("Ready after Secret appears", Duration::from_secs(20), || async {
        is(idp_state(&idps, "gh", "Ready").await, "True", "Ready")
    })
    .await;
}

/// A local OpenID issuer whose discovery document claims `claimed_issuer`.
async fn discovery_server(claimed_issuer: Option<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let issuer = claimed_issuer.unwrap_or_else(|| base.clone());
    let b = base.clone();
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let (issuer, b) = (issuer.clone(), b.clone());
            async move {
                axum::Json(serde_json::json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{b}/auth"),
                    "token_endpoint": format!("{b}/token"),
                    "userinfo_endpoint": format!("{b}/me"),
                    "jwks_uri": format!("{b}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"]
                }))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_discovery_resolves_endpoints_and_reports_issuer_mismatch() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("oidc");
    let good = discovery_server(None).await;
    let liar = discovery_server(Some("https://someone-else.example.com".into())).await;
    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let idps: Api<IdentityProvider> = c.api(&ns.name);
    let idp = |name: &str, issuer: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{client-secret: x}}\n---\napiVersion: authgate.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: {name}}}\nspec: {{type: oidc, clientId: c, clientSecretRef: {{name: {name}, key: client-secret}}, issuerUrl: '{issuer}'}}\n"
        )
    };
    c.apply(&ns.name, &idp("good", &good));
    wait_for("good Ready", T, || async { is(idp_state(&idps, "good", "Ready").await, "True", "Ready") }).await;
    let endpoints = idps.get("good").await.unwrap().status.unwrap().endpoints.unwrap();
    assert_eq!(endpoints.issuer.as_deref(), Some(good.as_str()));
    assert_eq!(endpoints.token_url, format!("{good}/token"));
    assert_eq!(endpoints.jwks_url, Some(format!("{good}/jwks")));

    // Only one oidc provider per namespace: use a second namespace for the liar.
    let ns2 = c.namespace("oidc-liar");
    let _ctl2 = ControllerProcess::start(&c, &ns2.name, 300);
    let idps2: Api<IdentityProvider> = c.api(&ns2.name);
    c.apply(&ns2.name, &idp("liar", &liar));
    wait_for("IssuerMismatch", T, || async {
        is(idp_state(&idps2, "liar", "ResolvedRefs").await, "False", "IssuerMismatch")
    })
    .await;
    let conds = idps2.get("liar").await.unwrap().status.unwrap().conditions;
    let msg = &cluster::condition(&conds, "Ready").unwrap().message;
    assert!(msg.contains("someone-else.example.com") && msg.contains(&liar), "{msg}");
    assert_eq!(cond_state(&conds, "Stalled"), Some(("True".into(), "IssuerMismatch".into())));
}

struct Children {
    secret: Secret,
    deployment: Deployment,
    service: Service,
}

async fn children(c: &cluster::Cluster, ns: &str, policy: &str) -> Option<Children> {
    let secret = c.api::<Secret>(ns).get_opt(&format!("{policy}-auth-credentials")).await.ok()??;
    let deployment = c.api::<Deployment>(ns).get_opt(&format!("{policy}-gateway")).await.ok()??;
    let service = c.api::<Service>(ns).get_opt(&format!("{policy}-gateway")).await.ok()??;
    Some(Children { secret, deployment, service })
}

fn secret_value(s: &Secret, key: &str) -> String {
    String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn config_hash(d: &Deployment) -> String {
    d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()["authgate.dev/config-hash"].clone()
}

async fn ready_policy(c: &cluster::Cluster, ns: &str, ctl_resync: u64) -> (ControllerProcess, Api<AuthPolicy>) {
    let ctl = ControllerProcess::start(c, ns, ctl_resync);
    c.apply(ns, &github_provider_yaml("gh", "gh-secret", "first-secret"));
    c.apply(ns, &policy_yaml("app", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(ns);
    wait_for("policy Ready", Duration::from_secs(90), || async {
        is(ap_state(&aps, "app", "Ready").await, "True", "Available")
    })
    .await;
    (ctl, aps)
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_children_are_owned_hardened_and_garbage_collected() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("children");
    let (_ctl, aps) = ready_policy(&c, &ns.name, 300).await;
    let policy = aps.get("app").await.unwrap();
    let ch = children(&c, &ns.name, "app").await.expect("children exist");
    for meta in [&ch.secret.metadata, &ch.deployment.metadata, &ch.service.metadata] {
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, policy.uid().unwrap());
        assert_eq!(owner.controller, Some(true));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "authgate");
        assert_eq!(labels["authgate.dev/policy"], "app");
        // Argo CD's tracking label stays the Argo CD application's.
        assert!(!labels.contains_key("app.kubernetes.io/instance"), "{labels:?}");
    }
    // The Secret holds a complete config and a long random cookie key.
    let yaml = secret_value(&ch.secret, "gateway.yaml");
    let cfg = authgate::gateway::GatewayConfig::from_yaml(&yaml).unwrap();
    assert_eq!(cfg.providers[0].client_secret.expose(), "first-secret");
    assert_eq!(cfg.callback_url().as_str(), "https://app.example.com/oauth2/callback");
    use base64::Engine;
    let key =
        base64::engine::general_purpose::STANDARD.decode(secret_value(&ch.secret, "COOKIE_ENCRYPTION_KEY")).unwrap();
    assert!(key.len() >= 64);
    assert_eq!(secret_value(&ch.secret, "OAUTH_CLIENT_ID"), "client-gh");
    assert_eq!(secret_value(&ch.secret, "OAUTH_CALLBACK_URL"), "https://app.example.com/oauth2/callback");
    assert_eq!(secret_value(&ch.secret, "OAUTH_REQUESTED_SCOPES"), "read:org,user:email");
    // Hardened pods.
    let pod = ch.deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let ctr = &pod.containers[0];
    let sc = ctr.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_owned()][..]));
    // Probes and metrics on their own port, not the one behind the Service.
    for probe in [&ctr.readiness_probe, &ctr.liveness_probe] {
        let port = &probe.as_ref().unwrap().http_get.as_ref().unwrap().port;
        assert_eq!(*port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("ops".into()));
    }
    let ports: Vec<_> =
        ctr.ports.as_ref().unwrap().iter().map(|p| (p.name.clone().unwrap(), p.container_port)).collect();
    assert_eq!(ports, [("http".to_owned(), 4180), ("ops".to_owned(), 4181)]);
    assert_eq!(cfg.ops_listen.port(), 4181);
    // A cookie name of its own, so policies sharing a domain never collide.
    assert_eq!(cfg.session.cookie_name, authgate::gateway::config::policy_cookie_name(&ns.name, "app"));
    assert_eq!(ctr.args.as_ref().unwrap()[..], ["gateway", "--config", "/etc/authgate/gateway.yaml"]);
    assert!(!config_hash(&ch.deployment).contains("first-secret"));

    // A deleted Service is recreated.
    c.api::<Service>(&ns.name).delete("app-gateway", &DeleteParams::default()).await.unwrap();
    wait_for("Service recreated", T, || async {
        let v = c.api::<Service>(&ns.name).get_opt("app-gateway").await.ok()??;
        (v.metadata.uid != ch.service.metadata.uid).then_some(())
    })
    .await;
    wait_for("Ready again", T, || async { is(ap_state(&aps, "app", "Ready").await, "True", "Available") }).await;

    // Deleting the policy lets the real garbage collector remove the children.
    aps.delete("app", &DeleteParams::default()).await.unwrap();
    wait_for("children garbage-collected", Duration::from_secs(60), || async {
        let s = c.api::<Secret>(&ns.name).get_opt("app-auth-credentials").await.ok()?;
        let d = c.api::<Deployment>(&ns.name).get_opt("app-gateway").await.ok()?;
        let v = c.api::<Service>(&ns.name).get_opt("app-gateway").await.ok()?;
        (s.is_none() && d.is_none() && v.is_none()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_secret_change_reaches_the_secret_without_rolling_pods_and_keeps_the_cookie_key() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("rotate");
    let (_ctl, _aps) = ready_policy(&c, &ns.name, 300).await;
    let before = children(&c, &ns.name, "app").await.unwrap();
    let hash_before = config_hash(&before.deployment);
    let key_before = secret_value(&before.secret, "COOKIE_ENCRYPTION_KEY");
    c.apply(&ns.name, github_provider_yaml("gh", "gh-secret", "second-secret").split("---").next().unwrap());
    let after = wait_for("the new client secret", T, || async {
        let ch = children(&c, &ns.name, "app").await?;
        (secret_value(&ch.secret, "OAUTH_CLIENT_SECRET") == "second-secret").then_some(ch)
    })
    .await;
    assert_eq!(secret_value(&after.secret, "COOKIE_ENCRYPTION_KEY"), key_before);
    // Running gateways reload the file: the pod template stays as it was.
    let hash = config_hash(&after.deployment);
    assert_eq!(hash, hash_before);
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_naming_a_missing_provider_keeps_the_last_good_children() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("lastgood");
    let (_ctl, aps) = ready_policy(&c, &ns.name, 300).await;
    let before = children(&c, &ns.name, "app").await.unwrap();
    let out =
        c.kubectl(&["patch", "-n", &ns.name, "ap/app", "--type=merge", "-p", r#"{"spec":{"providers":["nope"]}}"#]);
    assert!(out.status.success());
    wait_for("ProviderNotFound", T, || async { is(ap_state(&aps, "app", "Ready").await, "False", "ProviderNotFound") })
        .await;
    let conds = aps.get("app").await.unwrap().status.unwrap().conditions;
    let msg = &cluster::condition(&conds, "Ready").unwrap().message;
    assert!(msg.contains("\"nope\"") && msg.contains("keeps serving"), "{msg}");
    let after = children(&c, &ns.name, "app").await.unwrap();
    assert_eq!(after.secret.data, before.secret.data);
    assert_eq!(after.secret.resource_version(), before.secret.resource_version());
    assert_eq!(after.deployment.spec, before.deployment.spec);
    assert_eq!(after.deployment.metadata.generation, before.deployment.metadata.generation);
    // An unrestricted public provider is refused the same way.
    let out = c.kubectl(&[
        "patch",
        "-n",
        &ns.name,
        "idp/gh",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/allowedOrgs"}]"#,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = c.kubectl(&["patch", "-n", &ns.name, "ap/app", "--type=merge", "-p", r#"{"spec":{"providers":["gh"]}}"#]);
    assert!(out.status.success());
    wait_for("NoAccessRestriction", T, || async {
        is(ap_state(&aps, "app", "Accepted").await, "False", "NoAccessRestriction")
    })
    .await;
    let again = children(&c, &ns.name, "app").await.unwrap();
    assert_eq!(again.secret.data, before.secret.data);
    assert_eq!(again.service.metadata.uid, before.service.metadata.uid);

    // A policy that was never accepted gets no children at all, not even a Service.
    c.apply(&ns.name, &policy_yaml("fresh", &["nope"]));
    wait_for("fresh ProviderNotFound", T, || async {
        is(ap_state(&aps, "fresh", "Ready").await, "False", "ProviderNotFound")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(c.api::<Secret>(&ns.name).get_opt("fresh-auth-credentials").await.unwrap().is_none());
    assert!(c.api::<Deployment>(&ns.name).get_opt("fresh-gateway").await.unwrap().is_none());
    assert!(c.api::<Service>(&ns.name).get_opt("fresh-gateway").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn steady_state_writes_nothing_over_several_resyncs() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("steady");
    let (ctl, aps) = ready_policy(&c, &ns.name, 2).await;
    let idps: Api<IdentityProvider> = c.api(&ns.name);
    // Let the Ready flip and its Event settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snapshot = || async {
        let ch = children(&c, &ns.name, "app").await.unwrap();
        let mut m = BTreeMap::new();
        m.insert("idp", idps.get("gh").await.unwrap().resource_version());
        m.insert("policy", aps.get("app").await.unwrap().resource_version());
        m.insert("secret", ch.secret.resource_version());
        m.insert("deployment", ch.deployment.resource_version());
        m.insert("service", ch.service.resource_version());
        m
    };
    let writes = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("authgate_controller_writes_total"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let reconciles = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("authgate_controller_reconciles_total"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let before = snapshot().await;
    let m1 = ctl.metrics().await;
    tokio::time::sleep(Duration::from_secs(8)).await; // four resync periods
    let after = snapshot().await;
    let m2 = ctl.metrics().await;
    assert_eq!(before, after, "resourceVersions changed at steady state");
    assert!(reconciles(&m2) > reconciles(&m1) + 2, "resyncs did run:\n{m2}");
    assert_eq!(writes(&m1), writes(&m2), "no writes at steady state");
}

#[tokio::test(flavor = "multi_thread")]
async fn unready_gateway_pods_make_the_policy_not_ready() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("unready");
    let (_ctl, aps) = ready_policy(&c, &ns.name, 300).await;
    let pods: Api<Pod> = c.api(&ns.name);
    let list = pods.list(&ListParams::default().labels("authgate.dev/policy=app")).await.unwrap();
    assert!(!list.items.is_empty());
    for pod in &list.items {
        let name = pod.name_any();
        // Tell kwok to leave this pod's status alone, then mark it unready.
        let out = c.kubectl(&["annotate", "-n", &ns.name, "pod", &name, "kwok.x-k8s.io/status=custom", "--overwrite"]);
        assert!(out.status.success());
        let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"TestUnready"},{"type":"ContainersReady","status":"False","reason":"TestUnready"}]}}"#;
        let out = c.kubectl(&["patch", "-n", &ns.name, "pod", &name, "--subresource=status", "-p", patch]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    wait_for("GatewayUnavailable", T, || async {
        is(ap_state(&aps, "app", "Ready").await, "False", "GatewayUnavailable")
    })
    .await;
    let conds = aps.get("app").await.unwrap().status.unwrap().conditions;
    assert!(cluster::condition(&conds, "Ready").unwrap().message.contains("0 of 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_key_rotation_keeps_the_previous_key() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("rotation");
    let (_ctl, _aps) = ready_policy(&c, &ns.name, 300).await;
    let before = children(&c, &ns.name, "app").await.unwrap();
    let old_key = secret_value(&before.secret, "COOKIE_ENCRYPTION_KEY");
    let out = c.kubectl(&["annotate", "-n", &ns.name, "ap/app", "authgate.dev/rotate-cookie-key=2026-11-23"]);
    assert!(out.status.success());
    let after = wait_for("rotated key", T, || async {
        let ch = children(&c, &ns.name, "app").await?;
        (secret_value(&ch.secret, "COOKIE_ENCRYPTION_KEY") != old_key).then_some(ch)
    })
    .await;
    assert_eq!(secret_value(&after.secret, "COOKIE_ENCRYPTION_KEY_PREVIOUS"), old_key);
    let cfg = authgate::gateway::GatewayConfig::from_yaml(&secret_value(&after.secret, "gateway.yaml")).unwrap();
    assert_eq!(cfg.session.keys.len(), 2);
    assert_eq!(cfg.session.keys[1].expose(), old_key);
    // Gateways reload the new keys in place: no pod roll.
    assert_eq!(config_hash(&after.deployment), config_hash(&before.deployment));
    // Rotation happens once per annotation value, not on every reconcile.
    let new_key = secret_value(&after.secret, "COOKIE_ENCRYPTION_KEY");
    let out = c.kubectl(&["annotate", "-n", &ns.name, "ap/app", "unrelated=change"]);
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = children(&c, &ns.name, "app").await.unwrap();
    assert_eq!(secret_value(&again.secret, "COOKIE_ENCRYPTION_KEY"), new_key);
    assert_eq!(again.secret.resource_version(), after.secret.resource_version());
    // Retiring that rotation drops the old key, still without a pod roll.
    let out = c.kubectl(&["annotate", "-n", &ns.name, "ap/app", "authgate.dev/retire-cookie-key=2026-11-23"]);
    assert!(out.status.success());
    let retired = wait_for("retired key", T, || async {
        let ch = children(&c, &ns.name, "app").await?;
        let cfg = authgate::gateway::GatewayConfig::from_yaml(&secret_value(&ch.secret, "gateway.yaml")).ok()?;
        (cfg.session.keys.len() == 1).then_some((ch, cfg))
    })
    .await;
    assert_eq!(retired.1.session.keys[0].expose(), new_key);
    assert!(!retired.0.secret.data.as_ref().unwrap().contains_key("COOKIE_ENCRYPTION_KEY_PREVIOUS"));
    assert_eq!(config_hash(&retired.0.deployment), config_hash(&before.deployment));
}

/// The JSON of `object` without its status and managed fields: what a
/// write by anyone would change.
fn content<K: serde::Serialize>(object: &K) -> serde_json::Value {
    let mut v = serde_json::to_value(object).unwrap();
    v["metadata"].as_object_mut().unwrap().remove("managedFields");
    v.as_object_mut().unwrap().remove("status");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_objects_named_like_children_are_left_alone_and_named_in_status() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("foreign");
    // Someone else's Secret and Service, under the names the policy's
    // children would take, before the policy exists.
    c.apply(
        &ns.name,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: app-auth-credentials, labels: {app.kubernetes.io/name: authgate-gateway, app.kubernetes.io/instance: app}}\nstringData: {gateway.yaml: 'not ours', COOKIE_ENCRYPTION_KEY: someone-elses-key}\n",
    );
    c.apply(
        &ns.name,
        "apiVersion: v1\nkind: Service\nmetadata: {name: app-gateway}\nspec: {ports: [{port: 9999}], selector: {app: theirs}}\n",
    );
    let secrets: Api<Secret> = c.api(&ns.name);
    let services: Api<Service> = c.api(&ns.name);
    let secret_before = secrets.get("app-auth-credentials").await.unwrap();
    let service_before = services.get("app-gateway").await.unwrap();

    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "first-secret"));
    c.apply(&ns.name, &policy_yaml("app", &["gh"]));
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    wait_for("Accepted=False NameInUse", T, || async {
        is(ap_state(&aps, "app", "Accepted").await, "False", "NameInUse")
    })
    .await;
    let status = aps.get("app").await.unwrap().status.unwrap();
    let accepted = cluster::condition(&status.conditions, "Accepted").unwrap();
    assert!(
        accepted.message.contains(&format!("{}/app-auth-credentials", ns.name))
            || accepted.message.contains(&format!("{}/app-gateway", ns.name)),
        "{}",
        accepted.message
    );
    assert!(accepted.message.contains("not created by this AuthPolicy"), "{}", accepted.message);
    // Give the controller time to do anything it would do, then compare.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let secret_after = secrets.get("app-auth-credentials").await.unwrap();
    let service_after = services.get("app-gateway").await.unwrap();
    assert_eq!(content(&secret_after), content(&secret_before), "the foreign Secret is byte-identical");
    assert_eq!(content(&service_after), content(&service_before), "the foreign Service is byte-identical");
    assert!(
        c.api::<Deployment>(&ns.name).get_opt("app-gateway").await.unwrap().is_none(),
        "no gateway on a foreign Secret"
    );

    // Once the foreign Secret is gone, the policy writes its own; the
    // foreign Service still blocks, and is named.
    secrets.delete("app-auth-credentials", &DeleteParams::default()).await.unwrap();
    let out = c.kubectl(&["annotate", "-n", &ns.name, "ap/app", "nudge=1"]);
    assert!(out.status.success());
    wait_for("the Service named in status", T, || async {
        let s = aps.get("app").await.ok()?.status?;
        let m = cluster::condition(&s.conditions, "Accepted")?.message.clone();
        m.contains(&format!("Service {}/app-gateway", ns.name)).then_some(())
    })
    .await;
    let ours = secrets.get("app-auth-credentials").await.unwrap();
    assert!(ours.owner_references().iter().any(|o| o.kind == "AuthPolicy" && o.name == "app"));
    assert_eq!(content(&services.get("app-gateway").await.unwrap()), content(&service_before));

    // A foreign Deployment: another policy's gateway name, taken first.
    c.apply(
        &ns.name,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other-gateway}\nspec: {replicas: 0, selector: {matchLabels: {app: theirs}}, template: {metadata: {labels: {app: theirs}}, spec: {containers: [{name: c, image: theirs:1}]}}}\n",
    );
    let deployments: Api<Deployment> = c.api(&ns.name);
    // What the deployment controller does not touch: spec, labels, owners.
    let mine =
        |d: &Deployment| (serde_json::to_value(&d.spec).unwrap(), d.labels().clone(), d.owner_references().to_vec());
    let deployment_before = mine(&deployments.get("other-gateway").await.unwrap());
    c.apply(&ns.name, &policy_yaml("other", &["gh"]));
    wait_for("the Deployment named in status", T, || async {
        let s = aps.get("other").await.ok()?.status?;
        let m = cluster::condition(&s.conditions, "Accepted")?;
        (m.reason == "NameInUse" && m.message.contains(&format!("Deployment {}/other-gateway", ns.name))).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mine(&deployments.get("other-gateway").await.unwrap()), deployment_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_deployment_with_an_old_selector_is_replaced_once() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("selector");
    let (ctl, aps) = ready_policy(&c, &ns.name, 300).await;
    drop(ctl);
    // As an earlier controller wrote it: selected by app.kubernetes.io/instance.
    let deployments: Api<Deployment> = c.api(&ns.name);
    let mut old = deployments.get("app-gateway").await.unwrap();
    let uid = aps.get("app").await.unwrap().uid().unwrap();
    deployments.delete("app-gateway", &DeleteParams::default()).await.unwrap();
    wait_for("the Deployment gone", T, || async {
        deployments.get_opt("app-gateway").await.ok()?.is_none().then_some(())
    })
    .await;
    let old_labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "authgate-gateway".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), "app".to_owned()),
    ]);
    old.metadata = kube::api::ObjectMeta {
        name: Some("app-gateway".into()),
        labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "authgate".to_owned())])),
        owner_references: old.metadata.owner_references.clone(),
        ..Default::default()
    };
    old.status = None;
    let spec = old.spec.as_mut().unwrap();
    spec.selector.match_labels = Some(old_labels.clone());
    spec.template.metadata.as_mut().unwrap().labels = Some(old_labels);
    deployments.create(&Default::default(), &old).await.unwrap();
    assert!(old.owner_references().iter().any(|o| o.uid == uid));

    let _ctl = ControllerProcess::start(&c, &ns.name, 300);
    let replaced = wait_for("a Deployment with the new selector", T, || async {
        let d = deployments.get_opt("app-gateway").await.ok()??;
        let selector = d.spec.as_ref()?.selector.match_labels.clone()?;
        (selector.get("authgate.dev/policy").map(String::as_str) == Some("app")).then_some(d)
    })
    .await;
    assert!(!replaced.spec.unwrap().selector.match_labels.unwrap().contains_key("app.kubernetes.io/instance"));
    wait_for("policy Ready again", Duration::from_secs(90), || async {
        is(ap_state(&aps, "app", "Ready").await, "True", "Available")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_image_outside_the_allowlist_is_refused_and_never_deployed() {
    let Some(c) = connect().await else { return };
    let ns = c.namespace("tenant-image");
    let ctl = ControllerProcess::start(&c, &ns.name, 300);
    c.apply(&ns.name, &github_provider_yaml("gh", "gh-secret", "first-secret"));
    let with_image = |image: &str| format!("{}  gateway: {{image: '{image}'}}\n", policy_yaml("app", &["gh"]));
    c.apply(&ns.name, &with_image("attacker.example/steal-credentials:1"));
    let aps: Api<AuthPolicy> = c.api(&ns.name);
    wait_for("ImageNotAllowed", T, || async {
        is(ap_state(&aps, "app", "Accepted").await, "False", "ImageNotAllowed")
    })
    .await;
    let status = aps.get("app").await.unwrap().status.unwrap();
    let message = &cluster::condition(&status.conditions, "Accepted").unwrap().message;
    assert!(
        message.contains("attacker.example/steal-credentials:1") && message.contains("allows no other image"),
        "{message}"
    );
    let deployments: Api<Deployment> = c.api(&ns.name);
    assert!(deployments.get_opt("app-gateway").await.unwrap().is_none(), "no Deployment runs the tenant's image");
    assert!(
        c.api::<Secret>(&ns.name).get_opt("app-auth-credentials").await.unwrap().is_none(),
        "nor gets its credentials"
    );
    drop(ctl);

    // An image the platform allows is deployed as asked.
    let _ctl = ControllerProcess::start_with(
        &c,
        &ns.name,
        300,
        &["--gateway-allowed-images=registry.example/authgate:debug,registry.example/authgate:fips"],
    );
    c.apply(&ns.name, &with_image("registry.example/authgate:fips"));
    let d =
        wait_for("the allowed image deployed", T, || async { deployments.get_opt("app-gateway").await.ok()? }).await;
    let image = d.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("registry.example/authgate:fips"));
}

#[tokio::test(flavor = "multi_thread")]
async fn several_gateway_replicas_get_a_disruption_budget_that_goes_with_the_last_extra_replica() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let Some(c) = connect().await else { return };
    let ns = c.namespace("budget");
    let (_ctl, aps) = ready_policy(&c, &ns.name, 300).await;
    let budgets: Api<PodDisruptionBudget> = c.api(&ns.name);
    assert!(budgets.get_opt("app-gateway").await.unwrap().is_none(), "one replica: no budget");

    c.apply(&ns.name, &format!("{}  gateway: {{replicas: 3}}\n", policy_yaml("app", &["gh"])));
    let pdb = wait_for("the budget", T, || async { budgets.get_opt("app-gateway").await.ok()? }).await;
    let spec = pdb.spec.as_ref().unwrap();
    assert_eq!(spec.max_unavailable, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)));
    assert_eq!(spec.selector.as_ref().unwrap().match_labels.as_ref().unwrap()["authgate.dev/policy"], "app");
    let uid = aps.get("app").await.unwrap().uid().unwrap();
    assert!(pdb.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true)));
    // The budget and the Deployment are written side by side: wait for the
    // Deployment's three replicas too.
    let deployments: Api<Deployment> = c.api(&ns.name);
    let pod = wait_for("the Deployment spread over nodes", T, || async {
        let pod = deployments.get("app-gateway").await.ok()?.spec?.template.spec?;
        pod.topology_spread_constraints.is_some().then_some(pod)
    })
    .await;
    assert_eq!(pod.topology_spread_constraints.unwrap()[0].topology_key, "kubernetes.io/hostname");
    let pre_stop = pod.containers[0].lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
    assert!(pre_stop.sleep.is_some(), "the apiserver keeps the preStop sleep");

    c.apply(&ns.name, &format!("{}  gateway: {{replicas: 1}}\n", policy_yaml("app", &["gh"])));
    wait_for("the budget gone", T, || async { budgets.get_opt("app-gateway").await.ok()?.is_none().then_some(()) })
        .await;

    // A budget of that name someone else made stays exactly as it is.
    c.apply(
        &ns.name,
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: app-gateway}\nspec: {minAvailable: 0, selector: {matchLabels: {app: theirs}}}\n",
    );
    let before = serde_json::to_value(budgets.get("app-gateway").await.unwrap().spec).unwrap();
    c.apply(&ns.name, &format!("{}  gateway: {{replicas: 2}}\n", policy_yaml("app", &["gh"])));
    wait_for("the foreign budget named in status", T, || async {
        let s = aps.get("app").await.ok()?.status?;
        let m = cluster::condition(&s.conditions, "Accepted")?;
        (m.reason == "NameInUse" && m.message.contains("PodDisruptionBudget")).then_some(())
    })
    .await;
    assert_eq!(serde_json::to_value(budgets.get("app-gateway").await.unwrap().spec).unwrap(), before);
}
