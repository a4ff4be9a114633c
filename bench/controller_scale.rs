//! Controller scale benchmark (issue 3, item 7). Not a timed test: run it with
//! `bench/controller-scale.sh`, which starts the local control plane, builds the
//! release controller and then runs this program through `cargo bench`.
//!
//! For each round (default 1, 100 and 1000 AuthPolicies) it:
//! 1. creates 10 fresh namespaces, each with a client Secret and a `github`
//!    IdentityProvider (`allowedOrgs: [acme]`; github needs no network);
//! 2. starts a fresh `authgate controller` (all namespaces, short resync) so its
//!    peak memory (VmHWM) belongs to this round alone, and waits for the providers;
//! 3. watches AuthPolicies (Ready) and gateway Deployments (seen, Available),
//!    then creates the policies spread over the namespaces with bounded
//!    concurrency, stamping each when its create call returned;
//! 4. reports apply→Ready latency (client side), the split of that time
//!    between our controller and Kubernetes, writes per reconcile and per policy;
//! 5. holds a steady-state window and counts the controller's writes and
//!    reconciles in it, plus its RSS and the apiserver's requests;
//! 6. stops the controller and deletes the round's namespaces.
//!
//! Configuration (environment; the script sets the first two):
//! `BENCH_KUBECONFIG`, `BENCH_CONTROLLER_BIN`, `BENCH_OUT` (results directory),
//! `ROUNDS` (`1,100,1000`), `NAMESPACES` (10), `CONCURRENCY` (32),
//! `RESYNC_SECONDS` (30), `STEADY_SECONDS` (300), `READY_TIMEOUT_SECONDS` (900).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ROUND_LABEL: &str = "authgate.dev/bench-round";
const BENCH_LABEL: &str = "authgate.dev/bench";
const PROVIDER: &str = "github";

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Seconds since the program started (monotonic).
fn now() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

struct Settings {
    kubeconfig: PathBuf,
    controller_bin: PathBuf,
    out: PathBuf,
    rounds: Vec<usize>,
    namespaces: usize,
    concurrency: usize,
    resync: u64,
    steady: u64,
    ready_timeout: u64,
}

impl Settings {
    fn from_env() -> Res<Self> {
        let need = |n: &str| {
            std::env::var_os(n)
                .map(PathBuf::from)
                .ok_or_else(|| format!("{n} is not set (run bench/controller-scale.sh)"))
        };
        let rounds = std::env::var("ROUNDS").unwrap_or_else(|_| "1,100,1000".into());
        Ok(Self {
            kubeconfig: need("BENCH_KUBECONFIG")?,
            controller_bin: need("BENCH_CONTROLLER_BIN")?,
            out: std::env::var_os("BENCH_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("authgate-controller-scale")),
            rounds: rounds
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse())
                .collect::<Result<_, _>>()?,
            namespaces: env_or("NAMESPACES", 10),
            concurrency: env_or("CONCURRENCY", 32),
            resync: env_or("RESYNC_SECONDS", 30),
            steady: env_or("STEADY_SECONDS", 300),
            ready_timeout: env_or("READY_TIMEOUT_SECONDS", 900),
        })
    }
}

fn policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("authgate.dev", "v1alpha1", "AuthPolicy"), "authpolicies")
}

fn provider_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("authgate.dev", "v1alpha1", "IdentityProvider"),
        "identityproviders",
    )
}

/// The `Ready` condition of an object's status: (status, reason).
fn ready_of(obj: &DynamicObject) -> Option<(String, String)> {
    let conds = obj.data.get("status")?.get("conditions")?.as_array()?;
    let c = conds.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    Some((c.get("status")?.as_str()?.to_owned(), c.get("reason").and_then(Value::as_str).unwrap_or("").to_owned()))
}

// ------------------------------------------------------------------ metrics

