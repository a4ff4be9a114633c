//! Hand-written fakes for what cannot run here: GitHub (`github.rs`) and a
//! hostile OpenID Provider (`hostile_op.rs`). The real `authgate gateway`,
//! the echo upstream and the cookie-jar agent that runs against them come
//! from `tests/common`.
//!
//! Included from test files with `mod common; mod fakes;`; each test binary
//! uses only part of it.
#![allow(dead_code)]

pub mod envoy;
pub mod github;
pub mod hostile_op;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// `n` random bytes, base64url without padding: the fakes' codes and tokens.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `RUST_LOG` for a gateway run against a fake: `GATEWAY_LOG`, or `debug`
/// for every crate (not only authgate's), so that the tests looking for
/// leaked secrets read everything the process can log.
pub fn gateway_log() -> String {
    std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "debug".to_owned())
}
