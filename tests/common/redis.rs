//! A real `redis-server` per test: a free loopback port, a password, no
//! persistence (`--save ''`, `--appendonly no`); stopped on drop, and
//! restartable on the same port (Redis down and back).
//!
//! No `redis-server` on the machine: the test skips, except under
//! `CI=true`, where it fails (see [`super::ci::require`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authgate::gateway::config::Redacted;
use authgate::gateway::session::redis::CALL_TIMEOUT;

/// The password every test server requires.
pub const PASSWORD: &str = "redis-test-pw-never-logged";

/// A running (or stopped) `redis-server`.
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    binary: PathBuf,
    /// With TLS: the CA that signed the server's certificate (PEM).
    pub ca_pem: Option<String>,
    tls_args: Vec<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("REDIS_SERVER").map(PathBuf::from).into_iter().chain(
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("redis-server")),
    );
    candidates.chain([PathBuf::from("/usr/bin/redis-server")]).find(|p| p.is_file())
}

impl Redis {
    /// Starts a server, or `None` when there is no `redis-server` (and
    /// not under CI, which panics instead).
    pub async fn start() -> Option<Self> {
        let mut redis = Self::prepare()?;
        redis.resume().await;
        Some(redis)
    }

    /// Like [`start`](Self::start), speaking only TLS, with a certificate
    /// for `127.0.0.1` signed by `ca`.
    pub async fn start_tls(ca: &super::pki::TestCa) -> Option<Self> {
        let mut redis = Self::prepare()?;
        let pem = ca.server(&["127.0.0.1", "localhost"]);
        let dir = redis._dir.path();
        let (cert, key, root) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
        std::fs::write(&cert, &pem.cert).unwrap();
        std::fs::write(&key, &pem.key).unwrap();
        std::fs::write(&root, &ca.cert_pem).unwrap();
        let port = redis.port.to_string();
        redis.tls_args = ["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"]
            .into_iter()
            .map(str::to_owned)
            .chain(["--tls-cert-file".into(), cert.display().to_string()])
            .chain(["--tls-key-file".into(), key.display().to_string()])
            .chain(["--tls-ca-cert-file".into(), root.display().to_string()])
            .collect();
        redis.ca_pem = Some(ca.cert_pem.clone());
        redis.resume().await;
        Some(redis)
    }

    fn prepare() -> Option<Self> {
        let binary = binary();
        if !super::require("redis-server", binary.is_some()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        Some(Self {
            port: super::free_port(),
            child: None,
            binary: binary.expect("checked"),
            ca_pem: None,
            tls_args: Vec::new(),
            log: dir.path().join("redis.log"),
            _dir: dir,
        })
    }

    /// (Re)starts the server on its port, empty (nothing is persisted).
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("redis log");
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--requirepass", PASSWORD])
            .args(["--save", "", "--appendonly", "no", "--dir", &self._dir.path().display().to_string()])
            .args(&self.tls_args)
            .current_dir(self._dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ping().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up: {}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen process must be thawed to die promptly.
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes its data to disk and stops: [`resume`](Self::resume) comes
    /// back with the same keys (a restart, not a data loss).
    pub fn stop_keeping_data(&mut self) {
        ::redis::cmd("SAVE").query::<String>(&mut self.connection().expect("redis")).expect("SAVE");
        self.stop();
    }

    /// Freezes the process (`SIGSTOP`): connections stay open, nothing
    /// answers — a hung server. [`thaw`](Self::thaw) undoes it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill").args([which, &pid]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {which} {pid}");
    }

    /// `host:port` for a gateway config.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A store config for this server with the right password.
    pub fn config(&self) -> authgate::contract::session::RedisConfig {
        authgate::contract::session::RedisConfig {
            addresses: vec![self.address()],
            sentinel_master: None,
            username: None,
            password: Some(Redacted::new(PASSWORD)),
            database: 0,
            tls: self
                .ca_pem
                .as_ref()
                .map(|pem| authgate::contract::session::RedisTlsConfig { ca_pem: Some(pem.clone()) }),
            key_prefix: None,
        }
    }

    /// A synchronous admin connection (to look at keys and TTLs).
    pub fn connection(&self) -> ::redis::RedisResult<::redis::Connection> {
        let settings = ::redis::RedisConnectionInfo::default().set_password(PASSWORD);
        let client = match &self.ca_pem {
            None => {
                let addr = ::redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port);
                ::redis::Client::open(
                    ::redis::IntoConnectionInfo::into_connection_info(addr)?.set_redis_settings(settings),
                )?
            }
            Some(ca) => {
                let addr = ::redis::ConnectionAddr::TcpTls {
                    host: "127.0.0.1".into(),
                    port: self.port,
                    insecure: false,
                    tls_params: None,
                };
                let info = ::redis::IntoConnectionInfo::into_connection_info(addr)?.set_redis_settings(settings);
                let roots = ::redis::TlsCertificates { client_tls: None, root_cert: Some(ca.clone().into_bytes()) };
                ::redis::Client::build_with_tls(info, roots)?
            }
        };
        client.get_connection_with_timeout(CALL_TIMEOUT)
    }

    fn ping(&self) -> ::redis::RedisResult<()> {
        ::redis::cmd("PING").query::<String>(&mut self.connection()?).map(drop)
    }

    /// Keys matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        ::redis::cmd("KEYS").arg(pattern).query(&mut self.connection().expect("redis")).expect("KEYS")
    }

    /// Seconds to live of `key` (-2: absent, -1: no expiry).
    pub fn ttl(&self, key: &str) -> i64 {
        ::redis::cmd("TTL").arg(key).query(&mut self.connection().expect("redis")).expect("TTL")
    }

    /// Everything the server logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-server --sentinel` watching one [`Redis`] as `mymaster`.
pub struct Sentinel {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The primary's name at the test sentinels.
pub const MASTER: &str = "mymaster";

impl Sentinel {
    /// Starts a sentinel for `primary` (plain TCP).
    pub async fn start(primary: &Redis) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_port();
        let conf = dir.path().join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {MASTER} 127.0.0.1 {} 1\nsentinel auth-pass {MASTER} {PASSWORD}\n",
            dir.path().display(),
            primary.port
        );
        std::fs::write(&conf, text).expect("sentinel.conf");
        let log = std::fs::File::create(dir.path().join("sentinel.log")).expect("sentinel log");
        let child = Command::new(&primary.binary)
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn redis-server --sentinel");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the sentinel did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { port, child, _dir: dir }
    }

    /// A store config that finds the primary through this sentinel.
    pub fn config(&self) -> authgate::contract::session::RedisConfig {
        authgate::contract::session::RedisConfig {
            addresses: vec![format!("127.0.0.1:{}", self.port)],
            sentinel_master: Some(MASTER.into()),
            username: None,
            password: Some(Redacted::new(PASSWORD)),
            database: 0,
            tls: None,
            key_prefix: None,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
