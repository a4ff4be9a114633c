//! In-process servers (the fakes): an axum router on a free loopback port,
//! stopped when its guard drops.

use std::net::SocketAddr;

use axum::Router;

/// Aborts a spawned server task when dropped.
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `router` on 127.0.0.1 at a free port.
pub async fn serve(router: Router) -> (SocketAddr, TaskGuard) {
    let (listener, addr) = bind().await;
    (addr, spawn_server(listener, router))
}

/// A listener on a free loopback port, for servers that must know their
/// own address before building their routes.
pub async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Serves `router` on `listener` until the guard is dropped.
pub fn spawn_server(listener: tokio::net::TcpListener, router: Router) -> TaskGuard {
    TaskGuard(tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake server");
    }))
}
