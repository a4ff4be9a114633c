//! GitOps health and the Helm chart.
//!
//! - kstatus: the real `sigs.k8s.io/cli-utils/pkg/kstatus/status` library
//!   (tests/kstatus, built by scripts/setup.sh), as Flux `wait: true` uses it.
//! - Argo CD: the chart's Lua health checks
//!   (charts/authgate/argocd/authgate.dev/<Kind>/health.lua) run by Debian's
//!   `lua5.4` with `obj` set as Argo CD sets it.
//! - Helm: `helm lint`, values.schema.json, and `helm template | kubectl apply
//!   --dry-run=server` against the real control plane.
//!
//! A missing helm, lua5.4 or kstatus binary (or control plane) skips locally
//! with a SKIP line, and fails under `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cluster::{Cluster, ControllerProcess, connect, github_provider_yaml, policy_yaml, repo, wait_for};
use serde_json::{Value, json};

const HELM_VERSION: &str = "v3.22.0";
const T: Duration = Duration::from_secs(90);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

// ---------------------------------------------------------------- tools

fn cache_dir() -> PathBuf {
    match std::env::var_os("AUTHGATE_CACHE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/authgate"),
    }
}

/// Where scripts/setup.sh builds the kstatus program: keyed by a hash of the
/// module's sources, exactly as setup.sh computes it.
fn default_kstatus() -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in ["go.mod", "go.sum", "main.go"] {
        h.update(std::fs::read(repo("tests/kstatus").join(f)).expect("tests/kstatus sources"));
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    cache_dir().join(format!("tools/kstatus-{}/kstatus", &hex[..16]))
}

fn default_helm() -> PathBuf {
    cache_dir().join(format!("tools/helm-{HELM_VERSION}/helm"))
}

fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A tool binary from `env` or its default location. `None` means skip
/// (never under CI=true).
fn tool(what: &str, env: &str, default: impl FnOnce() -> PathBuf) -> Option<PathBuf> {
    let path = std::env::var_os(env).filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(default);
    if path.is_file() {
        return Some(path);
    }
    let why = format!("{what} not found at {} (run scripts/setup.sh, or set {env})", path.display());
    assert!(!in_ci(), "{why}: it must be present under CI=true");
    eprintln!("SKIP: {why}");
    None
}

fn kstatus_bin() -> Option<PathBuf> {
    tool("kstatus program", "AUTHGATE_KSTATUS", default_kstatus)
}

fn lua_bin() -> Option<PathBuf> {
    tool("lua5.4", "AUTHGATE_LUA", || on_path("lua5.4"))
}

fn helm_bin() -> Option<PathBuf> {
    tool("helm", "AUTHGATE_HELM", default_helm)
}