/// One scrape of the controller's /metrics, plus its process figures.
#[derive(Clone, Debug, Default)]
struct Scrape {
    /// `series{labels}` → value.
    series: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut series = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some((key, value)) = line.rsplit_once(' ')
                && let Ok(v) = value.trim().parse::<f64>()
            {
                series.insert(key.trim().to_owned(), v);
            }
        }
        Self { series }
    }

    /// Sum of every series named `name` whose labels contain all of `labels`.
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| {
                let (n, l) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name && labels.iter().all(|want| l.contains(want))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn reconciles(&self, kind: &str) -> f64 {
        self.sum("authgate_controller_reconciles_total", &[&format!("kind=\"{kind}\"")])
    }
    fn writes(&self, kind: &str) -> f64 {
        self.sum("authgate_controller_writes_total", &[&format!("kind=\"{kind}\"")])
    }
    fn errors(&self) -> f64 {
        self.sum("authgate_controller_reconciles_total", &["result=\"error\""])
    }
    fn duration_sum(&self, kind: &str) -> f64 {
        self.sum("authgate_controller_reconcile_duration_seconds_sum", &[&format!("kind=\"{kind}\"")])
    }
    fn duration_count(&self, kind: &str) -> f64 {
        self.sum("authgate_controller_reconcile_duration_seconds_count", &[&format!("kind=\"{kind}\"")])
    }
    /// Cumulative histogram buckets (le → count) of a kind.
    fn buckets(&self, kind: &str) -> Vec<(f64, f64)> {
        let want = format!("kind=\"{kind}\"");
        let mut out: Vec<(f64, f64)> = self
            .series
            .iter()
            .filter(|(k, _)| {
                k.starts_with("authgate_controller_reconcile_duration_seconds_bucket{") && k.contains(&want)
            })
            .filter_map(|(k, v)| {
                let le = k.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, *v))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

/// Prometheus-style quantile from the difference of two cumulative histograms.
fn histogram_quantile(q: f64, before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| (*le, n - before.iter().find(|(l, _)| l == le).map(|(_, m)| *m).unwrap_or(0.0)))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for (le, n) in delta {
        if n >= rank {
            if le.is_infinite() {
                return Some(lo);
            }
            let inside = n - below;
            return Some(if inside > 0.0 { lo + (le - lo) * (rank - below) / inside } else { le });
        }
        lo = le;
        below = n;
    }
    None
}

/// GET http://addr/metrics over a plain TCP connection.
async fn scrape(port: u16) -> Res<Scrape> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed /metrics response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("/metrics: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(Scrape::parse(body))
}

/// The apiserver's request counters and server-side latency by (verb, resource[/subresource]),
/// summed over every client.
#[derive(Default, Clone)]
struct ApiStats {
    requests: BTreeMap<(String, String), f64>,
    duration_sum: BTreeMap<(String, String), f64>,
    duration_count: BTreeMap<(String, String), f64>,
}

impl ApiStats {
    async fn fetch(client: &Client) -> Self {
        let mut out = Self::default();
        let req = http::Request::get("/metrics").body(Vec::new()).expect("static request");
        let Ok(text) = client.request_text(req).await else { return out };
        for line in text.lines() {
            let (map, rest) = if let Some(rest) = line.strip_prefix("apiserver_request_total{") {
                (&mut out.requests, rest)
            } else if let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_sum{") {
                (&mut out.duration_sum, rest)
            } else if let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_count{") {
                (&mut out.duration_count, rest)
            } else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or("")
                    .to_owned()
            };
            let (verb, resource, sub) = (label("verb"), label("resource"), label("subresource"));
            let resource = if sub.is_empty() { resource } else { format!("{resource}/{sub}") };
            *map.entry((verb, resource)).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
        }
        out
    }

    /// Per "VERB resource" of our kinds, children and what Kubernetes makes of them:
    /// (requests, mean server-side ms) since `before`. Watches are left out.
    fn since(&self, before: &Self) -> BTreeMap<String, (f64, f64)> {
        const OURS: [&str; 8] = [
            "secrets",
            "deployments",
            "services",
            "authpolicies",
            "identityproviders",
            "events",
            "replicasets",
            "pods",
        ];
        let d = |a: &BTreeMap<(String, String), f64>, b: &BTreeMap<(String, String), f64>, k: &(String, String)| {
            a.get(k).copied().unwrap_or(0.0) - b.get(k).copied().unwrap_or(0.0)
        };
        self.requests
            .keys()
            .filter(|(verb, res)| verb != "WATCH" && OURS.iter().any(|o| res.split('/').next() == Some(*o)))
            .filter_map(|k| {
                let n = d(&self.requests, &before.requests, k);
                if n <= 0.0 {
                    return None;
                }
                let c = d(&self.duration_count, &before.duration_count, k);
                let mean = if c > 0.0 { 1000.0 * d(&self.duration_sum, &before.duration_sum, k) / c } else { f64::NAN };
                Some((format!("{} {}", k.0, k.1), (n, mean)))
            })
            .collect()
    }
}

/// "VERB resource count×mean" items.
fn api_summary(m: &BTreeMap<String, (f64, f64)>) -> String {
    m.iter().map(|(k, (n, ms))| format!("{k} {n:.0}×{ms:.0}ms")).collect::<Vec<_>>().join(", ")
}

// ------------------------------------------------------------------ process

/// (VmHWM, VmRSS) in KiB of a process.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// (open sockets, threads) of a process: the HTTP/1.1 connections to the apiserver dominate.
fn sockets_threads(pid: u32) -> (usize, usize) {
    let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0);
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    (sockets, threads)
}

