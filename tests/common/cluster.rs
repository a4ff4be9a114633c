//! Harness for tests against the real control plane that `make test`
//! starts (tests/controlplane/cp.sh): connection, namespaces, the controller
//! process, kubectl and polling helpers.
//!
//! Without a control plane a test skips locally, but under `CI=true` it
//! fails (see [`super::require`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::{free_port, require};

/// A connection to the test control plane.
pub struct Cluster {
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

/// Connects, installing the CRDs once. `None` means skip (never in CI).
pub async fn connect() -> Option<Cluster> {
    super::init();
    let Some(path) = std::env::var_os("AUTHGATE_TEST_KUBECONFIG").map(PathBuf::from) else {
        require("a control plane (set AUTHGATE_TEST_KUBECONFIG, or run `make test`)", false);
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("readable kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("valid kubeconfig");
    let client = Client::try_from(config).expect("client");
    let kubectl = std::env::var_os("AUTHGATE_KUBECTL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("kubectl"));
    let cluster = Cluster { client, kubeconfig: path, kubectl };
    static CRDS: OnceLock<()> = OnceLock::new();
    CRDS.get_or_init(|| {
        let out =
            cluster.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &repo("crds").to_string_lossy()]);
        assert!(out.status.success(), "installing CRDs: {}", String::from_utf8_lossy(&out.stderr));
        let out = cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/identityproviders.authgate.dev",
            "crd/authpolicies.authgate.dev",
        ]);
        assert!(out.status.success(), "CRDs not established: {}", String::from_utf8_lossy(&out.stderr));
    });
    Some(cluster)
}

/// A path inside the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

impl Cluster {
    /// Runs kubectl against the test cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl).arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("kubectl runs")
    }

    /// Runs kubectl, feeding `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `kubectl apply -n ns -f -` that must succeed.
    pub fn apply(&self, ns: &str, yaml: &str) {
        let out = self.kubectl_stdin(&["apply", "-n", ns, "-f", "-"], yaml);
        assert!(out.status.success(), "apply failed: {}\n{yaml}", String::from_utf8_lossy(&out.stderr));
    }

    /// Creates a fresh namespace, deleted when the guard drops.
    pub fn namespace(&self, prefix: &str) -> Namespace {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let out = self.kubectl(&["create", "namespace", &name]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Namespace { name, kubectl: self.kubectl.clone(), kubeconfig: self.kubeconfig.clone() }
    }

    /// The kubeconfig the controller runs with: the admin's, or, with
    /// `AUTHGATE_TEST_RBAC=chart`, a token of the Helm chart's ServiceAccount
    /// bound to nothing but the chart's own RBAC.
    pub fn controller_kubeconfig(&self) -> PathBuf {
        if !rbac_mode() {
            return self.kubeconfig.clone();
        }
        static RESTRICTED: OnceLock<PathBuf> = OnceLock::new();
        RESTRICTED.get_or_init(|| self.chart_identity()).clone()
    }

    fn chart_identity(&self) -> PathBuf {
        let helm = std::env::var("AUTHGATE_HELM").unwrap_or_else(|_| "helm".into());
        let rendered = Command::new(&helm)
            .args(["template", "authgate", &repo("charts/authgate").to_string_lossy(), "--namespace", CHART_NAMESPACE])
            .args(["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"])
            .output()
            .unwrap_or_else(|e| panic!("RBAC mode needs helm ({helm}): {e}"));
        assert!(rendered.status.success(), "helm template: {}", String::from_utf8_lossy(&rendered.stderr));
        let _ = self.kubectl(&["create", "namespace", CHART_NAMESPACE]);
        let out = self.kubectl_stdin(&["apply", "-f", "-"], &String::from_utf8_lossy(&rendered.stdout));
        assert!(out.status.success(), "applying chart RBAC: {}", String::from_utf8_lossy(&out.stderr));
        let token = self.kubectl(&["create", "token", "authgate", "-n", CHART_NAMESPACE, "--duration=2h"]);
        assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
        let token = String::from_utf8(token.stdout).unwrap();
        let path = std::env::temp_dir().join(format!("authgate-rbac-{}.kubeconfig", std::process::id()));
        let raw = self.kubectl(&["config", "view", "--raw", "--minify"]);
        std::fs::write(&path, raw.stdout).unwrap();
        let cfg = |args: &[&str]| {
            let out = Command::new(&self.kubectl).arg("--kubeconfig").arg(&path).args(args).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        cfg(&["config", "set-credentials", "chart-sa", &format!("--token={}", token.trim())]);
        cfg(&["config", "set-context", "--current", "--user=chart-sa"]);
        // Prove the identity really is restricted before trusting the suite.
        let probe = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&path)
            .args(["auth", "can-i", "create", "clusterroles"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "no", "chart identity must not be admin");
        path
    }

    /// Everything authgate and Kubernetes say about a namespace, for a
    /// failing test's output.
    pub fn describe(&self, ns: &str) -> String {
        let out = self.kubectl(&["get", "-n", ns, "authgate,deploy,rs,pods,events", "-o", "wide"]);
        let yaml = self.kubectl(&["get", "-n", ns, "authgate", "-o", "yaml"]);
        let nodes = self.kubectl(&["get", "nodes", "-o", "wide"]);
        format!(
            "{}{}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&yaml.stdout),
            String::from_utf8_lossy(&nodes.stdout)
        )
    }

    /// A namespaced API.
    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), ns)
    }
}

