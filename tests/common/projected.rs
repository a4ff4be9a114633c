//! A config file laid out the way the kubelet projects a Secret volume, and
//! rewritten the way it updates one: the data lives in a timestamped
//! directory, `..data` is a symlink to it, and `gateway.yaml` is a symlink
//! to `..data/gateway.yaml`. An update writes a new directory and renames a
//! new `..data` link over the old one (one atomic step), then removes the
//! old directory; the path the gateway reads never changes.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use authgate::gateway::GatewayConfig;

use super::gateway::Gateway;

/// A projected `gateway.yaml`.
pub struct Projected {
    dir: tempfile::TempDir,
    generation: u32,
}

impl Projected {
    /// Projects `config`.
    pub fn new(config: &GatewayConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut projected = Self { dir, generation: 0 };
        projected.write(&config.to_yaml().expect("render gateway.yaml"));
        symlink("..data/gateway.yaml", projected.path()).expect("gateway.yaml link");
        projected
    }

    /// The path a gateway is given.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("gateway.yaml")
    }

    /// Replaces the content as the kubelet does.
    pub fn write(&mut self, text: &str) {
        let root = self.dir.path();
        self.generation += 1;
        let data = format!("..{}", self.generation);
        std::fs::create_dir(root.join(&data)).expect("data dir");
        std::fs::write(root.join(&data).join("gateway.yaml"), text).expect("write gateway.yaml");
        let tmp = root.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(&data, &tmp).expect("..data_tmp link");
        std::fs::rename(&tmp, root.join("..data")).expect("swap ..data");
        if self.generation > 1 {
            let old = root.join(format!("..{}", self.generation - 1));
            std::fs::remove_dir_all(old).expect("remove the old data dir");
        }
    }

    /// Replaces the content with `config`.
    pub fn write_config(&mut self, config: &GatewayConfig) {
        self.write(&config.to_yaml().expect("render gateway.yaml"));
    }

    /// Runs a gateway on this file.
    pub async fn start(&self, config: &GatewayConfig, env: &[(&str, &str)]) -> Gateway {
        let mut gw = Gateway::start_from_file(&self.path(), config.listen.port(), env).await;
        gw.config = Some(config.clone());
        gw
    }
}

/// Waits until `gw` has counted `count` config reloads with `result`
/// (`accepted` or `refused`), failing the test with its log after 20 s.
pub async fn wait_for_reloads(gw: &Gateway, result: &str, count: u64) {
    let series = format!("authgate_gateway_config_reloads_total{{result=\"{result}\"}} {count}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if gw.metrics().await.lines().any(|l| l == series) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no `{series}` within 20 s; log:\n{}", gw.logs());
}
