//! The authenticating reverse proxy run by each policy's Deployment.

pub mod config;

use std::path::PathBuf;

pub use config::GatewayConfig;

/// `authgate gateway` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Path of gateway.yaml, as the controller writes it.
    #[arg(long, env = "AUTHGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Runs the gateway until shutdown.
pub async fn run(_args: GatewayArgs) -> anyhow::Result<()> {
    anyhow::bail!("the gateway is not implemented yet")
}
