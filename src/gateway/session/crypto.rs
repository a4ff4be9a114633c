//! Authenticated encryption of cookie values: AES-256-GCM with the cookie
//! name as associated data, under a keyring that decrypts with any key and
//! encrypts with the newest.
//!
//! A sealed value is `base64url(nonce ‖ ciphertext ‖ tag)` with a random
//! 96-bit nonce. Binding the cookie name as associated data means a value
//! cut from one cookie (say, the login-flow cookie) cannot be pasted into
//! another (the session cookie), and a value sealed for one policy's cookie
//! name never opens under another's.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;

use crate::gateway::config::Redacted;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Decoded key material shorter than this is refused.
const MIN_KEY_BYTES: usize = 32;

/// Why the keyring could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No key at all.
    #[error("no cookie encryption key configured")]
    Empty,
    /// A key is not base64.
    #[error("cookie encryption key #{0} is not valid base64")]
    NotBase64(usize),
    /// A key is too short to derive from.
    #[error("cookie encryption key #{0} has {1} bytes; at least {MIN_KEY_BYTES} are required (64 recommended)")]
    TooShort(usize, usize),
    /// A key has too few distinct bytes to be random (such as 64 times the
    /// same byte, or a short word repeated).
    #[error(
        "cookie encryption key #{0} is not random: it has only {1} distinct bytes; generate one with `openssl rand -base64 64`"
    )]
    LowEntropy(usize, usize),
}

/// Fewest distinct byte values a key must have. 64 random bytes have about
/// 56; fewer than 16 happens by chance with probability below 10^-40.
const MIN_DISTINCT_BYTES: usize = 16;

/// The ciphers for every configured key, built once at startup so the hot
/// path never runs a key schedule.
pub struct Keyring {
    /// Newest first; index 0 encrypts.
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.ciphers.len()).finish()
    }
}

impl Keyring {
    /// Builds the keyring from the configured base64 keys (standard or
    /// URL-safe alphabet, padding optional). Each key is expanded with
    /// HKDF-SHA256 (the `cookie` crate's key derivation) into a 256-bit
    /// AES key, so any high-entropy secret of at least 32 bytes works.
    pub fn new(keys: &[Redacted]) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let ciphers = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let raw = decode_key(key.expose()).ok_or(KeyError::NotBase64(i))?;
                if raw.len() < MIN_KEY_BYTES {
                    return Err(KeyError::TooShort(i, raw.len()));
                }
                let mut seen = [false; 256];
                raw.iter().for_each(|b| seen[usize::from(*b)] = true);
                let distinct = seen.iter().filter(|s| **s).count();
                if distinct < MIN_DISTINCT_BYTES {
                    return Err(KeyError::LowEntropy(i, distinct));
                }
                let derived = cookie::Key::derive_from(&raw);
                Ok(Aes256Gcm::new_from_slice(derived.encryption()).expect("derived key is 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { ciphers })
    }

    /// Encrypts `plaintext` with the newest key, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> String {
        let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plaintext);
        let tag = self.ciphers[0]
            .encrypt_in_place_detached(&Nonce::from(nonce), aad, &mut buf[NONCE_LEN..])
            .expect("plaintext within AES-GCM limits");
        buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(&buf)
    }

    /// Decrypts a sealed value with whichever key opens it. Returns the
    /// plaintext, or `None` if no key authenticates it (tampered, wrong
    /// associated data, foreign key, or garbage).
    pub fn open(&self, aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let mut buf = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if buf.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let tag_at = buf.len() - TAG_LEN;
        let tag = Tag::from(<[u8; TAG_LEN]>::try_from(&buf[tag_at..]).ok()?);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(&buf[..NONCE_LEN]).ok()?);
        let opened = self.ciphers.iter().any(|cipher| {
            // On failure the buffer is left untouched, so the next key sees
            // the original ciphertext.
            cipher.decrypt_in_place_detached(&nonce, aad, &mut buf[NONCE_LEN..tag_at], &tag).is_ok()
        });
        if !opened {
            return None;
        }
        buf.truncate(tag_at);
        buf.drain(..NONCE_LEN);
        Some(buf)
    }
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let unpadded = text.trim_end_matches('=');
    if text.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(unpadded).ok()
    } else {
        STANDARD.decode(text).ok().or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).ok())
    }
}

pub use crate::contract::keys::generate_cookie_key as generate_key;

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> Keyring {
        Keyring::new(&keys.iter().map(|k| Redacted::new(*k)).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = generate_key();
        let r = ring(&[&k]);
        let sealed = r.seal(b"_authgate", b"hello");
        assert_eq!(r.open(b"_authgate", &sealed).as_deref(), Some(&b"hello"[..]));
        // Fresh nonce every time.
        assert_ne!(sealed, r.seal(b"_authgate", b"hello"));
    }

    #[test]
    fn associated_data_binds_the_cookie_name() {
        let r = ring(&[&generate_key()]);
        let sealed = r.seal(b"_authgate", b"hello");
        assert_eq!(r.open(b"_authgate_flow", &sealed), None);
        assert_eq!(r.open(b"_other", &sealed), None);
    }

    #[test]
    fn keyring_decrypts_with_any_and_encrypts_with_newest() {
        let (old, new) = (generate_key(), generate_key());
        let before = ring(&[&old]);
        let rotated = ring(&[&new, &old]);
        let sealed_old = before.seal(b"c", b"x");
        assert_eq!(rotated.open(b"c", &sealed_old).as_deref(), Some(&b"x"[..]));
        let sealed_new = rotated.seal(b"c", b"y");
        assert_eq!(before.open(b"c", &sealed_new), None, "written with the newest key");
        assert_eq!(ring(&[&new]).open(b"c", &sealed_new).as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn foreign_key_is_refused() {
        let sealed = ring(&[&generate_key()]).seal(b"c", b"x");
        assert_eq!(ring(&[&generate_key()]).open(b"c", &sealed), None);
    }

    #[test]
    fn tampering_is_detected() {
        let r = ring(&[&generate_key()]);
        let sealed = r.seal(b"c", b"some session payload");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in [0, NONCE_LEN, raw.len() / 2, raw.len() - 1] {
            raw[i] ^= 1;
            assert_eq!(r.open(b"c", &URL_SAFE_NO_PAD.encode(&raw)), None, "flip at {i}");
            raw[i] ^= 1;
        }
        assert_eq!(r.open(b"c", &URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1])), None);
        assert_eq!(r.open(b"c", "not base64 !!"), None);
        assert_eq!(r.open(b"c", ""), None);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(Keyring::new(&[]).unwrap_err(), KeyError::Empty);
        assert_eq!(Keyring::new(&[Redacted::new("***")]).unwrap_err(), KeyError::NotBase64(0));
        assert_eq!(Keyring::new(&[Redacted::new(STANDARD.encode([1u8; 16]))]).unwrap_err(), KeyError::TooShort(0, 16));
        // URL-safe and unpadded forms are accepted.
        assert_eq!(Keyring::new(&[Redacted::new(STANDARD.encode([7u8; 64]))]).unwrap_err(), KeyError::LowEntropy(0, 1));
        let raw: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        assert!(Keyring::new(&[Redacted::new(URL_SAFE_NO_PAD.encode(&raw))]).is_ok());
        assert!(Keyring::new(&[Redacted::new(format!(" {} ", STANDARD.encode(&raw)))]).is_ok());
    }
}
