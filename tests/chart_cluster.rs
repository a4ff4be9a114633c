//! The Helm chart on the real control plane: every value set passes a
//! server-side dry run; `helm install`/`upgrade`/`uninstall` adopt, upgrade
//! and keep the CRDs; and a controller with only the namespaced RBAC of
//! `watchNamespace` reconciles its namespace.
//!
//! A missing helm or control plane skips locally and fails under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cluster::connect;
use common::helm::*;
use serde_json::{Value, json};

/// Stand-in CRDs for the Prometheus operator's monitors, so they go through
/// the server-side dry run too.
fn monitor_crd(kind: &str, plural: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.monitoring.coreos.com}}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
        singular = kind.to_lowercase()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_value_set_passes_server_side_dry_run() {
    let Some(h) = helm_bin() else { return };
    let Some(c) = connect().await else { return };
    let release = c.namespace("chart-dry-run");
    let team = c.namespace("chart-team");
    let monitoring = c.namespace("chart-monitoring");
    for (kind, plural) in [("ServiceMonitor", "servicemonitors"), ("PodMonitor", "podmonitors")] {
        let out =
            c.kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], &monitor_crd(kind, plural));
        assert!(out.status.success(), "{}", text(&out));
        let crd = format!("crd/{plural}.monitoring.coreos.com");
        let out = c.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", &crd]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let everything = EVERYTHING.replace("namespace: monitoring", &format!("namespace: {}", monitoring.name));
    for values in
        ["".to_owned(), format!("watchNamespace: {}\n", team.name), everything, "crds: {enabled: false}\n".into()]
    {
        let (_dir, file) = values_file(&values);
        let out = helm(&h, &["template", "ag", &chart(), "--namespace", &release.name, "-f", &file]);
        assert!(out.status.success(), "{}", text(&out));
        let rendered = String::from_utf8(out.stdout).unwrap();
        let out = c.kubectl_stdin(&["apply", "--dry-run=server", "-o", "json", "-f", "-"], &rendered);
        assert!(out.status.success(), "server-side dry run with\n{values}\n{}", text(&out));
        let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
        let applied = applied["items"].as_array().cloned().unwrap_or_else(|| vec![applied]);
        assert_eq!(applied.len(), parse(&rendered).len(), "every object accepted");
    }
    // As a subchart with `global` values.
    let parent = parent_chart();
    let out = helm(&h, &["template", "ag", &parent.path().to_string_lossy(), "--namespace", &release.name]);
    assert!(out.status.success(), "{}", text(&out));
    let rendered = String::from_utf8(out.stdout).unwrap();
    let out = c.kubectl_stdin(&["apply", "--dry-run=server", "-o", "json", "-f", "-"], &rendered);
    assert!(out.status.success(), "server-side dry run of the subchart\n{}", text(&out));
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(applied["items"].as_array().map(Vec::len), Some(parse(&rendered).len()), "every object accepted");
}

/// The chart with its CRDs moved to a group of their own (so the suite's
/// CRDs stay untouched), their category set to `category`.
fn chart_copy(dir: &Path, group: &str, category: &str) -> String {
    let out = Command::new("cp").arg("-r").arg(chart()).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for entry in std::fs::read_dir(dir.join("templates/crds")).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, retarget(&body, group, category)).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

fn retarget(crd: &str, group: &str, category: &str) -> String {
    let categories = "  categories:\n    - authgate\n";
    assert!(crd.contains(categories), "a CRD's category");
    crd.replace(".authgate.dev\n", &format!(".{group}\n"))
        .replace("group: authgate.dev\n", &format!("group: {group}\n"))
        .replacen(categories, &format!("  categories:\n    - {category}\n"), 1)
}

