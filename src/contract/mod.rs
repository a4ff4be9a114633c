//! The contract between the controller, the gateway and `authgate check`:
//! what the controller writes into `<policy>-auth-credentials` and the
//! gateway reads. Pure data and rules, no I/O, so each of the three depends
//! on this module and none on another's internals.
//!
//! - [`api_token`]: the ApiToken format (prefix, checksum, hash).
//! - [`config`]: `gateway.yaml`, its defaults and the per-policy cookie name.
//! - [`redacted`]: `Redacted`, a secret string that never shows in `Debug`.
//! - [`keys`]: cookie encryption keys as the config carries them.
//! - [`routes`]: path routes, injected credentials and TLS, resolved.
//! - [`rules`]: rules both sides apply, such as closed by default.
//! - [`session`]: cookie, keys, store, re-validation and revocations.
//! - [`seed`]: the `auth-credentials` key names (the Foxglove format) and
//!   their rules: comma-separated scopes, 64-byte cookie keys, the callback.

pub mod api_token;
pub mod config;
pub mod keys;
pub mod machine;
pub mod redacted;
pub mod routes;
pub mod rules;
pub mod seed;
pub mod session;
pub mod validate;
