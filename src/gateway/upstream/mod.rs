//! Where an authenticated request goes, and what it carries there.
//!
//! - [`routes`]: the route table, which picks an upstream by path. It
//!   holds one route today (the policy's upstream, at `/`).
//! - [`headers`]: what is stripped from the client's request and what the
//!   gateway adds (forwarding and identity headers).
//! - [`identity`]: what the upstream learns about the user, under which
//!   header names.
//! - [`client`]: the pooled hyper client that forwards one request.
//! - [`tls`]: roots and client certificates towards an upstream.
//! - [`token`]: `client_credentials` tokens a route injects.

pub mod client;
pub mod headers;
pub mod identity;
#[cfg(test)]
mod identity_props;
pub mod routes;
pub mod tls;
pub mod token;

pub use client::{Forwarded, Proxy, ProxyError};
pub use routes::{Route, RouteTable, Upstreams};
