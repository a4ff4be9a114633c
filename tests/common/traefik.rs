//! A real Traefik (built from its Go module by scripts/setup.sh, see
//! tests/traefik/README.md) as the ingress, with a `ForwardAuth`
//! middleware asking the gateway's redirecting endpoint.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Traefik binary: `AUTHGATE_TRAEFIK`, else the cache path for the
/// version `tests/traefik/go.mod` requires.
pub fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("AUTHGATE_TRAEFIK") {
        return Some(PathBuf::from(p));
    }
    let go_mod = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/traefik/go.mod")).ok()?;
    let version = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("github.com/traefik/traefik/v3 "))
        .or_else(|| go_mod.lines().find_map(|l| l.trim().strip_prefix("require github.com/traefik/traefik/v3 ")))?
        .split_whitespace()
        .next()?
        .to_owned();
    let cache = std::env::var("AUTHGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/authgate"));
    Some(cache.join(format!("tools/traefik-{version}/traefik"))).filter(|p| p.exists())
}

/// One Traefik process; stopped on drop.
pub struct Traefik {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    dir: tempfile::TempDir,
}

impl Traefik {
    /// Traefik on `port`: `/oauth2/` goes to the gateway; everything else
    /// passes the `ForwardAuth` middleware (`/oauth2/verify`) first, which
    /// copies the identity headers to the upstream and relays the session
    /// cookie `cookie` when a check refreshed it.
    pub async fn start(port: u16, gateway_port: u16, upstream_port: u16, cookie: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let dynamic = format!(
            r#"
http:
  routers:
    signin:
      entryPoints: [web]
      rule: "PathPrefix(`/oauth2/`)"
      service: gateway
    app:
      entryPoints: [web]
      rule: "PathPrefix(`/`)"
      middlewares: [authgate]
      service: app
  middlewares:
    authgate:
      forwardAuth:
        address: "http://127.0.0.1:{gateway_port}/oauth2/verify"
        authResponseHeaders: [X-Auth-Request-User, X-Auth-Request-Email, X-Auth-Request-Groups, Authorization]
        addAuthCookiesToResponse: [{cookie}]
  services:
    gateway:
      loadBalancer:
        servers: [{{url: "http://127.0.0.1:{gateway_port}"}}]
    app:
      loadBalancer:
        servers: [{{url: "http://127.0.0.1:{upstream_port}"}}]
"#
        );
        let file = dir.path().join("dyn.yaml");
        std::fs::write(&file, dynamic).expect("dyn.yaml");
        let log = std::fs::File::create(dir.path().join("traefik.log")).expect("log");
        let child = Command::new(binary().expect("traefik"))
            .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
            .arg(format!("--providers.file.filename={}", file.display()))
            .args(["--ping=true", "--ping.entryPoint=web", "--global.checkNewVersion=false"])
            .args(["--global.sendAnonymousUsage=false", "--log.level=INFO", "--log.noColor=true"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn traefik");
        let me = Self { child, base: format!("http://127.0.0.1:{port}"), dir };
        me.wait_routed().await;
        me
    }

    /// Until `/ping` answers and the file provider's routes are loaded (the
    /// sign-in route stops answering Traefik's own 404).
    async fn wait_routed(&self) {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ping = http.get(format!("{}/ping", self.base)).send().await.is_ok_and(|r| r.status().is_success());
            let routed = http
                .get(format!("{}/oauth2/start", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() != reqwest::StatusCode::NOT_FOUND);
            if ping && routed {
                return;
            }
            assert!(Instant::now() < deadline, "traefik did not come up: {}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An absolute URL on Traefik.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Traefik's log.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
