//! Leader election on a Lease, so that several controller replicas can run
//! side by side while exactly one reconciles.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tracing::info;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Name of the Lease object.
    pub name: String,
    /// Namespace of the Lease object.
    pub namespace: String,
    /// Identity of this replica (the pod name).
    pub identity: String,
    /// Seconds a lease stays valid without renewal.
    pub duration: Duration,
}

/// Leadership held by this process. Dropping it releases the Lease.
pub struct Leadership {
    state: watch::Receiver<bool>,
}

/// Blocks until this replica holds the Lease.
pub async fn acquire(client: Client, settings: &LeaseSettings) -> Result<Leadership, LeaseManagerError> {
    let duration = settings.duration.as_secs().max(3);
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_field_manager(format!("authgate-{}", settings.identity))
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await?;
    let (mut state, _task) = manager.watch().await;
    info!(lease = %settings.name, identity = %settings.identity, "waiting for leadership");
    while !*state.borrow_and_update() {
        if state.changed().await.is_err() {
            return Err(LeaseManagerError::InconsistentState("lease watcher stopped".into()));
        }
    }
    info!(lease = %settings.name, identity = %settings.identity, "acquired leadership");
    Ok(Leadership { state })
}

impl Leadership {
    /// Resolves when leadership is lost.
    pub async fn lost(&mut self) {
        while *self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }
}