/// User + system CPU seconds of a process (assumes USER_HZ = 100, Linux's default).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after "(comm)": state is index 0, utime 11, stime 12.
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds of each control-plane component (pids from cp.sh's state dir) and of this bench.
fn component_cpu() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(state) = std::env::var_os("BENCH_STATE").map(PathBuf::from) {
        for c in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] {
            if let Some(cpu) = std::fs::read_to_string(state.join("pids").join(format!("{c}.pid")))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .and_then(cpu_seconds)
            {
                out.insert(c.to_owned(), cpu);
            }
        }
    }
    if let Some(cpu) = cpu_seconds(std::process::id()) {
        out.insert("bench client".to_owned(), cpu);
    }
    out
}

/// Machine-wide busy CPU seconds (all processes, all cores) from /proc/stat.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0.0);
    Some(busy / 100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).collect()
}

struct Controller {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl Controller {
    async fn start(s: &Settings, round: usize) -> Res<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = s.out.join(format!("controller-{round}.log"));
        let file = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(&s.controller_bin)
            .args(["--log-format", "json", "controller", "--admin-addr", "127.0.0.1:0", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--resync-seconds")
            .arg(s.resync.to_string())
            .env("KUBECONFIG", &s.kubeconfig)
            .env("RUST_LOG", std::env::var("BENCH_CONTROLLER_LOG").unwrap_or_else(|_| "info,kube=warn".into()))
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("controller exited at once")?;
        std::fs::write(s.out.join("controller.pid"), pid.to_string())?;
        let c = Self { child, pid, port, log };
        let start = Instant::now();
        while scrape(port).await.is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("controller did not serve /metrics within 30 s; see {}", c.log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(c)
    }

    async fn stop(mut self) {
        // SIGTERM for a graceful shutdown, then SIGKILL.
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// Warning/error lines in its log, by message (minus the object it names).
    fn log_problems(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let Ok(text) = std::fs::read_to_string(&self.log) else { return out };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            let level = v.get("level").and_then(Value::as_str).unwrap_or("");
            if level != "WARN" && level != "ERROR" {
                continue;
            }
            // Fields are flattened into the line (or nested under "fields", depending on the format).
            let field = |name: &str| {
                v.get(name).or_else(|| v.get("fields").and_then(|f| f.get(name))).and_then(Value::as_str).unwrap_or("")
            };
            let target = v.get("target").and_then(Value::as_str).unwrap_or("");
            // Keep the error class, not object names, so 1000 identical problems group together.
            let err: String = field("error").chars().take(120).collect();
            let key = if err.is_empty() {
                format!("{level} {target}: {}", field("message"))
            } else {
                format!("{level} {target}: {}: {err}", field("message"))
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }
}

// ------------------------------------------------------------------ watches

/// Client-side observation times, keyed by "namespace/policy".
#[derive(Default)]
struct Seen {
    ready: HashMap<String, f64>,
    /// First status with a Ready condition: the controller's first answer.
    answered: HashMap<String, f64>,
    deployment_seen: HashMap<String, f64>,
    deployment_available: HashMap<String, f64>,
    /// Ready transitions seen that were not True/Available (per distinct reason).
    not_ready_reasons: BTreeMap<String, usize>,
    policy_events: usize,
    deployment_events: usize,
}

/// Starts both watches; returns when both have listed (so no event is missed).
async fn start_watches(
    client: &Client,
    round: usize,
    ns_prefix: String,
    seen: Arc<Mutex<Seen>>,
) -> Res<Vec<tokio::task::JoinHandle<()>>> {
    let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();

    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &policy_resource());
    let cfg = watcher::Config::default().labels(&format!("{ROUND_LABEL}={round}"));
    let s1 = seen.clone();
    let h1 = tokio::spawn(async move {
        let mut tx = Some(tx1);
        let mut stream = watcher(policies, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let obj = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("  policy watch error (retrying): {e}");
                    continue;
                }
            };
            let t = now();
            let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
            let mut s = s1.lock().unwrap();
            s.policy_events += 1;
            if ready_of(&obj).is_some() {
                s.answered.entry(key.clone()).or_insert(t);
            }
            match ready_of(&obj) {
                Some((st, _)) if st == "True" => {
                    s.ready.entry(key).or_insert(t);
                }
                Some((st, reason)) => *s.not_ready_reasons.entry(format!("{st}/{reason}")).or_insert(0) += 1,
                None => {}
            }
        }
    });

    let deployments: Api<Deployment> = Api::all(client.clone());
    let cfg = watcher::Config::default().labels("app.kubernetes.io/name=authgate-gateway");
    let s2 = seen.clone();
    let h2 = tokio::spawn(async move {
        let mut tx = Some(tx2);
        let mut stream = watcher(deployments, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            let dep = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("  deployment watch error (retrying): {e}");
                    continue;
                }
            };
            let t = now();
            let ns = dep.namespace().unwrap_or_default();
            if !ns.starts_with(&ns_prefix) {
                continue;
            }
            let name = dep.name_any();
            let policy = name.strip_suffix("-gateway").unwrap_or(&name);
            let key = format!("{ns}/{policy}");
            let available = dep.status.as_ref().and_then(|st| st.available_replicas).unwrap_or(0) >= 1;
            let mut s = s2.lock().unwrap();
            s.deployment_events += 1;
            s.deployment_seen.entry(key.clone()).or_insert(t);
            if available {
                s.deployment_available.entry(key).or_insert(t);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), async {
        let _ = rx1.await;
        let _ = rx2.await;
    })
    .await
    .map_err(|_| "watches did not finish their initial list within 60 s")?;
    Ok(vec![h1, h2])
}

// ------------------------------------------------------------------ cluster set-up

fn ns_name(round: usize, i: usize) -> String {
    format!("bench-scale-{round}-{i:02}")
}

async fn setup_namespaces(client: &Client, s: &Settings, round: usize) -> Res<()> {
    let nss: Api<Namespace> = Api::all(client.clone());
    let pp = PostParams::default();
    for i in 0..s.namespaces {
        let ns = ns_name(round, i);
        let obj: Namespace = serde_json::from_value(json!({
            "metadata": {"name": ns, "labels": {BENCH_LABEL: "controller-scale", ROUND_LABEL: round.to_string()}}
        }))?;
        nss.create(&pp, &obj).await?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "github-client"},
            "stringData": {"client-secret": "bench-secret-value"}
        }))?;
        secrets.create(&pp, &secret).await?;
        let idps: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &provider_resource());
        let idp: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "authgate.dev/v1alpha1",
            "kind": "IdentityProvider",
            "metadata": {"name": PROVIDER, "namespace": ns},
            "spec": {
                "type": "github",
                "clientId": format!("bench-{ns}"),
                "clientSecretRef": {"name": "github-client", "key": "client-secret"},
                "allowedOrgs": ["acme"]
            }
        }))?;
        idps.create(&pp, &idp).await?;
    }
    Ok(())
}

