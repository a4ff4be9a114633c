//! Reloading `gateway.yaml` while serving.
//!
//! The controller never rolls the pods for a config change a running
//! gateway can take on (see
//! [`GatewayConfig::restart_fingerprint`](crate::contract::config::GatewayConfig::restart_fingerprint)):
//! the kubelet rewrites the mounted Secret (an atomic symlink swap), and the
//! gateway notices. It reads the file every [`POLL`] (and at once on
//! `SIGHUP`), and when its bytes changed:
//!
//! - builds the whole settings again (file plus flags and variables, as at
//!   startup) and a new [`Gateway`] around the same [`Shared`] state
//!   (metrics, back-channel logouts, refreshes in flight);
//! - refuses it, keeping the last good one serving, when it does not
//!   validate or changes what needs a restart (listen addresses, listener
//!   timeouts), logging why and counting `config_reloads{result="refused"}`;
//! - otherwise puts it in force for every request that starts from then on.
//!
//! [`Shared`]: super::server::Shared

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::live::Live;
use super::server::Gateway;
use super::settings::{self, GatewaySettings};

/// How often the config file is read (see
/// [`RELOAD_POLL_SECONDS`](crate::contract::config::RELOAD_POLL_SECONDS)).
pub const POLL: Duration = Duration::from_secs(crate::contract::config::RELOAD_POLL_SECONDS);

/// What one look at the file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The bytes are those last seen.
    Unchanged,
    /// A new config is in force.
    Accepted,
    /// The new bytes were refused; the last good config keeps serving.
    Refused(String),
}

/// Watches the config file of `settings` and keeps `live` on its newest
/// good version, until the process ends.
pub async fn watch(live: Arc<Live>, settings: GatewaySettings, poll: Duration) {
    let Some(mut watcher) = Watcher::new(settings).await else { return };
    let mut hangup = hangup_signal();
    loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = next(&mut hangup) => tracing::info!("SIGHUP: reading the config file again"),
        }
        watcher.check(&live).await;
    }
}

/// The file last seen, and how to rebuild the settings from it.
pub struct Watcher {
    path: PathBuf,
    settings: GatewaySettings,
    last: Option<[u8; 32]>,
}

impl Watcher {
    /// A watcher of `settings`' config file, taking its current bytes as
    /// the ones in force.
    pub async fn new(settings: GatewaySettings) -> Option<Self> {
        let path = settings.config.clone()?;
        Some(Self { last: digest_of(&path).await, path, settings })
    }

    /// Reads the file once; reloads `live` when its bytes changed.
    pub async fn check(&mut self, live: &Live) -> Reload {
        let digest = digest_of(&self.path).await;
        if digest.is_none() || digest == self.last {
            // Missing for a moment (a swap in progress) or unchanged.
            return Reload::Unchanged;
        }
        // Refused bytes are not retried until they change again.
        self.last = digest;
        let current = live.load();
        let outcome = match self.rebuild(&current).await {
            Ok(next) => {
                let next = Arc::new(next);
                live.replace(next.clone());
                tokio::spawn(async move { next.warm_up().await });
                Reload::Accepted
            }
            Err(why) => Reload::Refused(why),
        };
        match &outcome {
            Reload::Accepted => {
                current.metrics.config_reload("accepted");
                tracing::info!(path = %self.path.display(), "config reloaded");
            }
            Reload::Refused(why) => {
                current.metrics.config_reload("refused");
                tracing::warn!(path = %self.path.display(), reason = %why, "new config refused; the last good one keeps serving");
            }
            Reload::Unchanged => {}
        }
        outcome
    }

    async fn rebuild(&self, current: &Gateway) -> Result<Gateway, String> {
        let config = settings::load(&self.settings).await.map_err(|e| e.to_string())?;
        if !current.config.reloads_into(&config) {
            return Err(
                "the listen addresses or listener timeouts changed, which needs a restart (the controller rolls the pods for those)"
                    .into(),
            );
        }
        Gateway::with_shared(config, current.shared()).map_err(|e| e.to_string())
    }
}

async fn digest_of(path: &std::path::Path) -> Option<[u8; 32]> {
    tokio::fs::read(path).await.ok().map(|bytes| Sha256::digest(bytes).into())
}

fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
