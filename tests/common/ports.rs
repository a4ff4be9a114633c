//! Loopback ports for the components a test starts.

use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// A TCP port that was free a moment ago on 127.0.0.1, and that this
/// process has not handed out before (so two components started in a row
/// never get the same one).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