async fn wait_providers_ready(client: &Client, s: &Settings, round: usize) -> Res<()> {
    let start = Instant::now();
    loop {
        let mut ready = 0;
        for i in 0..s.namespaces {
            let idps: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns_name(round, i), &provider_resource());
            if let Some(idp) = idps.get_opt(PROVIDER).await?
                && ready_of(&idp).is_some_and(|(st, _)| st == "True")
            {
                ready += 1;
            }
        }
        if ready == s.namespaces {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("only {ready}/{} IdentityProviders Ready after 120 s", s.namespaces).into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes every bench namespace and waits until they are gone.
async fn cleanup(client: &Client, timeout: Duration) -> Res<()> {
    let nss: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{BENCH_LABEL}=controller-scale"));
    for ns in nss.list(&lp).await? {
        if ns.metadata.deletion_timestamp.is_none() {
            let _ = nss.delete(&ns.name_any(), &DeleteParams::background()).await;
        }
    }
    let start = Instant::now();
    loop {
        let left = nss.list(&lp).await?.items.len();
        if left == 0 {
            return Ok(());
        }
        if start.elapsed() > timeout {
            eprintln!("  warning: {left} bench namespaces still terminating after {timeout:?}; continuing");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn policy_object(ns: &str, name: &str, round: usize) -> Res<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "authgate.dev/v1alpha1",
        "kind": "AuthPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": {ROUND_LABEL: round.to_string()}},
        "spec": {
            "upstream": {"service": {"name": "app", "port": 8080}},
            "externalUrl": format!("https://{name}.{ns}.example.com"),
            "providers": [PROVIDER]
        }
    }))?)
}

