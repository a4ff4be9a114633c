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
        let binary = binary();
        if !super::require("redis-server", binary.is_some()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut redis = Self {
            port: super::free_port(),
            child: None,
            binary: binary.expect("checked"),
            log: dir.path().join("redis.log"),
            _dir: dir,
        };
        redis.resume().await;
        Some(redis)
    }

    /// (Re)starts the server on its port, empty (nothing is persisted).
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("redis log");
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--requirepass", PASSWORD])
            .args(["--save", "", "--appendonly", "no", "--dir", &self._dir.path().display().to_string()])
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
            tls: None,
            key_prefix: None,
        }
    }

    /// A synchronous admin connection (to look at keys and TTLs).
    pub fn connection(&self) -> ::redis::RedisResult<::redis::Connection> {
        let info = ::redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port);
        let info = ::redis::IntoConnectionInfo::into_connection_info(info)?
            .set_redis_settings(::redis::RedisConnectionInfo::default().set_password(PASSWORD));
        ::redis::Client::open(info)?.get_connection_with_timeout(CALL_TIMEOUT)
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
