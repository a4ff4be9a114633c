//! The connection to Redis (or Valkey), standalone or behind Sentinel, and
//! the small key-value API the gateway's shared state is built on:
//! [`RedisBackend::get`], [`RedisBackend::set_ex`], [`RedisBackend::delete`],
//! [`RedisBackend::set_if_absent`], plus [`RedisBackend::run`] for the
//! session store's own pipelines.
//!
//! - Lazy: building a backend does no I/O; the first call connects.
//! - One multiplexed connection, cloned per call (a cheap handle), so no
//!   lock is held across an await on the request path.
//! - Every call, connecting included, is bounded by [`CALL_TIMEOUT`]: a hung
//!   server costs a request at most that long, never hangs it.
//! - A failed connect is not retried for [`RETRY_AFTER`]: while Redis is
//!   down requests fail at once instead of each dialing it again; the first
//!   request after that tries again, so the gateway recovers by itself.
//! - A connection that fails a call (I/O, timeout) is dropped and the next
//!   call reconnects.
//!
//! The redis crate's `ConnectionManager` is not used: it connects when it
//! is built and has no Sentinel variant; this one code path covers both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, TlsCertificates};

use crate::contract::session::RedisConfig;

/// Longest any one Redis call (or connect) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long after a failed connect calls fail without dialing again.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Why Redis could not answer. Display texts never carry the password, a
/// key or a value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The config cannot make a client (bad address, bad CA bundle).
    #[error("invalid Redis settings: {0}")]
    Config(String),
    /// No connection: connect failed recently, or failed now.
    #[error("Redis unavailable: {0}")]
    Unavailable(String),
    /// The call took longer than [`CALL_TIMEOUT`].
    #[error("Redis did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
    /// The server answered with an error.
    #[error("Redis call failed: {0}")]
    Command(String),
}

/// How to reach the server.
enum Connector {
    Standalone(Client),
    /// Sentinel discovery; the client caches the primary's address, and its
    /// `&mut` API is only ever used by the one task holding `connecting`.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A lazily connected Redis. See the module docs.
pub struct RedisBackend {
    connector: Connector,
    config: AsyncConnectionConfig,
    connection: ArcSwapOption<MultiplexedConnection>,
    /// Held only while dialing, so a burst of requests dials once.
    connecting: tokio::sync::Mutex<()>,
    /// Milliseconds after `epoch` before which no new connect is tried.
    retry_at: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `config`. No I/O: only the addresses and the TLS roots
    /// are checked.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        let settings = |info: RedisConnectionInfo| {
            let info = info.set_db(i64::from(config.database));
            let info = match &config.username {
                Some(u) => info.set_username(u),
                None => info,
            };
            match &config.password {
                Some(p) => info.set_password(p.expose()),
                None => info,
            }
        };
        let tls = config.tls.as_ref();
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: tls.and_then(|t| t.ca_pem.clone()).map(String::into_bytes),
        };
        let addresses = config.addresses.iter().map(|a| address(a, tls.is_some())).collect::<Result<Vec<_>, _>>()?;
        let connector = match &config.sentinel_master {
            None => {
                let [addr] = <[ConnectionAddr; 1]>::try_from(addresses)
                    .map_err(|_| StoreError::Config("a standalone server has exactly one address".into()))?;
                let info = addr
                    .into_connection_info()
                    .map_err(|e| StoreError::Config(e.to_string()))?
                    .set_redis_settings(settings(RedisConnectionInfo::default()));
                let client = match tls {
                    Some(_) => Client::build_with_tls(info, certificates()),
                    None => Client::open(info),
                };
                Connector::Standalone(client.map_err(|e| StoreError::Config(e.to_string()))?)
            }
            Some(master) => {
                let mut b = SentinelClientBuilder::new(addresses, master, SentinelServerType::Master)
                    .map_err(|e| StoreError::Config(e.to_string()))?
                    .set_client_to_redis_db(i64::from(config.database));
                if let Some(u) = &config.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &config.password {
                    b = b.set_client_to_redis_password(p.expose());
                }
                if tls.is_some() {
                    b = b
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_redis_certificates(certificates())
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_certificates(certificates());
                }
                Connector::Sentinel(tokio::sync::Mutex::new(b.build().map_err(|e| StoreError::Config(e.to_string()))?))
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        Ok(Self {
            connector,
            config,
            connection: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            retry_at: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The live connection, or a new one.
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        let backing_off = || self.elapsed_ms() < self.retry_at.load(Ordering::Relaxed);
        if backing_off() {
            return Err(StoreError::Unavailable("reconnect pending".into()));
        }
        let _dialing =
            tokio::time::timeout(CALL_TIMEOUT, self.connecting.lock()).await.map_err(|_| StoreError::Timeout)?;
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        if backing_off() {
            return Err(StoreError::Unavailable("reconnect pending".into()));
        }
        let dialed = tokio::time::timeout(CALL_TIMEOUT, async {
            match &self.connector {
                Connector::Standalone(client) => {
                    client.get_multiplexed_async_connection_with_config(&self.config).await
                }
                Connector::Sentinel(sentinel) => {
                    sentinel.lock().await.get_async_connection_with_config(&self.config).await
                }
            }
        })
        .await;
        match dialed {
            Ok(Ok(c)) => {
                self.connection.store(Some(Arc::new(c.clone())));
                tracing::info!("connected to Redis");
                Ok(c)
            }
            failed => {
                let retry = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
                self.retry_at.store(self.elapsed_ms().saturating_add(retry), Ordering::Relaxed);
                Err(match failed {
                    Ok(Err(e)) => StoreError::Unavailable(describe(&e)),
                    _ => StoreError::Timeout,
                })
            }
        }
    }

    /// Runs one command or pipeline, bounded by [`CALL_TIMEOUT`]; a
    /// connection that fails is dropped so the next call reconnects.
    pub async fn run<T: redis::FromRedisValue>(&self, command: impl ToCommand) -> Result<T, StoreError> {
        let mut c = self.connection().await?;
        let result = tokio::time::timeout(CALL_TIMEOUT, command.send(&mut c)).await;
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.connection.store(None);
                    return Err(StoreError::Unavailable(describe(&e)));
                }
                Err(StoreError::Command(describe(&e)))
            }
            Err(_) => {
                self.connection.store(None);
                Err(StoreError::Timeout)
            }
        }
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(redis::cmd("GET").arg(key).clone()).await
    }

    /// Sets `key` to `value`, expiring in `ttl_seconds` (at least 1).
    pub async fn set_ex(&self, key: &str, value: &[u8], ttl_seconds: u64) -> Result<(), StoreError> {
        self.run(redis::cmd("SET").arg(key).arg(value).arg("EX").arg(ttl_seconds.max(1)).clone()).await
    }

    /// Sets `key` only if it does not exist; whether it was set.
    pub async fn set_if_absent(&self, key: &str, value: &[u8], ttl_seconds: u64) -> Result<bool, StoreError> {
        let set: Option<String> =
            self.run(redis::cmd("SET").arg(key).arg(value).arg("NX").arg("EX").arg(ttl_seconds.max(1)).clone()).await?;
        Ok(set.is_some())
    }

    /// Deletes `key`; whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let n: u64 = self.run(redis::cmd("DEL").arg(key).clone()).await?;
        Ok(n > 0)
    }
}