/// Runs `bin args`, feeding `stdin`.
fn run(bin: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs: {e}", bin.display()));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// ---------------------------------------------------------------- verdicts

/// (status, message) as a tool reports it.
type Verdict = (String, String);

/// (status, message) from the real kstatus library.
fn kstatus(bin: &Path, obj: &Value) -> Verdict {
    let out = run(bin, &[], &obj.to_string());
    assert!(out.status.success(), "kstatus failed: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("kstatus prints JSON");
    (v["status"].as_str().unwrap().to_owned(), v["message"].as_str().unwrap().to_owned())
}

/// A Lua string literal for any UTF-8 text.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// JSON as a Lua table constructor, the way Argo CD hands `obj` to a script.
fn lua_value(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua_value).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

fn health_script(kind: &str) -> PathBuf {
    repo(&format!("charts/authgate/argocd/authgate.dev/{kind}/health.lua"))
}

/// (hs.status, hs.message) from the chart's Argo CD health check for the
/// object's kind.
fn argo_health(lua: &Path, obj: &Value) -> Verdict {
    let kind = obj["kind"].as_str().expect("object has a kind");
    let script = health_script(kind);
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nassert(type(hs) == \"table\", \"health.lua must return hs\")\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_value(obj),
        lua_string(&script.to_string_lossy())
    );
    let out = run(lua, &["-"], &program);
    assert!(out.status.success(), "{} failed: {}", script.display(), text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (status, message) = stdout.split_once('\n').expect("status and message");
    (status.to_owned(), message.to_owned())
}

fn pair(a: &str, b: &str) -> Verdict {
    (a.to_owned(), b.to_owned())
}

// ---------------------------------------------------------------- fixtures

fn cond(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn object(kind: &str, generation: i64, status: Option<Value>) -> Value {
    let mut o = json!({
        "apiVersion": "authgate.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team", "generation": generation, "uid": "1"},
        "spec": {},
    });
    if let Some(s) = status {
        o["status"] = s;
    }
    o
}

/// Each fixture for both kinds: kstatus and the Lua check must give exactly
/// these verdicts. The live test below reaches the same states through the
/// real controller; these cover the edges it cannot hold still.
#[test]
fn health_checks_agree_with_kstatus_on_fixtures() {
    let (Some(ks), Some(lua)) = (kstatus_bin(), lua_bin()) else {
        return;
    };
    let ready = cond("Ready", "True", "Available", "gateway is available", 3);
    let accepted = cond("Accepted", "True", "Valid", "", 3);
    let stalled_msg = "IdentityProvider \"github\" (github) lets anyone with an account sign in";
    let progress_msg = "0 of 1 gateway pods updated";
    let secret_msg = "clientSecretRef: Secret \"s\" not found";
    let cases: Vec<(&str, Value, Verdict, Verdict)> = vec![
        (
            "ready",
            json!({"observedGeneration": 3, "conditions": [accepted.clone(), ready.clone()]}),
            pair("Current", "Resource is Ready"),
            pair("Healthy", "gateway is available"),
        ),
        (
            "reconciling",
            json!({"observedGeneration": 3, "conditions": [accepted.clone(),
                cond("Ready", "False", "GatewayProgressing", progress_msg, 3),
                cond("Reconciling", "True", "GatewayProgressing", progress_msg, 3)]}),
            pair("InProgress", progress_msg),
            pair("Progressing", progress_msg),
        ),
        (
            "stalled",
            json!({"observedGeneration": 3, "conditions": [
                cond("Accepted", "False", "NoAccessRestriction", stalled_msg, 3),
                cond("Ready", "False", "NoAccessRestriction", stalled_msg, 3),
                cond("Stalled", "True", "NoAccessRestriction", stalled_msg, 3)]}),
            pair("Failed", stalled_msg),
            pair("Degraded", stalled_msg),
        ),
        (
            "generation not yet observed",
            json!({"observedGeneration": 2, "conditions": [accepted.clone(), ready.clone()]}),
            // kstatus names the kind; filled in per kind below.
            pair("InProgress", "{kind} generation is 3, but latest observed generation is 2"),
            pair("Progressing", "Waiting for the authgate controller to observe generation 3"),
        ),
        (
            // A transient error: the controller retries by itself (Reconciling).
            "waiting for a Secret",
            json!({"observedGeneration": 3, "conditions": [accepted.clone(),
                cond("ResolvedRefs", "False", "SecretNotFound", secret_msg, 3),
                cond("Ready", "False", "SecretNotFound", secret_msg, 3),
                cond("Reconciling", "True", "SecretNotFound", secret_msg, 3)]}),
            pair("InProgress", secret_msg),
            pair("Progressing", secret_msg),
        ),
        (
            // Not Ready, yet neither Reconciling nor Stalled: kstatus cannot
            // tell waiting from broken and says InProgress; Argo CD shows Degraded.
            "not ready, no kstatus condition",
            json!({"observedGeneration": 3, "conditions": [accepted.clone(),
                cond("Ready", "False", "GatewayUnavailable", "0 of 1 gateway pods available", 3)]}),
            pair("InProgress", "0 of 1 gateway pods available"),
            pair("Degraded", "0 of 1 gateway pods available"),
        ),
        (
            "ready unknown",
            json!({"observedGeneration": 3, "conditions": [cond("Ready", "Unknown", "Pending", "starting", 3)]}),
            pair("InProgress", "starting"),
            pair("Progressing", "Waiting for the Ready condition"),
        ),
        (
            // kstatus's known gap: a custom resource with no status at all
            // looks Current. The Lua check waits for the controller.
            "no status yet",
            Value::Null,
            pair("Current", "Resource is current"),
            pair("Progressing", "Waiting for the authgate controller to report status"),
        ),
    ];
    for kind in ["IdentityProvider", "AuthPolicy"] {
        for (name, status, want_ks, want_argo) in &cases {
            let obj = object(kind, 3, (!status.is_null()).then(|| status.clone()));
            let want_ks = (want_ks.0.clone(), want_ks.1.replace("{kind}", kind));
            assert_eq!(kstatus(&ks, &obj), want_ks, "kstatus, {kind} {name}");
            assert_eq!(argo_health(&lua, &obj), *want_argo, "Argo CD health.lua, {kind} {name}");
        }
    }
    // Every message survives the trip into Lua byte for byte.
    let odd = "quotes \" backslash \\ newline\nunicode é ✓";
    let obj = object(
        "AuthPolicy",
        1,
        Some(json!({"observedGeneration": 1, "conditions": [cond("Ready", "True", "Available", odd, 1)]})),
    );
    assert_eq!(argo_health(&lua, &obj), pair("Healthy", odd));
}

// ---------------------------------------------------------------- live

fn get_json(c: &Cluster, ns: &str, what: &str) -> Value {
    let out = c.kubectl(&["get", "-n", ns, what, "-o", "json"]);
    assert!(out.status.success(), "kubectl get {what}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (status, reason, message) of a condition in a fetched object.
fn condition_of(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        (s("status"), s("reason"), s("message"))
    })
}

/// Polls until the object's condition has `status` and `reason`; returns the
/// object as fetched then, so both tools judge the same snapshot.
async fn wait_condition(c: &Cluster, ns: &str, what: &str, type_: &str, status: &str, reason: &str) -> Value {
    wait_for(&format!("{what} {type_}={status} ({reason})"), T, || async {
        let out = c.kubectl(&["get", "-n", ns, what, "-o", "json"]);
        let obj: Value = serde_json::from_slice(&out.stdout).ok()?;
        let (s, r, _) = condition_of(&obj, type_)?;
        (s == status && r == reason && obj["status"]["observedGeneration"] == obj["metadata"]["generation"])
            .then_some(obj)
    })
    .await
}

/// Both verdicts for a fetched object.
fn verdicts(ks: &Path, lua: &Path, obj: &Value) -> (Verdict, Verdict) {
    (kstatus(ks, obj), argo_health(lua, obj))
}

/// Healthy, progressing and failed resources of both kinds made by the real
/// controller, judged by the real kstatus library and the Argo CD Lua checks.
#[tokio::test(flavor = "multi_thread")]
async fn kstatus_and_argo_health_follow_the_controller() {
    let (Some(ks), Some(lua)) = (kstatus_bin(), lua_bin()) else {
        return;
    };
    let Some(c) = connect().await else { return };
    let ns = c.namespace("gitops");
    let n = ns.name.as_str();
    let ctl = ControllerProcess::start(&c, n, 300);

    // Healthy: a restricted GitHub provider and a policy whose gateway is available.
    c.apply(n, &github_provider_yaml("gh", "gh-secret", "s3cret"));
    c.apply(n, &policy_yaml("app", &["gh"]));
    let gh = wait_condition(&c, n, "identityprovider/gh", "Ready", "True", "Ready").await;
    assert_eq!(
        verdicts(&ks, &lua, &gh),
        (pair("Current", "Resource is Ready"), pair("Healthy", "github provider is ready"))
    );
    let app = wait_condition(&c, n, "authpolicy/app", "Ready", "True", "Available").await;
    assert_eq!(
        verdicts(&ks, &lua, &app),
        (pair("Current", "Resource is Ready"), pair("Healthy", "gateway is available"))
    );

    // Failed: a second GitHub provider in the namespace (DuplicateType), and a
    // policy that would let anyone with a Google account in (NoAccessRestriction).
    c.apply(n, &github_provider_yaml("gh2", "gh2-secret", "other"));
    c.apply(
        n,
        r#"apiVersion: v1
kind: Secret
metadata: {name: google-secret}
stringData: {client-secret: g}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {name: google}
spec:
  type: google
  clientId: client-google
  clientSecretRef: {name: google-secret, key: client-secret}
"#,
    );
    c.apply(n, &policy_yaml("open", &["google"]));
    let gh2 = wait_condition(&c, n, "identityprovider/gh2", "Stalled", "True", "DuplicateType").await;
    let (_, _, msg) = condition_of(&gh2, "Stalled").unwrap();
    assert!(msg.contains("only one provider per type"), "{msg}");
    assert_eq!(verdicts(&ks, &lua, &gh2), (pair("Failed", &msg), pair("Degraded", &msg)));
    let open = wait_condition(&c, n, "authpolicy/open", "Stalled", "True", "NoAccessRestriction").await;
    let (_, _, msg) = condition_of(&open, "Stalled").unwrap();
    assert!(msg.contains("lets anyone with an account sign in"), "{msg}");
    assert_eq!(verdicts(&ks, &lua, &open), (pair("Failed", &msg), pair("Degraded", &msg)));

    // Progressing: from now on the LimitRanger admission plugin refuses every
    // new pod here (a Pod memory max, and gateways set no limit), so the new
    // gateway's rollout holds at "0 of 1 updated" (Reconciling=True) until the
    // Deployment's progress deadline, ten minutes away. Running pods stay.
    c.apply(n, "apiVersion: v1\nkind: LimitRange\nmetadata: {name: no-new-pods}\nspec: {limits: [{type: Pod, max: {memory: 1Ki}}]}\n");
    c.apply(n, &policy_yaml("slow", &["gh"]));
    let slow = wait_condition(&c, n, "authpolicy/slow", "Reconciling", "True", "GatewayProgressing").await;
    let (_, _, msg) = condition_of(&slow, "Reconciling").unwrap();
    assert_eq!(condition_of(&slow, "Ready").map(|r| r.0), Some("False".to_owned()));
    assert_eq!(verdicts(&ks, &lua, &slow), (pair("InProgress", &msg), pair("Progressing", &msg)));

    // Progressing: a transient error the controller retries by itself.
    c.apply(
        n,
        r#"apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {name: gitlab}
spec:
  type: gitlab
  clientId: client-gitlab
  clientSecretRef: {name: not-yet-created, key: client-secret}
  allowedGroups: [acme]
"#,
    );
    let gitlab = wait_condition(&c, n, "identityprovider/gitlab", "Reconciling", "True", "SecretNotFound").await;
    let (_, _, msg) = condition_of(&gitlab, "Reconciling").unwrap();
    assert_eq!(condition_of(&gitlab, "Ready").map(|r| r.0), Some("False".to_owned()));
    assert_eq!(verdicts(&ks, &lua, &gitlab), (pair("InProgress", &msg), pair("Progressing", &msg)));

    // kstatus reads `kubectl get -o json` lists too, one verdict per item.
    let list = run(&ks, &[], &get_json(&c, n, "authpolicies").to_string());
    assert!(list.status.success(), "{}", text(&list));
    let list: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    let by_name: BTreeMap<&str, &str> =
        list.iter().map(|v| (v["name"].as_str().unwrap(), v["status"].as_str().unwrap())).collect();
    assert_eq!(by_name, BTreeMap::from([("app", "Current"), ("open", "Failed"), ("slow", "InProgress")]));

    // Progressing: a spec change no controller has observed yet.
    drop(ctl);
    for (what, patch) in [
        ("authpolicy/app", r#"{"spec":{"externalUrl":"https://app2.example.com"}}"#),
        ("identityprovider/gh", r#"{"spec":{"allowedOrgs":["acme","umbrella"]}}"#),
    ] {
        let out = c.kubectl(&["patch", "-n", n, what, "--type=merge", "-p", patch]);
        assert!(out.status.success(), "{}", text(&out));
        let obj = get_json(&c, n, what);
        let (generation, observed) =
            (obj["metadata"]["generation"].as_i64().unwrap(), obj["status"]["observedGeneration"].as_i64().unwrap());
        assert!(generation > observed, "{what}: generation {generation}, observed {observed}");
        let kind = obj["kind"].as_str().unwrap();
        assert_eq!(
            verdicts(&ks, &lua, &obj),
            (
                pair(
                    "InProgress",
                    &format!("{kind} generation is {generation}, but latest observed generation is {observed}")
                ),
                pair("Progressing", &format!("Waiting for the authgate controller to observe generation {generation}")),
            ),
            "{what}"
        );
    }
    // A controller catches up (new pods allowed again): healthy again.
    let out = c.kubectl(&["delete", "-n", n, "limitrange/no-new-pods"]);
    assert!(out.status.success(), "{}", text(&out));
    let _ctl = ControllerProcess::start(&c, n, 300);
    let gh = wait_condition(&c, n, "identityprovider/gh", "Ready", "True", "Ready").await;
    assert_eq!(
        verdicts(&ks, &lua, &gh),
        (pair("Current", "Resource is Ready"), pair("Healthy", "github provider is ready"))
    );
    let app = wait_condition(&c, n, "authpolicy/app", "Ready", "True", "Available").await;
    assert_eq!(
        verdicts(&ks, &lua, &app),
        (pair("Current", "Resource is Ready"), pair("Healthy", "gateway is available"))
    );
}

// ---------------------------------------------------------------- helm

fn chart() -> String {
    repo("charts/authgate").to_string_lossy().into_owned()
}

fn helm(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("authgate-helm-cache"))
        .output()
        .expect("helm runs")
}

/// `--set` arguments from pairs.
fn sets<'a>(values: &[&'a str]) -> Vec<&'a str> {
    values.iter().flat_map(|v| ["--set", *v]).collect()
}

#[test]
fn helm_lint_passes_strict() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();
    for values in [
        &[][..],
        &[
            "podDisruptionBudget.enabled=true",
            "networkPolicy.enabled=true",
            "metrics.serviceMonitor.enabled=true",
            "metrics.gatewayPodMonitor.enabled=true",
        ][..],
        &[
            "replicaCount=1",
            "leaderElection.enabled=false",
            "watchNamespace=team-a",
            "serviceAccount.create=false",
            "serviceAccount.name=custom",
        ][..],
    ] {
        for strict in [false, true] {
            let mut args = vec!["lint", chart.as_str()];
            if strict {
                args.push("--strict");
            }
            args.extend(sets(values));
            let out = helm(&h, &args);
            let t = text(&out);
            assert!(out.status.success(), "helm {args:?}:\n{t}");
            assert!(t.contains("1 chart(s) linted, 0 chart(s) failed"), "{t}");
        }
    }
}

