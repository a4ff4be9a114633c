//! The ApiToken format, shared by the controller (which issues tokens),
//! the gateway (which recognizes and checks them) and anyone scanning for
//! leaked ones.
//!
//! A token is `agt_`, then [`RANDOM_CHARS`] characters drawn uniformly from
//! the base62 alphabet (256 bits from `rand::rng()`, a
//! cryptographically secure generator seeded by the OS), then
//! [`CHECKSUM_CHARS`] base62 characters of the CRC32 (IEEE) of everything
//! before them, zero-padded: 53 characters in all, like GitHub's token
//! format. A secret scanner matches `agt_[0-9A-Za-z]{49}` and confirms a
//! hit by its checksum without asking anyone; the gateway uses the checksum
//! only to say `NotMine` fast, never as proof (that is the SHA-256 lookup).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every ApiToken starts with.
pub const PREFIX: &str = "agt_";
/// Random base62 characters after the prefix: 43 × log2(62) ≥ 256 bits.
pub const RANDOM_CHARS: usize = 43;
/// Checksum characters at the end (62^6 > 2^32).
pub const CHECKSUM_CHARS: usize = 6;
/// Length of a whole token.
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token from the thread's cryptographically secure generator.
pub fn generate() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(PREFIX);
    for _ in 0..RANDOM_CHARS {
        // Uniform: random_range rejects rather than takes a modulus.
        let i = rng.random_range(0..ALPHABET.len());
        token.push(char::from(ALPHABET[i]));
    }
    let checksum = checksum(&token);
    token.push_str(&checksum);
    token
}

/// Whether `token` has the ApiToken shape and a correct checksum. Cheap and
/// not secret: it says what a token is, not whether it is valid.
pub fn looks_like(token: &str) -> bool {
    if token.len() != TOKEN_LEN || !token.starts_with(PREFIX) {
        return false;
    }
    if !token[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = token.split_at(TOKEN_LEN - CHECKSUM_CHARS);
    checksum(body) == sum
}

/// Lowercase hex SHA-256 of the whole token: what gateway.yaml and the
/// ApiToken's status carry.
pub fn sha256_hex(token: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(token.as_bytes()).iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Whether two hex hashes are equal, in time independent of where they
/// differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The base62 CRC32 of `body`, [`CHECKSUM_CHARS`] characters.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// CRC-32/ISO-HDLC (the zlib and PNG one), bit by bit: tokens are short.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_the_standard_one() {
        // The CRC-32 check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_token_has_the_prefix_the_length_and_a_valid_checksum() {
        let t = generate();
        assert!(t.starts_with("agt_"), "{}", &t[..4]);
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(looks_like(&t));
    }

    #[test]
    fn the_checksum_catches_any_flipped_character() {
        let t = generate();
        for i in PREFIX.len()..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(!looks_like(&changed), "position {i}");
        }
        assert!(!looks_like(&t.replacen("agt_", "agx_", 1)));
        assert!(!looks_like(&t[..t.len() - 1]));
        assert!(!looks_like("eyJhbGciOi.eyJzdWIi.c2ln"));
    }

    #[test]
    fn tokens_carry_at_least_256_random_bits() {
        // 43 characters of a 62-letter alphabet.
        assert!((RANDOM_CHARS as f64) * 62f64.log2() >= 256.0);
        let a: Vec<String> = (0..64).map(|_| generate()).collect();
        let distinct: std::collections::HashSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
        // Every letter of the alphabet turns up across 64 × 43 draws
        // (each is missed with probability ~1e-19): the draw is not a
        // narrower alphabet.
        let seen: std::collections::HashSet<u8> =
            a.iter().flat_map(|t| t.as_bytes()[PREFIX.len()..PREFIX.len() + RANDOM_CHARS].to_vec()).collect();
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn hashes_are_lowercase_hex_and_compare_exactly() {
        let h = sha256_hex("agt_x");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(hashes_equal(&h, &sha256_hex("agt_x")));
        assert!(!hashes_equal(&h, &sha256_hex("agt_y")));
        assert!(!hashes_equal(&h, &h[..63]));
    }
}
