//! The Helm chart, rendered by the real `helm` (AUTHGATE_HELM, or `helm` on
//! PATH): `helm lint --strict` and `helm template` for each value set, with
//! assertions on the rendered objects; the values schema refusing typos and
//! wrong types; the CRD templates rendering exactly `authgate crd`'s CRDs;
//! and, on the real control plane, `helm install`/`upgrade`/`uninstall`
//! adopting, upgrading and keeping the CRDs.
//!
//! A missing helm skips locally and fails under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cluster::{connect, repo};
use serde_json::{Value, json};

fn helm_bin() -> Option<PathBuf> {
    let path = std::env::var_os("AUTHGATE_HELM").filter(|p| !p.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("helm")).find(|c| c.is_file()))
    });
    let found = path.as_ref().is_some_and(|p| p.is_file());
    common::require("helm (set AUTHGATE_HELM, or put helm on PATH; scripts/setup.sh builds it)", found);
    path.filter(|_| found)
}

fn helm(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("authgate-helm-cache"))
        .env("HELM_CONFIG_HOME", std::env::temp_dir().join("authgate-helm-config"))
        .env("HELM_DATA_HOME", std::env::temp_dir().join("authgate-helm-data"))
        .output()
        .expect("helm runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn chart() -> String {
    repo("charts/authgate").to_string_lossy().into_owned()
}

/// A values file with `yaml` in a fresh temporary directory.
fn values_file(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

/// Parses a multi-document YAML stream into JSON values (empty documents dropped).
fn parse(stream: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(stream)
        .unwrap_or_else(|e| panic!("rendered YAML parses: {e}\n{stream}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template` of `chart` with a values file; the objects.
fn render(h: &Path, chart: &str, values: &str) -> Vec<Value> {
    let (_dir, file) = values_file(values);
    let out = helm(h, &["template", "ag", chart, "--namespace", "authgate-system", "-f", &file]);
    assert!(out.status.success(), "helm template with\n{values}\n{}", text(&out));
    parse(&String::from_utf8(out.stdout).unwrap())
}

fn lint(h: &Path, chart: &str, values: &str) {
    let (_dir, file) = values_file(values);
    let out = helm(h, &["lint", "--strict", chart, "-f", &file]);
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("1 chart(s) linted, 0 chart(s) failed"),
        "helm lint with\n{values}\n{t}"
    );
}

fn all<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", names(items)))
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"])).collect()
}

fn pod_spec(items: &[Value]) -> &Value {
    &one(items, "Deployment", "ag-authgate")["spec"]["template"]["spec"]
}

fn args(items: &[Value]) -> Vec<String> {
    pod_spec(items)["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect()
}

/// Whether a rule grants anything on namespaced resources of the
/// controller's (everything but non-resource URLs).
fn grants_resources(role: &Value) -> bool {
    role["rules"].as_array().into_iter().flatten().any(|r| r.get("resources").is_some())
}

/// ClusterRoles bound to the controller's ServiceAccount by a ClusterRoleBinding.
fn controller_cluster_roles(items: &[Value]) -> Vec<&Value> {
    all(items, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| b["subjects"].as_array().unwrap().iter().any(|s| s["name"] == "ag-authgate"))
        .map(|b| one(items, "ClusterRole", b["roleRef"]["name"].as_str().unwrap()))
        .collect()
}

const CRD_NAMES: [&str; 4] = [
    "apitokens.authgate.dev",
    "authpolicies.authgate.dev",
    "identityproviders.authgate.dev",
    "sessionrevocations.authgate.dev",
];

fn crd_names(items: &[Value]) -> Vec<String> {
    let mut n: Vec<String> =
        all(items, "CustomResourceDefinition").iter().map(|c| c["metadata"]["name"].as_str().unwrap().into()).collect();
    n.sort();
    n
}

const EVERYTHING: &str = r#"
replicaCount: 3
metrics:
  serviceMonitor:
    enabled: true
    namespace: monitoring
    interval: 15s
    scrapeTimeout: 10s
    labels: {release: prom}
    relabelings: [{action: replace, targetLabel: team, replacement: platform}]
    metricRelabelings: [{action: drop, sourceLabels: [__name__], regex: go_.*}]
  gatewayPodMonitor:
    enabled: true
    namespace: monitoring
    interval: 20s
    scrapeTimeout: 5s
    labels: {release: prom}
    relabelings: [{action: replace, targetLabel: tier, replacement: edge}]
    metricRelabelings: [{action: drop, sourceLabels: [__name__], regex: process_.*}]
networkPolicy:
  enabled: true
  ingress:
    from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
  egress:
    enabled: true
    rules:
      - to: [{ipBlock: {cidr: 10.0.0.10/32}}]
        ports: [{port: 6443, protocol: TCP}]
podDisruptionBudget: {enabled: true}
extraArgs: [--admin-addr=127.0.0.1:9091]
extraEnv: [{name: HTTPS_PROXY, value: "http://proxy:3128"}]
extraVolumes: [{name: ca, configMap: {name: corporate-ca}}]
extraVolumeMounts: [{name: ca, mountPath: /etc/ssl/corporate, readOnly: true}]
podLabels: {team: platform}
podAnnotations: {note: hello}
priorityClassName: platform-high
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]}]
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: platform, effect: NoSchedule}]
resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}
# OpenShift's restricted SCC assigns the ids.
podSecurityContext: {runAsUser: null, runAsGroup: null}
"#;