fn crd_categories(c: &common::cluster::Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "crd", name, "-o", "json"]);
    if !out.status.success() {
        assert!(text(&out).contains("NotFound"), "{}", text(&out));
        return None;
    }
    let crd: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(json!({"categories": crd["spec"]["names"]["categories"], "annotations": crd["metadata"]["annotations"]}))
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_adopts_upgrades_and_keeps_the_crds() {
    let Some(h) = helm_bin() else { return };
    let Some(c) = connect().await else { return };
    let ns = c.namespace("chart-upgrade");
    let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let group = format!("u{id}.authgate.dev");
    let release = format!("up{id}");
    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let crds: Vec<String> = ["apitokens", "authpolicies", "identityproviders", "sessionrevocations"]
        .iter()
        .map(|p| format!("{p}.{group}"))
        .collect();
    let policies = &crds[1];
    struct Cleanup(Vec<String>, PathBuf, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let mut args = vec!["--kubeconfig".into(), self.2.to_string_lossy().into_owned(), "delete".into()];
            args.extend(self.0.iter().map(|n| format!("crd/{n}")));
            args.push("--ignore-not-found".into());
            let _ = Command::new(&self.1).args(&args).output();
        }
    }
    let _cleanup = Cleanup(crds.clone(), c.kubectl.clone(), c.kubeconfig.clone());
    let v1_dir = tempfile::tempdir().unwrap();
    let v1 = chart_copy(&v1_dir.path().join("authgate"), &group, "authgate-v1");
    let v2_dir = tempfile::tempdir().unwrap();
    let v2 = chart_copy(&v2_dir.path().join("authgate"), &group, "authgate");
    let install = |verb: &str, chart: &str, extra: &[&str]| {
        let mut args =
            vec![verb, release.as_str(), chart, "--namespace", ns.name.as_str(), "--kubeconfig", &kubeconfig];
        args.extend(extra);
        helm(&h, &args)
    };

    // CRDs from before the chart templated them: applied from crds/.
    for (_, crd) in authgate::crd::all() {
        let plain = retarget(&authgate::crd::render(&crd), &group, "authgate-v0");
        let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &plain);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Helm refuses to take them over unasked ...
    let out = install("install", &v1, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("invalid ownership metadata"), "{}", text(&out));
    // ... and adopts them after the README's commands.
    let names: Vec<String> = crds.iter().map(|n| format!("crd/{n}")).collect();
    let mut annotate = vec!["annotate".to_owned()];
    annotate.extend(names.iter().cloned());
    annotate.extend([
        format!("meta.helm.sh/release-name={release}"),
        format!("meta.helm.sh/release-namespace={}", ns.name),
    ]);
    annotate.push("--overwrite".into());
    let mut label = vec!["label".to_owned()];
    label.extend(names.iter().cloned());
    label.extend(["app.kubernetes.io/managed-by=Helm".to_owned(), "--overwrite".to_owned()]);
    for args in [annotate, label] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = c.kubectl(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = install("install", &v1, &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("kubectl -n {} rollout status deployment/{release}-authgate", ns.name)), "NOTES:\n{t}");
    assert!(t.contains("kubectl explain authpolicy.spec"), "NOTES:\n{t}");
    let keep = json!({"helm.sh/resource-policy": "keep", "meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns.name});
    assert_eq!(crd_categories(&c, policies), Some(json!({"categories": ["authgate-v1"], "annotations": keep})));

    // `helm upgrade` upgrades them (a crds/ directory it would not).
    let out = install("upgrade", &v2, &[]);
    assert!(out.status.success(), "{}", text(&out));
    for name in &crds {
        assert_eq!(crd_categories(&c, name), Some(json!({"categories": ["authgate"], "annotations": keep})), "{name}");
    }

    // Kept on uninstall: every AuthPolicy survives it.
    let out = helm(&h, &["uninstall", &release, "--namespace", &ns.name, "--kubeconfig", &kubeconfig]);
    assert!(out.status.success(), "{}", text(&out));
    for name in &crds {
        assert!(crd_categories(&c, name).is_some(), "{name} was kept");
    }

    // Without crds.keep, uninstalling deletes them.
    let out = c.kubectl(
        &[&["delete"][..], &names.iter().map(String::as_str).collect::<Vec<_>>()[..], &["--wait=true"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = install("install", &v2, &["--set", "crds.keep=false"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        crd_categories(&c, policies),
        Some(
            json!({"categories": ["authgate"], "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns.name}})
        )
    );
    let out = helm(&h, &["uninstall", &release, "--namespace", &ns.name, "--kubeconfig", &kubeconfig, "--wait"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while crds.iter().any(|n| crd_categories(&c, n).is_some()) {
        assert!(std::time::Instant::now() < deadline, "CRDs deleted with the release");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `kubectl get <what> -n ns` until condition `type_` is `status`, for the
/// object's current generation.
async fn wait_condition(c: &common::cluster::Cluster, ns: &str, what: &str, type_: &str, status: &str) {
    common::cluster::wait_for(&format!("{what} {type_}={status}"), std::time::Duration::from_secs(90), || async {
        let out = c.kubectl(&["get", "-n", ns, what, "-o", "json"]);
        let obj: Value = serde_json::from_slice(&out.stdout).ok()?;
        let cond = obj["status"]["conditions"].as_array()?.iter().find(|x| x["type"] == type_)?.clone();
        (cond["status"] == status && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_controller_with_only_the_namespaced_rbac_reconciles_its_namespace() {
    let Some(h) = helm_bin() else { return };
    let Some(c) = connect().await else { return };
    let team = c.namespace("chart-scoped");
    let system = c.namespace("chart-system");
    let release = format!("sc{:06x}", rand::random::<u32>() & 0xff_ffff);
    let sa = format!("{release}-authgate");

    // The chart's ServiceAccount and RBAC for watchNamespace, nothing else.
    let values = format!("watchNamespace: {}\n", team.name);
    let (_dir, file) = values_file(&values);
    let out = helm(
        &h,
        &[
            "template",
            &release,
            &chart(),
            "--namespace",
            &system.name,
            "-f",
            &file,
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rendered = String::from_utf8(out.stdout).unwrap();
    let objects = parse(&rendered);
    struct Cleanup<'a>(&'a common::cluster::Cluster, Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let mut args = vec!["delete", "--ignore-not-found"];
            args.extend(self.1.iter().map(String::as_str));
            let _ = self.0.kubectl(&args);
        }
    }
    let cluster_scoped: Vec<String> = objects
        .iter()
        .filter(|o| o["metadata"].get("namespace").is_none())
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap().to_lowercase(), o["metadata"]["name"].as_str().unwrap()))
        .collect();
    let _cleanup = Cleanup(&c, cluster_scoped);
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &rendered);
    assert!(out.status.success(), "{}", text(&out));

    // A kubeconfig with that ServiceAccount's token.
    let token = c.kubectl(&["create", "token", &sa, "-n", &system.name, "--duration=1h"]);
    assert!(token.status.success(), "{}", text(&token));
    let token = String::from_utf8(token.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, c.kubectl(&["config", "view", "--raw", "--minify"]).stdout).unwrap();
    let as_sa =
        |args: &[&str]| Command::new(&c.kubectl).arg("--kubeconfig").arg(&kubeconfig).args(args).output().unwrap();
    for args in [
        vec!["config".to_owned(), "set-credentials".into(), "sa".into(), format!("--token={}", token.trim())],
        vec!["config".into(), "set-context".into(), "--current".into(), "--user=sa".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = as_sa(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Namespaced permissions in the watched namespace only.
    let can = |verb: &str, what: &str, ns: &str| {
        String::from_utf8_lossy(&as_sa(&["auth", "can-i", verb, what, "-n", ns]).stdout).trim().to_owned()
    };
    assert_eq!(can("list", "authpolicies.authgate.dev", &team.name), "yes");
    assert_eq!(can("create", "deployments.apps", &team.name), "yes");
    for ns in [system.name.as_str(), "default"] {
        assert_eq!(can("list", "authpolicies.authgate.dev", ns), "no", "{ns}");
        assert_eq!(can("list", "secrets", ns), "no", "{ns}");
    }
    assert_eq!(can("get", "leases.coordination.k8s.io", &system.name), "yes", "its leader Lease");

    // The controller, as the chart runs it, under that identity.
    let log = dir.path().join("controller.log");
    let controller = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["--log-format", "text", "controller", "--watch-namespace", &team.name])
        .args(["--leader-election", "--lease-namespace", &system.name, "--lease-name", &release])
        .arg(format!("--metrics-addr=127.0.0.1:{}", common::free_port()))
        .args(["--admin-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("controller starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _controller = Kill(controller);
    c.apply(&team.name, &common::cluster::github_provider_yaml("gh", "gh-secret", "s3cret"));
    c.apply(&team.name, &common::cluster::policy_yaml("app", &["gh"]));
    wait_condition(&c, &team.name, "identityprovider/gh", "Ready", "True").await;
    wait_condition(&c, &team.name, "authpolicy/app", "Ready", "True").await;
    let out = c.kubectl(&[
        "get",
        "-n",
        &team.name,
        "deployment,service,secret",
        "-l",
        "app.kubernetes.io/managed-by=authgate",
        "-o",
        "name",
    ]);
    let children = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(children.contains("deployment.apps/") && children.contains("service/"), "{children}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.to_lowercase().contains("forbidden"), "a permission the Role lacks:\n{logged}");
}
