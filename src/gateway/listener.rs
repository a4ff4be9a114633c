//! Accepting connections: one listening socket and runtime per serving
//! thread, hyper's HTTP/1.1 and HTTP/2 (by preface) on each connection, and
//! the time limits that keep slow or idle clients from holding resources.
//!
//! - **Header read** (`timeouts.headerReadSeconds`): a client must send a
//!   request's complete headers within this time, or the connection is
//!   closed. This cuts off slowloris clients that trickle bytes or open
//!   connections and send nothing. The clock runs from the end of the last
//!   response (or the accept), so it also bounds a keep-alive connection
//!   waiting for its next request.
//! - **Idle** (`timeouts.idleSeconds`): a connection with no request in
//!   flight for this long is closed (HTTP/2 included).
//!
//! Both are enforced by one watchdog per connection, which closes it once
//! nothing has been in flight for the shorter of the two: no timer is armed
//! per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;

use super::config::Timeouts;

/// Serves `router` on `addr` with `workers` threads. Each runs a
/// single-threaded runtime with its own listening socket (`SO_REUSEPORT`:
/// the kernel spreads connections over them), so a request and its
/// upstream connection stay on one thread: no cross-thread wake-ups and no
/// shared pool lock on the hot path. `router` is called once per thread.
/// Returns the bound address and the workers, which drain and stop when
/// `stop` turns true.
pub fn spawn_workers<R: Routes>(
    router: impl Fn() -> std::io::Result<R> + Send + Sync + 'static,
    addr: SocketAddr,
    workers: usize,
    timeouts: Timeouts,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, Vec<std::thread::JoinHandle<std::io::Result<()>>>)> {
    let first = reuseport_socket(addr)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers.max(1) {
        sockets.push(reuseport_socket(bound)?);
    }
    let router = Arc::new(router);
    let mut handles = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        let app = router()?;
        let mut stop = stop.clone();
        let handle = std::thread::Builder::new().name(format!("gateway-{i}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = socket.listen(1024)?;
                let shutdown = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                serve(app, listener, timeouts, shutdown).await
            })
        })?;
        handles.push(handle);
    }
    Ok((bound, handles))
}

fn reuseport_socket(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Where a serving thread gets the router for each request: a fixed
/// [`Router`], or the one of the gateway in force
/// ([`ThreadRoutes`](super::live::ThreadRoutes)), which follows reloads.
pub trait Routes: Clone + Send + Sync + 'static {
    /// The router for the request about to be served.
    fn router(&self) -> Router;
}

impl Routes for Router {
    fn router(&self) -> Router {
        self.clone()
    }
}

/// Per-connection bookkeeping for the idle timeout.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last request start or end.
    last: AtomicU64,
}

/// Serves one listener until `shutdown` resolves, then lets in-flight
/// requests finish.
pub async fn serve(
    routes: impl Routes,
    listener: tokio::net::TcpListener,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_read = Duration::from_secs(timeouts.header_read_seconds.max(1));
    // One watchdog per connection enforces both limits: a connection with
    // no request in flight (one still sending its headers, or one idle
    // between requests) is closed after the shorter of the two. hyper's own
    // header-read timer would arm a timer for every request on the hot path.
    let idle = Duration::from_secs(timeouts.idle_seconds.max(1)).min(header_read);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let service = {
            let (routes, activity) = (routes.clone(), activity.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let activity = activity.clone();
                activity.in_flight.fetch_add(1, Ordering::Relaxed);
                let router = routes.router();
                async move {
                    let response = router.oneshot(request).await;
                    activity.in_flight.fetch_sub(1, Ordering::Relaxed);
                    activity.last.store(millis(epoch), Ordering::Relaxed);
                    response
                }
            })
        };
        let builder = builder.clone();
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
        let conn = graceful.watch(conn);
        activity.last.store(millis(epoch), Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = &mut conn => {}
                () = idle_for(&activity, idle, epoch) => {
                    // Nothing in flight: closing loses nothing.
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Resolves once the connection has had no request in flight for `idle`.
async fn idle_for(activity: &Activity, idle: Duration, epoch: Instant) {
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let since = millis(epoch).saturating_sub(activity.last.load(Ordering::Relaxed));
        if activity.in_flight.load(Ordering::Relaxed) == 0 && since >= idle_ms {
            return;
        }
        let wait = if activity.in_flight.load(Ordering::Relaxed) > 0 { idle_ms } else { idle_ms - since };
        tokio::time::sleep(Duration::from_millis(wait.max(10))).await;
    }
}
