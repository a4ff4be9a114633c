//! Cookie encryption keys as `gateway.yaml` and the credentials Secret carry
//! them: base64 of 64 random bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Bytes of a generated cookie key.
pub const KEY_BYTES: usize = 64;

/// A fresh cookie key from the OS random generator, base64-encoded.
pub fn generate_cookie_key() -> String {
    let mut raw = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut raw);
    STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_random_bytes() {
        let (a, b) = (generate_cookie_key(), generate_cookie_key());
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), KEY_BYTES);
    }
}
