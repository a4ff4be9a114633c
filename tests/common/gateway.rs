//! The real `authgate gateway` binary, and configs for it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authgate::api::AllowList;
use authgate::gateway::GatewayConfig;
use authgate::gateway::config::{
    Authentication, ClaimMapping, ForwardSettings, ProviderConfig, ProviderType, Redacted, SessionConfig,
};
use url::Url;

use super::op::Op;

/// Cookie name the test configs use.
pub const COOKIE_NAME: &str = "_authgate";

/// A gateway config listening on `127.0.0.1:port` with that as its
/// external URL (so cookies are not `Secure`), one fresh cookie key, and
/// the given providers. No filters: callers add them.
pub fn config(port: u16, upstream: &Url, providers: Vec<ProviderConfig>) -> GatewayConfig {
    GatewayConfig {
        listen: ([127, 0, 0, 1], port).into(),
        external_url: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        upstream: Some(upstream.clone()),
        authentication: Authentication::Enabled,
        providers,
        access: AllowList::default(),
        allow_all_users: false,
        session: SessionConfig {
            cookie_name: COOKIE_NAME.into(),
            cookie_domain: None,
            ttl_seconds: 3600,
            keys: vec![Redacted::new(super::cookie_key())],
            ..SessionConfig::default()
        },
        forward: ForwardSettings::default(),
        // Each process gets its own ops port on the command line.
        ops_listen: ([127, 0, 0, 1], 0).into(),
        timeouts: Default::default(),
        forward_auth: None,
        upstream_tls: None,
        routes: vec![],
        public_paths: vec![],
        cors: None,
        machine: Default::default(),
        access_log: false,
        service_name: None,
        branding: None,
    }
}

/// An `oidc` provider for a client registered at the test OP, with the
/// endpoints its discovery document announces.
pub fn oidc_provider(op: &Op, name: &str, client_id: &str, client_secret: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        provider_type: ProviderType::Oidc,
        display_name: None,
        client_id: client_id.into(),
        client_secret: Redacted::new(client_secret),
        issuer_url: Some(op.issuer.clone()),
        authorize_url: op.endpoint("auth"),
        token_url: op.endpoint("token"),
        userinfo_url: Some(op.endpoint("me")),
        jwks_url: Some(op.endpoint("jwks")),
        api_url: None,
        revocation_url: None,
        end_session_url: None,
        scopes: ["openid", "email", "profile", "groups"].map(String::from).to_vec(),
        claims: ClaimMapping::default(),
        filters: AllowList::default(),
        ca_pem: None,
        email_verified: Default::default(),
    }
}

/// A provider with the given endpoints (the fakes' own), no claims
/// mapping; callers fill in what else they need (`issuer_url`, `jwks_url`,
/// `api_url`).
#[allow(clippy::too_many_arguments)]
pub fn provider(
    name: &str,
    provider_type: ProviderType,
    client_id: &str,
    client_secret: &str,
    authorize_url: Url,
    token_url: Url,
    scopes: &[&str],
    filters: AllowList,
) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        provider_type,
        display_name: None,
        client_id: client_id.to_owned(),
        client_secret: Redacted::new(client_secret),
        issuer_url: None,
        authorize_url,
        token_url,
        userinfo_url: None,
        jwks_url: None,
        api_url: None,
        revocation_url: None,
        end_session_url: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        claims: Default::default(),
        filters,
        ca_pem: None,
        email_verified: Default::default(),
    }
}

/// Why a gateway did not come up.
#[derive(Debug)]
pub struct StartError {
    /// How it exited, or `None` when it was still running but not healthy
    /// in time (it has been killed since).
    pub exited: Option<std::process::ExitStatus>,
    /// Everything it logged.
    pub logs: String,
}