/// A command or a pipeline.
pub trait ToCommand: Send {
    /// Sends it on `c`.
    fn send<T: redis::FromRedisValue>(
        self,
        c: &mut MultiplexedConnection,
    ) -> impl std::future::Future<Output = redis::RedisResult<T>> + Send;
}

impl ToCommand for redis::Cmd {
    async fn send<T: redis::FromRedisValue>(self, c: &mut MultiplexedConnection) -> redis::RedisResult<T> {
        self.query_async(c).await
    }
}

impl ToCommand for redis::Pipeline {
    async fn send<T: redis::FromRedisValue>(self, c: &mut MultiplexedConnection) -> redis::RedisResult<T> {
        self.query_async(c).await
    }
}

/// `host:port` (or `[v6]:port`) as a connection address.
fn address(text: &str, tls: bool) -> Result<ConnectionAddr, StoreError> {
    let bad = || StoreError::Config(format!("Redis address {text:?} is not host:port"));
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok(match tls {
        false => ConnectionAddr::Tcp(host.to_owned(), port),
        true => ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure: false, tls_params: None },
    })
}

/// A Redis error for the log: its kind and code, never the command (which
/// may carry the password: `AUTH`).
fn describe(e: &redis::RedisError) -> String {
    match e.code() {
        Some(code) => format!("{:?} ({code})", e.kind()),
        None if e.is_io_error() => format!("{:?}: connection failed", e.kind()),
        None => format!("{:?}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_host_port_and_bracketed_v6() {
        assert_eq!(
            address("redis.cache.svc:6379", false).unwrap(),
            ConnectionAddr::Tcp("redis.cache.svc".into(), 6379)
        );
        assert_eq!(address("[::1]:6380", false).unwrap(), ConnectionAddr::Tcp("::1".into(), 6380));
        assert!(matches!(address("r:6379", true).unwrap(), ConnectionAddr::TcpTls { insecure: false, .. }));
        for bad in ["redis", ":6379", "r:port", "r:70000"] {
            assert!(address(bad, false).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn building_does_no_io_and_a_dead_server_fails_fast_then_backs_off() {
        // Port 1 on loopback: nothing listens there.
        let config = RedisConfig {
            addresses: vec!["127.0.0.1:1".into()],
            sentinel_master: None,
            username: None,
            password: Some(crate::contract::redacted::Redacted::new("hunter2")),
            database: 0,
            tls: None,
            key_prefix: None,
        };
        let backend = RedisBackend::new(&config).expect("no I/O, nothing to fail");
        let first = backend.get("k").await.unwrap_err();
        assert!(matches!(first, StoreError::Unavailable(_) | StoreError::Timeout), "{first}");
        assert!(!first.to_string().contains("hunter2"));
        let started = Instant::now();
        let second = backend.get("k").await.unwrap_err();
        assert!(second.to_string().contains("reconnect pending"), "backing off: {second}");
        assert!(started.elapsed() < Duration::from_millis(50), "no dial while backing off");
    }
}