/// Namespace the chart installs into in RBAC mode; the leader Lease lives here.
pub const CHART_NAMESPACE: &str = "authgate-system";

/// Whether the controller runs under the chart's RBAC instead of as admin.
pub fn rbac_mode() -> bool {
    std::env::var("AUTHGATE_TEST_RBAC").is_ok_and(|v| v == "chart")
}

/// A namespace that is deleted (without waiting) on drop.
pub struct Namespace {
    pub name: String,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}

/// A running `authgate controller`, killed on drop.
pub struct ControllerProcess {
    child: Child,
    pub metrics_port: u16,
}

impl ControllerProcess {
    /// Starts a controller scoped to `ns` with the given resync period.
    pub fn start(cluster: &Cluster, ns: &str, resync_seconds: u64) -> Self {
        Self::start_with(cluster, ns, resync_seconds, &[])
    }

    /// Starts a controller with extra arguments.
    pub fn start_with(cluster: &Cluster, ns: &str, resync_seconds: u64, extra: &[&str]) -> Self {
        let metrics_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["--log-format", "text", "controller", "--watch-namespace", ns])
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            // Several controllers run side by side here; the default admin port would clash.
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--resync-seconds")
            .arg(resync_seconds.to_string())
            .args(extra)
            .env("KUBECONFIG", cluster.controller_kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("controller starts");
        Self { child, metrics_port }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The controller's /metrics text.
    pub async fn metrics(&self) -> String {
        self.metrics_opt().await.expect("controller serves /metrics")
    }

    /// The controller's /metrics text, or `None` while it is not serving yet.
    pub async fn metrics_opt(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    /// Kills the process at once (SIGKILL), as a crashed node would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition of `type_`, if present.
pub fn condition<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// (status, reason) of a condition, for compact asserts.
pub fn cond_state(conds: &[Condition], type_: &str) -> Option<(String, String)> {
    condition(conds, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

/// A client Secret plus a GitHub provider restricted to an org (needs no network).
pub fn github_provider_yaml(name: &str, secret: &str, value: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: {secret}}}
stringData: {{client-secret: {value}}}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  type: github
  clientId: client-{name}
  clientSecretRef: {{name: {secret}, key: client-secret}}
  allowedOrgs: [acme]
"#
    )
}

/// A policy protecting `app` with the given providers.
pub fn policy_yaml(name: &str, providers: &[&str]) -> String {
    format!(
        r#"apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: {name}}}
spec:
  upstream: {{service: {{name: app, port: 8080}}}}
  externalUrl: https://{name}.example.com
  providers: [{}]
"#,
        providers.join(", ")
    )
}

/// An Opaque Secret `name` with one string key.
pub fn secret_yaml(name: &str, key: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{{key}: {value}}}\n")
}

/// The condition of `type_` of AuthPolicy `name`, if it has one yet.
pub async fn policy_condition(api: &Api<authgate::api::AuthPolicy>, name: &str, type_: &str) -> Option<Condition> {
    let o = api.get_opt(name).await.ok()??;
    condition(&o.status?.conditions, type_).cloned()
}

/// The condition of `type_` of IdentityProvider `name`, if it has one yet.
pub async fn provider_condition(
    api: &Api<authgate::api::IdentityProvider>,
    name: &str,
    type_: &str,
) -> Option<Condition> {
    let o = api.get_opt(name).await.ok()??;
    condition(&o.status?.conditions, type_).cloned()
}

/// `Some(())` when `c` has this status and reason, for [`wait_for`].
pub fn has(c: Option<Condition>, status: &str, reason: &str) -> Option<()> {
    c.filter(|c| c.status == status && c.reason == reason).map(|_| ())
}

/// The `gateway.yaml` in policy `policy`'s credentials Secret, if it exists.
pub async fn gateway_config(c: &Cluster, ns: &str, policy: &str) -> Option<authgate::gateway::GatewayConfig> {
    let secret =
        c.api::<k8s_openapi::api::core::v1::Secret>(ns).get_opt(&format!("{policy}-auth-credentials")).await.ok()??;
    let yaml = secret.data?.remove("gateway.yaml")?;
    Some(authgate::gateway::GatewayConfig::from_yaml(std::str::from_utf8(&yaml.0).ok()?).expect("a valid gateway.yaml"))
}
