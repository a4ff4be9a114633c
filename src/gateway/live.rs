//! The gateway in force, replaced whole when `gateway.yaml` reloads.
//!
//! [`Live`] holds the current [`Gateway`]; a reload swaps in a new one
//! atomically (`arc-swap`), so a request sees either the old config or the
//! new one, never a mix, and requests in flight finish on the one they
//! started with.
//!
//! Each serving thread keeps its own router and upstream pools
//! ([`ThreadRoutes`]), built for one `Gateway`. The first request after a
//! swap finds the thread's router stale and builds the next one; every
//! other request pays two atomic loads and a pointer comparison.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;

use super::listener::Routes;
use super::server::Gateway;

/// The gateway in force.
pub struct Live {
    current: ArcSwap<Gateway>,
}

impl Live {
    /// Starts with `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { current: ArcSwap::new(gateway) }
    }

    /// The gateway in force now.
    pub fn load(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// Puts `next` in force for every request that starts from now on.
    pub fn replace(&self, next: Arc<Gateway>) {
        self.current.store(next);
    }
}

/// One serving thread's router, rebuilt when the gateway in force changes.
#[derive(Clone)]
pub struct ThreadRoutes {
    live: Arc<Live>,
    built: Arc<ArcSwap<Built>>,
    build: Arc<dyn Fn(Arc<Gateway>) -> std::io::Result<Router> + Send + Sync>,
}

struct Built {
    gateway: Arc<Gateway>,
    router: Router,
}

impl ThreadRoutes {
    /// The router `build` makes for the gateway in force, now and after
    /// every reload.
    pub fn new(
        live: Arc<Live>,
        build: impl Fn(Arc<Gateway>) -> std::io::Result<Router> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let gateway = live.load();
        let router = build(gateway.clone())?;
        Ok(Self { live, built: Arc::new(ArcSwap::from_pointee(Built { gateway, router })), build: Arc::new(build) })
    }
}

impl Routes for ThreadRoutes {
    fn router(&self) -> Router {
        let current = self.live.current.load();
        let built = self.built.load();
        if Arc::ptr_eq(&built.gateway, &current) {
            return built.router.clone();
        }
        match (self.build)(Arc::clone(&current)) {
            Ok(router) => {
                self.built.store(Arc::new(Built { gateway: Arc::clone(&current), router: router.clone() }));
                router
            }
            Err(e) => {
                // Upstream pools could not be made (e.g. out of file
                // descriptors): keep serving with the previous ones; the
                // next request tries again.
                tracing::warn!(error = %e, "the reloaded config's upstream pools could not be built yet");
                built.router.clone()
            }
        }
    }
}
