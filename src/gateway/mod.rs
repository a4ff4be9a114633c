//! The authenticating reverse proxy run by each policy's Deployment.
//!
//! - [`config`]: `gateway.yaml`, the contract with the controller.
//! - [`settings`]: that file plus command-line / `AUTHGATE_*` overrides.
//! - [`listener`]: accepting connections, with header and idle timeouts.
//! - [`request_target`]: which methods and paths are forwarded at all.
//! - [`server`]: routes and handlers; [`proxy`]: forwarding upstream;
//!   [`headers`]: what the upstream may believe.
//! - [`session`]: encrypted cookie sessions; [`providers`]: sign-in.
//! - [`metrics`], [`pages`], [`error`].

/// `gateway.yaml`: the contract with the controller (see [`crate::contract`]).
pub use crate::contract::config;
pub mod authn;
pub mod coalescer;
pub mod cors;
pub mod device;
pub mod error;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod observe;
pub mod original_request;
pub mod pages;
pub mod providers;
pub mod refresh;
pub mod reload;
pub mod request_target;
pub mod revalidate;
pub mod routes;
pub mod server;
pub mod session;
pub mod settings;
pub mod upstream;

use std::sync::Arc;

pub use config::GatewayConfig;
pub use error::Error;
pub use settings::{GatewayArgs, GatewaySettings};

use config::Authentication;

/// Runs the gateway until SIGTERM or Ctrl-C.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let config = settings::load(&args.settings).await?;
    let listen = config.listen;
    let gateway = Arc::new(server::Gateway::new(config.clone())?);
    let metrics = gateway.shared().metrics;
    let live = Arc::new(live::Live::new(gateway.clone()));
    let workers =
        args.settings.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ops = tokio::net::TcpListener::bind(config.ops_listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {} (opsListen): {e}", config.ops_listen)))?;
    let ops_bound = ops.local_addr()?;
    tokio::spawn({
        let (router, mut stopped) = (routes::ops(metrics), stopped.clone());
        async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(ops, router).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "the operations listener failed");
            }
        }
    });
    let router = {
        let live = live.clone();
        move || {
            live::ThreadRoutes::new(live.clone(), |gw: Arc<server::Gateway>| {
                let upstreams = gw.new_upstreams()?;
                Ok(routes::public(gw, upstreams))
            })
        }
    };
    let (bound, handles) = listener::spawn_workers(router, listen, workers, config.timeouts, stopped)
        .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
    if config.authentication == Authentication::Disabled {
        tracing::warn!(
            upstream = config.upstream.as_ref().map_or("none", |u| u.as_str()),
            "AUTHENTICATION IS DISABLED: every request is passed to the upstream without sign-in"
        );
    }
    tracing::info!(
        listen = %bound,
        ops = %ops_bound,
        workers,
        external_url = %config.external_url,
        upstream = config.upstream.as_ref().map_or("none", |u| u.as_str()),
        providers = ?config.providers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "gateway listening"
    );
    tokio::spawn({
        let gateway = gateway.clone();
        async move { gateway.warm_up().await }
    });
    tokio::spawn(reload::watch(live, (*args.settings).clone(), reload::POLL));
    let mut workers_done =
        futures::future::select_all(handles.into_iter().map(|h| tokio::task::spawn_blocking(move || h.join())));
    tokio::select! {
        () = crate::telemetry::shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = stop.send(true);
            let (_, _, rest) = workers_done.await;
            futures::future::join_all(rest).await;
            tracing::info!("gateway stopped");
            Ok(())
        }
        (result, _, _) = &mut workers_done => {
            let _ = stop.send(true);
            match result {
                Ok(Ok(Err(e))) => Err(anyhow::anyhow!("a serving thread failed: {e}")),
                _ => Err(anyhow::anyhow!("a serving thread stopped unexpectedly")),
            }
        }
    }
}
