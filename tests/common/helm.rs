//! The real `helm` for the chart tests (`tests/chart.rs`,
//! `tests/chart_cluster.rs`): finding it (AUTHGATE_HELM, or `helm` on PATH;
//! missing skips locally and fails under `CI=true`), running it with
//! caches of its own, rendering and linting a value set, and picking
//! objects out of what it rendered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::cluster::repo;

pub fn helm_bin() -> Option<PathBuf> {
    let path = std::env::var_os("AUTHGATE_HELM").filter(|p| !p.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("helm")).find(|c| c.is_file()))
    });
    let found = path.as_ref().is_some_and(|p| p.is_file());
    super::require("helm (set AUTHGATE_HELM, or put helm on PATH; scripts/setup.sh builds it)", found);
    path.filter(|_| found)
}

pub fn helm(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("authgate-helm-cache"))
        .env("HELM_CONFIG_HOME", std::env::temp_dir().join("authgate-helm-config"))
        .env("HELM_DATA_HOME", std::env::temp_dir().join("authgate-helm-data"))
        .output()
        .expect("helm runs")
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn chart() -> String {
    repo("charts/authgate").to_string_lossy().into_owned()
}

/// A values file with `yaml` in a fresh temporary directory.
pub fn values_file(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

/// Parses a multi-document YAML stream into JSON values (empty documents dropped).
pub fn parse(stream: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(stream)
        .unwrap_or_else(|e| panic!("rendered YAML parses: {e}\n{stream}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template` of `chart` with a values file; the objects.
pub fn render(h: &Path, chart: &str, values: &str) -> Vec<Value> {
    let (_dir, file) = values_file(values);
    let out = helm(h, &["template", "ag", chart, "--namespace", "authgate-system", "-f", &file]);
    assert!(out.status.success(), "helm template with\n{values}\n{}", text(&out));
    parse(&String::from_utf8(out.stdout).unwrap())
}

pub fn lint(h: &Path, chart: &str, values: &str) {
    let (_dir, file) = values_file(values);
    let out = helm(h, &["lint", "--strict", chart, "-f", &file]);
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("1 chart(s) linted, 0 chart(s) failed"),
        "helm lint with\n{values}\n{t}"
    );
}

pub fn all<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn one<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", names(items)))
}

pub fn names(items: &[Value]) -> Vec<String> {
    items.iter().map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"])).collect()
}

pub fn pod_spec(items: &[Value]) -> &Value {
    &one(items, "Deployment", "ag-authgate")["spec"]["template"]["spec"]
}

pub fn args(items: &[Value]) -> Vec<String> {
    pod_spec(items)["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect()
}

/// Whether a rule grants anything on namespaced resources of the
/// controller's (everything but non-resource URLs).
pub fn grants_resources(role: &Value) -> bool {
    role["rules"].as_array().into_iter().flatten().any(|r| r.get("resources").is_some())
}

/// ClusterRoles bound to the controller's ServiceAccount by a ClusterRoleBinding.
pub fn controller_cluster_roles(items: &[Value]) -> Vec<&Value> {
    all(items, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| b["subjects"].as_array().unwrap().iter().any(|s| s["name"] == "ag-authgate"))
        .map(|b| one(items, "ClusterRole", b["roleRef"]["name"].as_str().unwrap()))
        .collect()
}

pub const CRD_NAMES: [&str; 4] = [
    "apitokens.authgate.dev",
    "authpolicies.authgate.dev",
    "identityproviders.authgate.dev",
    "sessionrevocations.authgate.dev",
];

pub fn crd_names(items: &[Value]) -> Vec<String> {
    let mut n: Vec<String> =
        all(items, "CustomResourceDefinition").iter().map(|c| c["metadata"]["name"].as_str().unwrap().into()).collect();
    n.sort();
    n
}

pub const EVERYTHING: &str = r#"
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

/// A parent chart carrying this chart as a subchart, with `global` values
/// and values for the subchart.
pub fn parent_chart() -> tempfile::TempDir {
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
    parent
}
