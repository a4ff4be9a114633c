//! The one test harness of the integration tests (`mod common;`): real
//! components, each a guard that stops what it started when dropped.
//!
//! - [`ports::free_port`]: loopback ports, never the same one twice.
//! - [`ci::require`]: a missing component (node, Chromium, chromedriver,
//!   the control plane) skips a test with a `SKIP` line, except under
//!   `CI=true`, where it fails.
//! - [`echo::Echo`]: an in-process upstream that echoes requests as JSON,
//!   streams large bodies and echoes WebSocket messages.
//! - [`gateway::Gateway`]: the real `authgate gateway` binary.
//! - [`op::Op`]: the OpenID Provider from `tests/e2e` (node + oidc-provider).
//! - [`browser::Browser`]: Chromium driven through chromedriver (WebDriver).
//! - [`agent::Agent`]: an HTTP client with a cookie jar that signs in
//!   without a browser: through the OP's login form ([`Agent::sign_in`]),
//!   or hop by hop against a fake ([`Agent::login`], with the assertions
//!   of [`login`]).
//! - [`serve`]: in-process servers for the fakes of `tests/fakes`.
//! - [`cluster`]: the control plane of `tests/controlplane`, namespaces,
//!   the controller process, kubectl and polling helpers.
//! - [`tls_proxy::TlsProxy`]: https with a [`pki::TestCa`] certificate in
//!   front of a plain-http server (the OP behind a private CA).
//! - [`Stack`]: OP + echo + gateway wired together.
//!
//! Each test binary uses only part of it, hence the `allow` below.

#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod browser;
pub mod ci;
pub mod cluster;
pub mod device;
pub mod echo;
pub mod gateway;
pub mod helm;
pub mod login;
pub mod nginx;
pub mod op;
pub mod pki;
pub mod ports;
pub mod projected;
pub mod redis;
pub mod serve;
pub mod tls_proxy;
pub mod traefik;

use authgate::gateway::GatewayConfig;

pub use agent::{Accept, Agent};
pub use browser::Browser;
pub use ci::{in_ci, require};
pub use echo::Echo;
pub use gateway::Gateway;
pub use op::{Op, OpSettings};
pub use ports::free_port;

/// Process-wide setup: the rustls crypto provider.
pub fn init() {
    authgate::telemetry::install_crypto_provider();
}

/// A policy letting in the `sre` group, with no email rule (so users
/// without an address can sign in too).
pub fn sre_only(c: &mut GatewayConfig) {
    c.access.allowed_groups = vec!["sre".into()];
}

/// A fresh cookie encryption key in the configured format.
pub fn cookie_key() -> String {
    authgate::gateway::session::crypto::generate_key()
}

/// Client ID and secret the stacks register at the OP.
pub const CLIENT_ID: &str = "authgate";
/// See [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "s3cret-for-tests-only";

/// OP + echo upstream + gateway, the gateway using the OP as its only
/// (OIDC) provider.
pub struct Stack {
    /// The gateway (dropped first: it is the only one talking to the others).
    pub gateway: Gateway,
    /// The OpenID Provider.
    pub op: Op,
    /// The upstream.
    pub echo: Echo,
}

impl Stack {
    /// Starts everything. `access_token_ttl` is the OP's access token
    /// lifetime in seconds; `tweak` adjusts the gateway config (filters,
    /// forwarding, …) before the gateway starts. `None` when node is
    /// missing (see [`require`]).
    pub async fn start(access_token_ttl: u64, tweak: impl FnOnce(&mut GatewayConfig)) -> Option<Self> {
        Self::start_with_env(access_token_ttl, tweak, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment for the gateway
    /// (e.g. `RUST_LOG`).
    pub async fn start_with_env(
        access_token_ttl: u64,
        tweak: impl FnOnce(&mut GatewayConfig),
        env: &[(&str, &str)],
    ) -> Option<Self> {
        let port = free_port();
        Self::start_at(port, &format!("http://127.0.0.1:{port}"), access_token_ttl, tweak, env).await
    }

    /// Like [`start_with_env`](Self::start_with_env), with the gateway on
    /// `port` and `public` as its external URL (and the callback registered
    /// at the OP under it): for a gateway behind an ingress.
    pub async fn start_at(
        port: u16,
        public: &str,
        access_token_ttl: u64,
        tweak: impl FnOnce(&mut GatewayConfig),
        env: &[(&str, &str)],
    ) -> Option<Self> {
        init();
        let callback = format!("{public}/oauth2/callback");
        let op = Op::start(OpSettings {
            access_token_ttl,
            clients: vec![op::client(CLIENT_ID, CLIENT_SECRET, &[&callback])],
            ..OpSettings::default()
        })
        .await?;
        let echo = Echo::start().await;
        let mut config =
            gateway::config(port, &echo.url(), vec![gateway::oidc_provider(&op, "corp", CLIENT_ID, CLIENT_SECRET)]);
        config.external_url = url::Url::parse(public).expect("public URL");
        tweak(&mut config);
        let gateway = Gateway::start_with(config, env).await;
        Some(Self { gateway, op, echo })
    }
}
