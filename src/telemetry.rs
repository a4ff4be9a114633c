//! Logging and process signals shared by every subcommand: JSON logs with a level that can
//! be changed at runtime (see `controller::health` for the endpoint), and
//! the process metrics both halves serve ([`process`]).

pub mod process;

use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// Handle to change the log filter of a running process.
pub type LogLevelHandle = reload::Handle<EnvFilter, Registry>;

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`.
/// Returns the handle that changes the filter later.
pub fn init(default_filter: &str, json: bool) -> LogLevelHandle {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().compact().with_writer(std::io::stderr)).try_init()
    };
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = result;
    handle
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves on SIGTERM (what Kubernetes sends to stop a pod) or Ctrl-C.
/// Every subcommand stops on this one signal handler.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
