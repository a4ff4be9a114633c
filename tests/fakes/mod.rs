//! Hand-written fakes for what cannot run here (GitHub, a hostile OpenID
//! Provider) and a small harness that runs the real `authgate gateway`
//! binary against them.
//!
//! Included from test files with `mod fakes;`; each test binary uses only
//! part of it.
#![allow(dead_code)]

pub mod github;
pub mod harness;
pub mod hostile_op;