#[test]
fn the_gateway_pod_monitor_scrapes_the_ops_port() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();
    let out = helm(&h, &["template", "ag", chart.as_str(), "--set", "metrics.gatewayPodMonitor.enabled=true"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let doc =
        t.split("\n---").find(|d| d.contains("kind: PodMonitor")).unwrap_or_else(|| panic!("no PodMonitor:\n{t}"));
    for want in ["port: ops", "path: /metrics", "app.kubernetes.io/component: gateway", "any: true"] {
        assert!(doc.contains(want), "{want} in\n{doc}");
    }
}

#[test]
fn helm_values_schema_rejects_typos_and_bad_values() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();
    for (set, error) in [
        ("replicaCount=abc", "at '/replicaCount': got string, want integer"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("metrics.serviceMonitor.enable=true", "additional properties 'enable' not allowed"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("metrics.port=70000", "at '/metrics/port'"),
        ("logFormat=xml", "at '/logFormat'"),
        ("watchNamespace=Team_A", "at '/watchNamespace'"),
        // Two replicas without leader election would both reconcile.
        ("leaderElection.enabled=false", "at '/leaderElection/enabled': value must be true"),
    ] {
        for cmd in ["lint", "template"] {
            let out = helm(&h, &[cmd, chart.as_str(), "--set", set]);
            let t = text(&out);
            assert!(!out.status.success(), "helm {cmd} --set {set} should fail:\n{t}");
            assert!(t.contains(error), "helm {cmd} --set {set}: want {error:?} in:\n{t}");
        }
    }
    // What the schema allows stays allowed.
    for set in [
        "replicaCount=1,leaderElection.enabled=false",
        "podDisruptionBudget.minAvailable=50%",
        "logLevel=info\\,kube=warn",
    ] {
        let out = helm(&h, &["lint", chart.as_str(), "--strict", "--set", set]);
        assert!(out.status.success(), "--set {set}:\n{}", text(&out));
    }
}

/// A stand-in CRD for the Prometheus operator's ServiceMonitor, so the
/// optional ServiceMonitor can go through the server-side dry run too.
const SERVICE_MONITOR_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// `helm template | kubectl apply --dry-run=server -f -`; returns the
/// apiserver's (dry-run) objects.
fn template_and_dry_run(c: &Cluster, h: &Path, ns: &str, values: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec!["template", "authgate", chart.as_str(), "--namespace", ns, "--include-crds"];
    args.extend(sets(values));
    let out = helm(h, &args);
    assert!(out.status.success(), "helm {args:?}:\n{}", text(&out));
    let rendered = String::from_utf8(out.stdout).unwrap();
    let out = c.kubectl_stdin(&["apply", "--dry-run=server", "-o", "json", "-f", "-"], &rendered);
    assert!(out.status.success(), "server-side dry run of {values:?} failed:\n{}\n{rendered}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().cloned().unwrap_or_else(|| vec![v]);
    for o in &items {
        if let Some(m) = o["metadata"]["namespace"].as_str() {
            assert_eq!(m, ns, "{} {} is in the release namespace", o["kind"], o["metadata"]["name"]);
        }
    }
    items
}

fn kinds(items: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = items.iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect();
    k.sort();
    k
}

fn find<'a>(items: &'a [Value], kind: &str) -> &'a Value {
    items.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn controller_args(items: &[Value]) -> Vec<String> {
    find(items, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_template_passes_server_side_dry_run() {
    let Some(h) = helm_bin() else { return };
    let Some(c) = connect().await else { return };
    let ns = c.namespace("authgate-system");
    let n = ns.name.as_str();
    let base = [
        "ClusterRole",
        // Aggregated into admin and edit: namespace admins end sessions.
        "ClusterRole",
        // ApiTokens are access grants: aggregated editor (admin, edit) and viewer.
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ];
    let with = |extra: &[&str]| {
        let mut k: Vec<String> = base.iter().chain(extra).map(|s| (*s).to_owned()).collect();
        k.sort();
        k
    };

    // Defaults: HA with leader election.
    let items = template_and_dry_run(&c, &h, n, &[]);
    assert_eq!(kinds(&items), with(&["Role", "RoleBinding"]));
    let args = controller_args(&items);
    assert!(args.contains(&"--leader-election".to_owned()), "{args:?}");
    assert_eq!(find(&items, "Deployment")["spec"]["replicas"], 2);

    // Optional PodDisruptionBudget and NetworkPolicy, no ServiceMonitor;
    // the gateway image and defaults flow into the controller's arguments.
    let items = template_and_dry_run(
        &c,
        &h,
        n,
        &[
            "metrics.serviceMonitor.enabled=false",
            "podDisruptionBudget.enabled=true",
            "networkPolicy.enabled=true",
            "gateway.image.repository=acme/authgate-gateway",
            "gateway.image.tag=1.2.3",
            "gateway.replicas=3",
        ],
    );
    assert_eq!(kinds(&items), with(&["NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding"]));
    let args = controller_args(&items);
    for want in ["--gateway-image=acme/authgate-gateway:1.2.3", "--gateway-replicas=3"] {
        assert!(args.contains(&want.to_owned()), "{want} in {args:?}");
    }

    // ServiceMonitor (against a stand-in CRD), one replica without leader
    // election, one watched namespace (the release's: the controller's Role
    // and RoleBinding go there; tests/chart.rs checks another namespace).
    let out = c.kubectl_stdin(&["apply", "-f", "-"], SERVICE_MONITOR_CRD);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let items = template_and_dry_run(
        &c,
        &h,
        n,
        &[
            "metrics.serviceMonitor.enabled=true",
            "replicaCount=1",
            "leaderElection.enabled=false",
            &format!("watchNamespace={n}"),
        ],
    );
    assert_eq!(kinds(&items), with(&["Role", "RoleBinding", "ServiceMonitor"]));
    let args = controller_args(&items);
    assert!(
        args.contains(&format!("--watch-namespace={n}")) && !args.contains(&"--leader-election".to_owned()),
        "{args:?}"
    );
}

// ---------------------------------------------------------------- monitoring

/// The metric families the gateway and the controller register, by name
/// (counters without their `_total`): those the code registers (families
/// without a series yet are not rendered), and those a scrape renders now
/// (the process collector's).
fn registered_families() -> std::collections::BTreeSet<String> {
    let register = regex::Regex::new(r#"register\(\s*"([a-z_]+)""#).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for (prefix, dir) in [("authgate_gateway_", "src/gateway/metrics"), ("authgate_controller_", "src/controller")] {
        let files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs") && p.to_string_lossy().contains("metric"))
            .collect();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            names.extend(register.captures_iter(&text).map(|c| format!("{prefix}{}", &c[1])));
        }
    }
    let gateway = authgate::gateway::metrics::Metrics::default().render();
    let controller = authgate::controller::metrics::Metrics::default().render();
    names.extend(
        gateway
            .lines()
            .chain(controller.lines())
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_owned),
    );
    names
}

#[test]
fn every_metric_the_alerts_and_the_dashboard_use_is_one_authgate_serves() {
    let families = registered_families();
    let chart = repo("charts/authgate");
    for file in ["templates/monitoring.yaml", "dashboards/authgate.json"] {
        let text = std::fs::read_to_string(chart.join(file)).unwrap();
        let mut used = 0;
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.starts_with("authgate_") {
                continue;
            }
            used += 1;
            let family =
                ["_bucket", "_total", "_count", "_sum"].iter().find_map(|s| word.strip_suffix(s)).unwrap_or(word);
            assert!(families.contains(family), "{file} uses {word}, which nothing registers; families: {families:?}");
        }
        assert!(used >= 8, "{file} names only {used} metrics");
    }
}