/// Creates `n` policies with at most `concurrency` create calls in flight.
/// Returns "ns/name" → time the create call returned, and the retries needed.
async fn create_policies(client: &Client, s: &Settings, round: usize, n: usize) -> Res<(HashMap<String, f64>, usize)> {
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let results: Vec<(String, f64)> = futures::stream::iter(0..n)
        .map(|k| {
            let client = client.clone();
            let retries = retries.clone();
            async move {
                let ns = ns_name(round, k % s.namespaces);
                let name = format!("p-{k:04}");
                let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &policy_resource());
                let obj = policy_object(&ns, &name, round)?;
                let mut attempt = 0;
                loop {
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => {
                            return Ok::<_, Box<dyn std::error::Error + Send + Sync>>((format!("{ns}/{name}"), now()));
                        }
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            eprintln!("  create {ns}/{name} failed ({e}); retry {attempt}");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        })
        .buffer_unordered(s.concurrency.max(1))
        .try_collect()
        .await?;
    Ok((results.into_iter().collect(), retries.load(std::sync::atomic::Ordering::Relaxed)))
}

// ------------------------------------------------------------------ statistics

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ------------------------------------------------------------------ one round

#[derive(Default, Debug)]
struct Round {
    n: usize,
    ready: usize,
    create_secs: f64,
    create_retries: usize,
    lat_p50: f64,
    lat_p99: f64,
    lat_max: f64,
    // Where the time goes (client-side observations, p50 / p99).
    to_answer: (f64, f64),
    to_deployment: (f64, f64),
    deployment_to_available: (f64, f64),
    available_to_ready: (f64, f64),
    reconcile_mean_ms: f64,
    reconcile_p50_ms: Option<f64>,
    reconcile_p99_ms: Option<f64>,
    // Apply phase (from before the first create until writes settle).
    ap_reconciles: f64,
    ap_writes: f64,
    idp_reconciles: f64,
    idp_writes: f64,
    errors: f64,
    apply_cpu_secs: f64,
    apply_wall_secs: f64,
    load_before: String,
    peak_sockets: usize,
    peak_threads: usize,
    steady_sockets_max: usize,
    apply_component_cpu: BTreeMap<String, f64>,
    apply_apiserver: BTreeMap<String, (f64, f64)>,
    not_ready_reasons: BTreeMap<String, usize>,
    // Steady state.
    steady_secs: f64,
    steady_writes: f64,
    steady_ap_reconciles: f64,
    steady_idp_reconciles: f64,
    steady_errors: f64,
    steady_cpu_secs: f64,
    steady_reconcile_mean_ms: f64,
    steady_apiserver: BTreeMap<String, (f64, f64)>,
    // Memory (MiB).
    peak_mib: f64,
    rss_end_mib: f64,
    rss_steady_min_mib: f64,
    rss_steady_max_mib: f64,
    log_problems: BTreeMap<String, usize>,
}

async fn run_round(client: &Client, s: &Settings, n: usize) -> Res<Round> {
    let round = n;
    println!("\n=== round: {n} AuthPolicies over {} namespaces ===", s.namespaces);
    cleanup(client, Duration::from_secs(600)).await?;
    setup_namespaces(client, s, round).await?;
    let ctl = Controller::start(s, round).await?;
    println!("  controller pid {} (metrics :{}, resync {} s, log {})", ctl.pid, ctl.port, s.resync, ctl.log.display());
    wait_providers_ready(client, s, round).await?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let watches = start_watches(client, round, format!("bench-scale-{round}-"), seen.clone()).await?;
    // Let the controller finish reacting to the providers before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let m0 = scrape(ctl.port).await?;
    let cpu0 = cpu_seconds(ctl.pid).unwrap_or(0.0);
    let api_before = ApiStats::fetch(client).await;
    let comp0 = component_cpu();
    let busy0 = machine_busy_seconds().unwrap_or(0.0);
    let load0 = loadavg();
    let t0 = now();
    let (created, create_retries) = create_policies(client, s, round, n).await?;
    let create_secs = now() - t0;
    println!(
        "  created {n} in {create_secs:.2} s ({:.0}/s, {create_retries} retries)",
        n as f64 / create_secs.max(1e-9)
    );

    // Wait for every policy to be observed Ready.
    let deadline = Instant::now() + Duration::from_secs(s.ready_timeout);
    let mut last_print = Instant::now();
    let (mut peak_sockets, mut peak_threads, mut last_sample) = (0usize, 0usize, Instant::now());
    loop {
        let ready = seen.lock().unwrap().ready.len();
        if ready >= n {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("  TIMEOUT: only {ready}/{n} Ready after {} s", s.ready_timeout);
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            let (d, a) = {
                let g = seen.lock().unwrap();
                (g.deployment_seen.len(), g.deployment_available.len())
            };
            println!("  … {ready}/{n} Ready ({d} Deployments seen, {a} Available) at +{:.0} s", now() - t0);
            last_print = Instant::now();
        }
        if last_sample.elapsed() > Duration::from_millis(500) {
            let (so, th) = sockets_threads(ctl.pid);
            peak_sockets = peak_sockets.max(so);
            peak_threads = peak_threads.max(th);
            last_sample = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_ready_at = now() - t0;

    // Settle: writes unchanged for 10 s (max 120 s), so trailing writes count in the apply phase.
    let mut last = scrape(ctl.port).await?;
    let mut quiet_since = Instant::now();
    let settle_start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = scrape(ctl.port).await?;
        let (so, th) = sockets_threads(ctl.pid);
        peak_sockets = peak_sockets.max(so);
        peak_threads = peak_threads.max(th);
        let w = |x: &Scrape| x.writes("AuthPolicy") + x.writes("IdentityProvider");
        if w(&m) != w(&last) {
            quiet_since = Instant::now();
        }
        last = m;
        if quiet_since.elapsed() >= Duration::from_secs(10) || settle_start.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let m1 = last;
    let cpu1 = cpu_seconds(ctl.pid).unwrap_or(0.0);
    let comp1 = component_cpu();
    let busy1 = machine_busy_seconds().unwrap_or(0.0);
    let api_after = ApiStats::fetch(client).await;
    let apply_wall = now() - t0;

    let mut r = Round { n, create_secs, create_retries, ..Round::default() };
    {
        let g = seen.lock().unwrap();
        r.ready = g.ready.len();
        let lat = |from: &HashMap<String, f64>, to: &HashMap<String, f64>| {
            sorted(from.iter().filter_map(|(k, a)| to.get(k).map(|b| (b - a).max(0.0))).collect())
        };
        let l = lat(&created, &g.ready);
        r.lat_p50 = pct(&l, 0.50);
        r.lat_p99 = pct(&l, 0.99);
        r.lat_max = l.last().copied().unwrap_or(f64::NAN);
        let pair = |v: Vec<f64>| (pct(&v, 0.50), pct(&v, 0.99));
        r.to_answer = pair(lat(&created, &g.answered));
        r.to_deployment = pair(lat(&created, &g.deployment_seen));
        r.deployment_to_available = pair(lat(&g.deployment_seen, &g.deployment_available));
        r.available_to_ready = pair(lat(&g.deployment_available, &g.ready));
        r.not_ready_reasons = g.not_ready_reasons.clone();
        println!(
            "  all Ready at +{all_ready_at:.1} s; watch saw {} policy and {} Deployment events",
            g.policy_events, g.deployment_events
        );
    }
    let dcount = m1.duration_count("AuthPolicy") - m0.duration_count("AuthPolicy");
    r.reconcile_mean_ms = 1000.0 * (m1.duration_sum("AuthPolicy") - m0.duration_sum("AuthPolicy")) / dcount.max(1.0);
    r.reconcile_p50_ms =
        histogram_quantile(0.5, &m0.buckets("AuthPolicy"), &m1.buckets("AuthPolicy")).map(|v| v * 1000.0);
    r.reconcile_p99_ms =
        histogram_quantile(0.99, &m0.buckets("AuthPolicy"), &m1.buckets("AuthPolicy")).map(|v| v * 1000.0);
    r.ap_reconciles = m1.reconciles("AuthPolicy") - m0.reconciles("AuthPolicy");
    r.ap_writes = m1.writes("AuthPolicy") - m0.writes("AuthPolicy");
    r.idp_reconciles = m1.reconciles("IdentityProvider") - m0.reconciles("IdentityProvider");
    r.idp_writes = m1.writes("IdentityProvider") - m0.writes("IdentityProvider");
    r.errors = m1.errors() - m0.errors();
    r.apply_cpu_secs = cpu1 - cpu0;
    r.apply_wall_secs = apply_wall;
    r.apply_component_cpu = cpu_delta(&comp1, &comp0);
    r.apply_component_cpu.insert("authgate controller".to_owned(), cpu1 - cpu0);
    let ours: f64 = r.apply_component_cpu.values().sum();
    r.apply_component_cpu.insert("other processes on the machine".to_owned(), (busy1 - busy0 - ours).max(0.0));
    r.load_before = load0;
    r.peak_sockets = peak_sockets;
    r.peak_threads = peak_threads;
    r.apply_apiserver = api_after.since(&api_before);

    // Steady state.
    println!("  steady state: watching writes for {} s …", s.steady);
    let api0 = ApiStats::fetch(client).await;
    let m2 = scrape(ctl.port).await?;
    let cpu2 = cpu_seconds(ctl.pid).unwrap_or(0.0);
    let t2 = now();
    let (mut rss_min, mut rss_max) = (u64::MAX, 0u64);
    let steady_end = Instant::now() + Duration::from_secs(s.steady);
    while Instant::now() < steady_end {
        r.steady_sockets_max = r.steady_sockets_max.max(sockets_threads(ctl.pid).0);
        if let Some((_, rss)) = memory_kib(ctl.pid) {
            rss_min = rss_min.min(rss);
            rss_max = rss_max.max(rss);
        }
        tokio::time::sleep(
            Duration::from_secs(5)
                .min(steady_end.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(10)),
        )
        .await;
    }
    let m3 = scrape(ctl.port).await?;
    let cpu3 = cpu_seconds(ctl.pid).unwrap_or(0.0);
    let api1 = ApiStats::fetch(client).await;
    r.steady_secs = now() - t2;
    r.steady_writes = (m3.writes("AuthPolicy") + m3.writes("IdentityProvider"))
        - (m2.writes("AuthPolicy") + m2.writes("IdentityProvider"));
    r.steady_ap_reconciles = m3.reconciles("AuthPolicy") - m2.reconciles("AuthPolicy");
    r.steady_idp_reconciles = m3.reconciles("IdentityProvider") - m2.reconciles("IdentityProvider");
    r.steady_errors = m3.errors() - m2.errors();
    r.steady_cpu_secs = cpu3 - cpu2;
    let sc = m3.duration_count("AuthPolicy") - m2.duration_count("AuthPolicy");
    r.steady_reconcile_mean_ms = 1000.0 * (m3.duration_sum("AuthPolicy") - m2.duration_sum("AuthPolicy")) / sc.max(1.0);
    r.steady_apiserver = api1.since(&api0);
    let (hwm, rss) = memory_kib(ctl.pid).ok_or("controller exited")?;
    r.peak_mib = mib(hwm);
    r.rss_end_mib = mib(rss);
    r.rss_steady_min_mib = mib(rss_min.min(rss));
    r.rss_steady_max_mib = mib(rss_max.max(rss));

    for w in watches {
        w.abort();
    }
    r.log_problems = ctl.log_problems();
    ctl.stop().await;
    println!("  cleaning up …");
    cleanup(client, Duration::from_secs(600)).await?;
    print_round(&r, s);
    Ok(r)
}

fn print_round(r: &Round, s: &Settings) {
    println!(
        "  latency apply→Ready: p50 {:.3} s, p99 {:.3} s, max {:.3} s ({} of {} Ready)",
        r.lat_p50, r.lat_p99, r.lat_max, r.ready, r.n
    );
    println!(
        "  apply→first status (children written, Ready=False GatewayProgressing or better): p50 {:.3} s, p99 {:.3} s",
        r.to_answer.0, r.to_answer.1
    );
    println!(
        "  split (p50/p99): create→Deployment seen {:.3}/{:.3} s, Deployment→Available {:.3}/{:.3} s, Available→Ready {:.3}/{:.3} s",
        r.to_deployment.0,
        r.to_deployment.1,
        r.deployment_to_available.0,
        r.deployment_to_available.1,
        r.available_to_ready.0,
        r.available_to_ready.1
    );
    println!(
        "  AuthPolicy reconcile duration: mean {:.1} ms, p50≈{} ms, p99≈{} ms (histogram)",
        r.reconcile_mean_ms,
        r.reconcile_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
        r.reconcile_p99_ms.map_or("-".into(), |v| format!("{v:.1}"))
    );
    println!(
        "  apply phase: {} AuthPolicy reconciles, {} writes ({:.2}/reconcile, {:.2}/policy); IdP {} reconciles, {} writes; {} errors; controller CPU {:.1} s",
        r.ap_reconciles,
        r.ap_writes,
        r.ap_writes / r.ap_reconciles.max(1.0),
        r.ap_writes / r.n as f64,
        r.idp_reconciles,
        r.idp_writes,
        r.errors,
        r.apply_cpu_secs
    );
    println!("  not-Ready states observed by the watch: {:?}", r.not_ready_reasons);
    let cpu: Vec<String> = r.apply_component_cpu.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
    println!(
        "  CPU seconds in the apply phase ({:.1} s wall, 2 cores, load average before {}): {}",
        r.apply_wall_secs,
        r.load_before,
        cpu.join(", ")
    );
    println!(
        "  apiserver in the apply phase (all clients; requests × mean server time): {}",
        api_summary(&r.apply_apiserver)
    );
    println!(
        "  steady {:.0} s (resync {} s): {} writes, {} AuthPolicy + {} IdP reconciles, {} errors, CPU {:.1} s, mean reconcile {:.1} ms",
        r.steady_secs,
        s.resync,
        r.steady_writes,
        r.steady_ap_reconciles,
        r.steady_idp_reconciles,
        r.steady_errors,
        r.steady_cpu_secs,
        r.steady_reconcile_mean_ms
    );
    println!(
        "  apiserver in the steady window (all clients; requests × mean server time): {}",
        api_summary(&r.steady_apiserver)
    );
    println!(
        "  memory: peak (VmHWM) {:.1} MiB; steady RSS {:.1}–{:.1} MiB, at end {:.1} MiB",
        r.peak_mib, r.rss_steady_min_mib, r.rss_steady_max_mib, r.rss_end_mib
    );
    println!(
        "  controller sockets (apiserver connections + listeners): peak {} while applying, max {} in the steady window; threads peak {}",
        r.peak_sockets, r.steady_sockets_max, r.peak_threads
    );
    if !r.log_problems.is_empty() {
        println!("  controller log warnings/errors:");
        for (k, v) in &r.log_problems {
            println!("    {v:>6} × {k}");
        }
    }
}

fn table(rounds: &[Round], s: &Settings) -> String {
    let mut t = String::new();
    t.push_str("| policies | apply→Ready p50 | p99 | max | apply→first status p50/p99 | create→Deployment p50/p99 | Deployment→Available p50/p99 | Available→Ready p50/p99 | reconcile mean (p99≈) | writes/reconcile | writes/policy | peak memory (VmHWM) | steady RSS | steady window | writes in window | reconciles in window (AP + IdP) |\n");
    t.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rounds {
        t.push_str(&format!(
            "| {} | {:.3} s | {:.3} s | {:.3} s | {:.3} / {:.3} s | {:.3} / {:.3} s | {:.3} / {:.3} s | {:.3} / {:.3} s | {:.1} ms ({}) | {:.2} ({} / {}) | {:.2} | {:.1} MiB | {:.1} MiB | {:.0} s (resync {} s) | {} | {} + {} |\n",
            r.n,
            r.lat_p50,
            r.lat_p99,
            r.lat_max,
            r.to_answer.0,
            r.to_answer.1,
            r.to_deployment.0,
            r.to_deployment.1,
            r.deployment_to_available.0,
            r.deployment_to_available.1,
            r.available_to_ready.0,
            r.available_to_ready.1,
            r.reconcile_mean_ms,
            r.reconcile_p99_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
            r.ap_writes / r.ap_reconciles.max(1.0),
            r.ap_writes,
            r.ap_reconciles,
            r.ap_writes / r.n as f64,
            r.peak_mib,
            r.rss_end_mib,
            r.steady_secs,
            s.resync,
            r.steady_writes,
            r.steady_ap_reconciles,
            r.steady_idp_reconciles,
        ));
    }
    t
}

fn json_of(r: &Round) -> Value {
    json!({
        "policies": r.n, "ready": r.ready,
        "create_seconds": r.create_secs, "create_retries": r.create_retries,
        "latency_seconds": {"p50": r.lat_p50, "p99": r.lat_p99, "max": r.lat_max},
        "split_seconds": {
            "create_to_first_status": [r.to_answer.0, r.to_answer.1],
            "create_to_deployment": [r.to_deployment.0, r.to_deployment.1],
            "deployment_to_available": [r.deployment_to_available.0, r.deployment_to_available.1],
            "available_to_ready": [r.available_to_ready.0, r.available_to_ready.1],
        },
        "reconcile_ms": {"mean": r.reconcile_mean_ms, "p50": r.reconcile_p50_ms, "p99": r.reconcile_p99_ms},
        "apply": {
            "authpolicy_reconciles": r.ap_reconciles, "authpolicy_writes": r.ap_writes,
            "writes_per_reconcile": r.ap_writes / r.ap_reconciles.max(1.0), "writes_per_policy": r.ap_writes / r.n as f64,
            "idp_reconciles": r.idp_reconciles, "idp_writes": r.idp_writes, "errors": r.errors, "cpu_seconds": r.apply_cpu_secs,
            "wall_seconds": r.apply_wall_secs, "load_average_before": r.load_before, "component_cpu_seconds": r.apply_component_cpu,
            "apiserver_requests_and_mean_ms": r.apply_apiserver,
            "not_ready_states_seen": r.not_ready_reasons,
        },
        "steady": {
            "seconds": r.steady_secs, "writes": r.steady_writes,
            "authpolicy_reconciles": r.steady_ap_reconciles, "idp_reconciles": r.steady_idp_reconciles,
            "errors": r.steady_errors, "cpu_seconds": r.steady_cpu_secs, "reconcile_mean_ms": r.steady_reconcile_mean_ms,
            "apiserver_requests_and_mean_ms": r.steady_apiserver,
        },
        "memory_mib": {"peak_vmhwm": r.peak_mib, "rss_end": r.rss_end_mib, "rss_steady_min": r.rss_steady_min_mib, "rss_steady_max": r.rss_steady_max_mib},
        "controller_log_problems": r.log_problems,
        "controller_sockets": {"peak_apply": r.peak_sockets, "max_steady": r.steady_sockets_max},
        "controller_threads_peak": r.peak_threads,
    })
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("controller_scale: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Res<()> {
    // `cargo bench` passes `--bench`; everything else comes from the environment.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = now();
    let s = Settings::from_env()?;
    std::fs::create_dir_all(&s.out)?;
    let kubeconfig = Kubeconfig::read_from(&s.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;

    let mut rounds = Vec::new();
    for &n in &s.rounds {
        let r = run_round(&client, &s, n).await?;
        let path = s.out.join(format!("round-{n}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&json_of(&r))?)?;
        rounds.push(r);
    }
    let t = table(&rounds, &s);
    println!("\n{t}");
    std::fs::write(s.out.join("table.md"), &t)?;
    std::fs::write(
        s.out.join("results.json"),
        serde_json::to_string_pretty(&rounds.iter().map(json_of).collect::<Vec<_>>())?,
    )?;
    let misses: Vec<String> = rounds
        .iter()
        .filter(|r| r.ready < r.n)
        .map(|r| format!("{} of {} policies never became Ready", r.n - r.ready, r.n))
        .collect();
    if !misses.is_empty() {
        return Err(misses.join("; ").into());
    }
    println!("results in {}", s.out.display());
    Ok(())
}