/// A running gateway process; killed on drop.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub base: Url,
    /// `http://127.0.0.1:OPS_PORT/`: `/healthz`, `/readyz`, `/metrics`.
    pub ops: Url,
    /// The config it runs with (when started from a [`GatewayConfig`]).
    pub config: Option<GatewayConfig>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Writes `config` to `gateway.yaml` and runs
    /// `authgate gateway --config gateway.yaml`.
    pub async fn start(config: GatewayConfig) -> Self {
        Self::start_with(config, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub async fn start_with(config: GatewayConfig, env: &[(&str, &str)]) -> Self {
        Self::try_start(config, env).await.unwrap_or_else(StartError::fail)
    }

    /// Like [`start_with`](Self::start_with), returning a gateway that
    /// did not come up as an error instead of failing the test.
    pub async fn try_start(config: GatewayConfig, env: &[(&str, &str)]) -> Result<Self, StartError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config.to_yaml().expect("render gateway.yaml")).expect("write gateway.yaml");
        let args = ["--config".to_owned(), path.display().to_string()];
        let mut gw = Self::spawn(dir, config.listen.port(), &args, env).await?;
        gw.config = Some(config);
        Ok(gw)
    }

    /// Runs the gateway from an existing config file (e.g. the one the
    /// controller wrote into a Secret), overriding the listen address.
    pub async fn start_from_file(path: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = format!("127.0.0.1:{port}");
        let args = ["--config".to_owned(), path.display().to_string(), "--listen".to_owned(), listen];
        Self::spawn(dir, port, &args, env).await.unwrap_or_else(StartError::fail)
    }

    /// Runs the gateway with only arguments and environment (no file).
    pub async fn start_with_env(port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn(dir, port, &[], env).await.unwrap_or_else(StartError::fail)
    }

    async fn spawn(
        dir: tempfile::TempDir,
        port: u16,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Self, StartError> {
        super::init();
        let log = dir.path().join("gateway.log");
        let file = std::fs::File::create(&log).expect("gateway log");
        let ops_port = super::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
        cmd.arg("--log-format")
            .arg("text")
            .arg("gateway")
            .args(args)
            .arg("--ops-listen")
            .arg(format!("127.0.0.1:{ops_port}"))
            .env("RUST_LOG", std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "info,authgate=debug".into()))
            .env_remove("AUTHGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn authgate gateway");
        let mut gw = Self {
            child,
            base: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            ops: Url::parse(&format!("http://127.0.0.1:{ops_port}/")).unwrap(),
            config: None,
            log,
            _dir: dir,
        };
        gw.wait_healthy().await?;
        Ok(gw)
    }

    async fn wait_healthy(&mut self) -> Result<(), StartError> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError { exited: Some(status), logs: self.logs() });
            }
            // The ops port may answer before the serving threads listen:
            // healthy means both.
            if let Ok(r) = client.get(self.ops_url("/healthz")).send().await
                && r.status().is_success()
                && tokio::net::TcpStream::connect(("127.0.0.1", self.base.port().unwrap_or(0))).await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError { exited: None, logs: self.logs() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An absolute URL on the gateway.
    pub fn url(&self, path_and_query: &str) -> String {
        self.base.join(path_and_query).expect("gateway URL").to_string()
    }

    /// The callback URL to register with providers (for a gateway started
    /// from a [`GatewayConfig`]).
    pub fn callback_url(&self) -> String {
        self.config.as_ref().expect("a gateway started from a GatewayConfig").callback_url().to_string()
    }

    /// An absolute URL on the gateway's operations port.
    pub fn ops_url(&self, path: &str) -> String {
        self.ops.join(path).expect("ops URL").to_string()
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.ops_url("/metrics")).await.expect("metrics").text().await.expect("metrics body")
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the gateway and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for gateway")
    }

    /// Sends SIGTERM, as the kubelet does when a pod stops.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit by itself (e.g. a bad config).
    pub async fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl StartError {
    /// Fails the test with the gateway's logs.
    fn fail<T>(self) -> T {
        match self.exited {
            Some(status) => panic!("gateway exited with {status}; log:\n{}", self.logs),
            None => panic!("gateway not healthy within 30 s; log:\n{}", self.logs),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the gateway binary expecting it to refuse to start; returns its
/// exit status and log.
pub async fn run_expecting_failure(config: &GatewayConfig) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config.to_yaml().unwrap()).unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["--log-format", "text", "gateway", "--ops-listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .env_remove("AUTHGATE_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("gateway should exit on a bad config")
    .expect("run gateway");
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, log)
}