#[test]
fn helm_lint_and_template_each_value_set() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();

    // Defaults: the CRDs (kept), cluster-wide RBAC, restricted pods.
    lint(&h, &chart, "");
    let items = render(&h, &chart, "");
    assert_eq!(crd_names(&items), CRD_NAMES);
    for crd in all(&items, "CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"], json!({"helm.sh/resource-policy": "keep"}));
        assert_eq!(crd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm");
    }
    let bound = controller_cluster_roles(&items);
    assert!(bound.iter().any(|r| grants_resources(r)), "cluster-wide by default");
    assert!(all(&items, "Role").iter().all(|r| r["metadata"]["name"] == "ag-authgate-leader-election"));
    let pod = pod_spec(&items);
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        pod["containers"][0]["securityContext"],
        json!({"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    for absent in ["priorityClassName", "topologySpreadConstraints", "affinity", "volumes"] {
        assert!(pod.get(absent).is_none(), "{absent} by default: {pod}");
    }
    for kind in ["NetworkPolicy", "ServiceMonitor", "PodMonitor", "PodDisruptionBudget"] {
        assert!(all(&items, kind).is_empty(), "no {kind} by default");
    }

    // Namespaced: the controller's namespaced permissions in a Role there.
    let namespaced = "watchNamespace: team\n";
    lint(&h, &chart, namespaced);
    let items = render(&h, &chart, namespaced);
    assert!(args(&items).contains(&"--watch-namespace=team".to_owned()));
    let role = one(&items, "Role", "ag-authgate");
    assert_eq!(role["metadata"]["namespace"], "team");
    let granted: Vec<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()))
        .collect();
    for want in ["authpolicies", "identityproviders", "secrets", "deployments", "configmaps", "events"] {
        assert!(granted.contains(&want), "{want} in {granted:?}");
    }
    let binding = one(&items, "RoleBinding", "ag-authgate");
    assert_eq!(binding["metadata"]["namespace"], "team");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ag-authgate"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ag-authgate", "namespace": "authgate-system"}])
    );
    let bound = controller_cluster_roles(&items);
    assert!(!bound.is_empty() && bound.iter().all(|r| !grants_resources(r)), "cluster-wide only URLs: {bound:?}");
    assert!(bound[0]["rules"][0]["nonResourceURLs"].as_array().unwrap().contains(&json!("/openid/v1/jwks")));

    // Everything on.
    lint(&h, &chart, EVERYTHING);
    let items = render(&h, &chart, EVERYTHING);
    let pod = pod_spec(&items);
    assert!(pod["securityContext"].get("runAsUser").is_none() && pod["securityContext"].get("runAsGroup").is_none());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "only the ids are left out");
    assert_eq!(pod["securityContext"]["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert_eq!(pod["priorityClassName"], "platform-high");
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
            [0]["key"],
        "kubernetes.io/arch"
    );
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["volumes"], json!([{"name": "ca", "configMap": {"name": "corporate-ca"}}]));
    let container = &pod["containers"][0];
    assert_eq!(container["volumeMounts"], json!([{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": true}]));
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    );
    let env = container["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "HTTPS_PROXY", "value": "http://proxy:3128"})), "{env:?}");
    assert!(env.iter().any(|e| e["name"] == "POD_NAMESPACE"), "the chart's own env stays");
    assert_eq!(args(&items).last().map(String::as_str), Some("--admin-addr=127.0.0.1:9091"));
    let meta = &one(&items, "Deployment", "ag-authgate")["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["team"], "platform");
    assert_eq!(meta["labels"]["app.kubernetes.io/name"], "authgate-controller", "selector labels stay");
    assert_eq!(meta["annotations"]["note"], "hello");
    let sm = one(&items, "ServiceMonitor", "ag-authgate");
    assert_eq!(sm["metadata"]["namespace"], "monitoring");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(sm["spec"]["namespaceSelector"], json!({"matchNames": ["authgate-system"]}), "finds the Service");
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!((&ep["port"], &ep["interval"], &ep["scrapeTimeout"]), (&json!("metrics"), &json!("15s"), &json!("10s")));
    assert_eq!(ep["relabelings"][0]["targetLabel"], "team");
    assert_eq!(ep["metricRelabelings"][0]["regex"], "go_.*");
    let pm = one(&items, "PodMonitor", "ag-authgate-gateways");
    assert_eq!(pm["metadata"]["namespace"], "monitoring");
    assert_eq!(pm["metadata"]["labels"]["release"], "prom");
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    assert_eq!((&ep["port"], &ep["interval"], &ep["scrapeTimeout"]), (&json!("ops"), &json!("20s"), &json!("5s")));
    assert_eq!(ep["relabelings"][0]["targetLabel"], "tier");
    assert_eq!(ep["metricRelabelings"][0]["regex"], "process_.*");
    let np = one(&items, "NetworkPolicy", "ag-authgate");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["ingress"],
        json!([{"ports": [{"port": "metrics", "protocol": "TCP"}],
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}])
    );
    let egress = np["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 2, "DNS and the apiserver: {egress:?}");
    assert_eq!(egress[0]["ports"], json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]));
    assert_eq!(
        egress[1],
        json!({"to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]})
    );

    // NetworkPolicy defaults: ingress from anywhere to the metrics port, egress untouched.
    let items = render(&h, &chart, "networkPolicy: {enabled: true}\n");
    let np = one(&items, "NetworkPolicy", "ag-authgate");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(np["spec"]["ingress"], json!([{"ports": [{"port": "metrics", "protocol": "TCP"}]}]));
    assert!(np["spec"].get("egress").is_none());

    // CRDs managed elsewhere: none rendered.
    let off = "crds: {enabled: false}\n";
    lint(&h, &chart, off);
    let items = render(&h, &chart, off);
    assert!(crd_names(&items).is_empty(), "{:?}", names(&items));
    assert!(all(&items, "Deployment").len() == 1, "the rest is still there");

    // CRDs not kept: no resource policy.
    let unkept = "crds: {keep: false}\n";
    lint(&h, &chart, unkept);
    let items = render(&h, &chart, unkept);
    assert_eq!(crd_names(&items), CRD_NAMES);
    for crd in all(&items, "CustomResourceDefinition") {
        assert!(crd["metadata"].get("annotations").is_none(), "{}", crd["metadata"]);
    }
}

#[test]
fn works_as_a_subchart_with_global_values() {
    let Some(h) = helm_bin() else { return };
    let parent = tempfile::tempdir().unwrap();
    std::fs::write(
        parent.path().join("Chart.yaml"),
        "apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n  - name: authgate\n    version: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        parent.path().join("values.yaml"),
        "global:\n  imageRegistry: registry.example\n  anything: {nested: true}\nauthgate:\n  replicaCount: 1\n  leaderElection: {enabled: false}\n",
    )
    .unwrap();
    let charts = parent.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    let out = Command::new("cp").arg("-r").arg(chart()).arg(charts.join("authgate")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let p = parent.path().to_string_lossy().into_owned();
    let out = helm(&h, &["lint", "--strict", &p]);
    assert!(out.status.success(), "{}", text(&out));
    let out = helm(&h, &["template", "ag", &p, "--namespace", "authgate-system"]);
    assert!(out.status.success(), "{}", text(&out));
    let items = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(crd_names(&items), CRD_NAMES);
    assert_eq!(one(&items, "Deployment", "ag-authgate")["spec"]["replicas"], 1, "the parent's values reach it");
}

#[test]
fn the_values_schema_refuses_typos_and_wrong_types() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();
    for (values, error) in [
        ("replicaCont: 2\n", "additional properties 'replicaCont' not allowed"),
        ("replicaCount: two\n", "at '/replicaCount': got string, want integer"),
        ("crds: {enable: true}\n", "additional properties 'enable' not allowed"),
        ("crds: {keep: \"yes\"}\n", "at '/crds/keep': got string, want boolean"),
        ("extraArgs: --verbose\n", "at '/extraArgs': got string, want array"),
        ("extraEnv: [{value: x}]\n", "at '/extraEnv/0': missing property 'name'"),
        ("podSecurityContext: {runAsUser: root}\n", "at '/podSecurityContext/runAsUser'"),
        ("metrics: {serviceMonitor: {scrapeTimeout: 10}}\n", "at '/metrics/serviceMonitor/scrapeTimeout'"),
        ("networkPolicy: {egress: {rules: {to: []}}}\n", "at '/networkPolicy/egress/rules': got object, want array"),
        ("global: 3\n", "at '/global': got number, want object"),
    ] {
        let (_dir, file) = values_file(values);
        for cmd in ["template", "lint"] {
            let out = helm(&h, &[cmd, chart.as_str(), "-f", &file]);
            let t = text(&out);
            assert!(!out.status.success(), "helm {cmd} with {values:?} should fail:\n{t}");
            assert!(t.contains(error), "helm {cmd} with {values:?}: want {error:?} in:\n{t}");
        }
    }
}

/// Everything of a CRD but the metadata the chart adds.
fn without_chart_metadata(mut crd: Value) -> Value {
    let meta = crd["metadata"].as_object_mut().unwrap();
    meta.remove("annotations");
    meta.remove("labels");
    crd
}

#[test]
fn the_crd_templates_render_exactly_authgate_crd() {
    let Some(h) = helm_bin() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_authgate")).arg("crd").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut want = parse(&String::from_utf8(out.stdout).unwrap());
    want.sort_by_key(|c| c["metadata"]["name"].as_str().unwrap().to_owned());
    assert_eq!(want.len(), 4);
    for keep in [true, false] {
        let items = render(&h, &chart(), &format!("crds: {{keep: {keep}}}\n"));
        let mut got: Vec<Value> =
            all(&items, "CustomResourceDefinition").into_iter().cloned().map(without_chart_metadata).collect();
        got.sort_by_key(|c| c["metadata"]["name"].as_str().unwrap().to_owned());
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w,
                "{} differs from `authgate crd` (keep: {keep}): run `make generate`",
                w["metadata"]["name"]
            );
        }
    }
}

// ---------------------------------------------------------------- control plane

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
