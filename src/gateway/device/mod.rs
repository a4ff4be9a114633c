//! The device authorization grant (RFC 8628): pending grants and what can
//! happen to them, over a [`store::Store`].
//!
//! A device asks for a code pair: a long random `device_code` it keeps and
//! polls with (stored only as its SHA-256), and a short `user_code` a
//! person types on the approval page while signed in. The person approves
//! or denies; the device's next poll redeems the approval exactly once
//! (an atomic take) and gets a device token.
//!
//! Guessing user codes is bounded per client IP and globally
//! ([`GUESSES_PER_IP`], [`GUESSES_GLOBAL`]); a code space of 20^8 and a
//! code lifetime of minutes make a hit within those limits negligible.

pub mod store;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use store::{MemoryStore, Store, StoreError};

/// The user-code alphabet: consonants only (no vowels, so no words; no
/// look-alike digits), RFC 8628 §6.1's base-20 example.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code, shown as two groups of four.
pub const USER_CODE_CHARS: usize = 8;
/// Wrong user codes one client IP may enter per [`GUESS_WINDOW`].
pub const GUESSES_PER_IP: u64 = 10;
/// Wrong user codes all clients together may enter per [`GUESS_WINDOW`].
pub const GUESSES_GLOBAL: u64 = 300;
/// The window of the guess limits, in seconds.
pub const GUESS_WINDOW: u64 = 300;
/// Device authorizations one client IP may start per [`GUESS_WINDOW`]:
/// enough for any person, and it keeps one client from filling the store.
pub const AUTHORIZATIONS_PER_IP: u64 = 30;
/// How long a grant is kept past its expiry, so that a late poll hears
/// `expired_token` rather than `invalid_grant`.
pub const EXPIRED_GRACE: u64 = 600;

/// A person's approval: who the device will act as.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Subject at the provider.
    pub subject: String,
    /// User name.
    pub user: String,
    /// Email (verified: it came from a session).
    pub email: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// The provider that signed the approving session in.
    pub provider: String,
}

/// Where a grant stands.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for a person.
    Pending,
    /// Approved by this person.
    Approved(Approval),
    /// Denied.
    Denied,
}

/// A device authorization request, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The `client_id` the device gave (a public name such as `authgate-cli`).
    pub client_id: String,
    /// The user code, `XXXX-XXXX`.
    pub user_code: String,
    /// The requesting IP address, shown on the approval page.
    pub ip: String,
    /// The requesting User-Agent, shown on the approval page.
    pub user_agent: String,
    /// Unix seconds of the request.
    pub requested_at: u64,
    /// Unix seconds after which it can no longer be approved or redeemed.
    pub expires_at: u64,
    /// Where it stands.
    pub state: State,
}

/// What a device gets back from [`authorize`].
pub struct Codes {
    /// The secret it polls with.
    pub device_code: String,
    /// What the person types.
    pub user_code: String,
}

/// The answer to one poll of the token endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// Not decided yet.
    Pending,
    /// Polled sooner than the interval.
    SlowDown,
    /// The code's lifetime is over.
    Expired,
    /// The person denied it.
    Denied,
    /// Unknown, already redeemed, or another client's.
    Invalid,
    /// Approved: this poll redeemed it.
    Issued(Approval),
}

/// A fresh user code, `XXXX-XXXX`.
pub fn new_user_code() -> String {
    let mut rng = rand::rng();
    let chars: String = (0..USER_CODE_CHARS)
        .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// The canonical form of a typed user code (case, dashes and spaces
/// ignored), or `None` if it cannot be one.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let chars: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .take(USER_CODE_CHARS + 1)
        .collect();
    (chars.len() == USER_CODE_CHARS && chars.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &chars[..4], &chars[4..]))
}

/// Lowercase hex SHA-256 of a device code: what the store is keyed by.
pub fn hash(device_code: &str) -> String {
    let digest = Sha256::digest(device_code.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn grant_key(hash: &str) -> String {
    format!("grant:{hash}")
}

fn user_key(user_code: &str) -> String {
    format!("user:{user_code}")
}

/// Starts a grant for `client_id`, valid for `code_ttl` seconds.
pub async fn authorize(
    store: &Store<'_>,
    client_id: &str,
    ip: &str,
    user_agent: &str,
    code_ttl: u64,
    now: u64,
) -> Result<Codes, StoreError> {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    let device_code = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    let hash = hash(&device_code);
    // A collision of user codes among the pending ones is unlikely; a
    // claim keeps two grants from ever sharing one.
    let mut user_code = new_user_code();
    let mut tries = 0;
    while !store.set_if_absent(&user_key(&user_code), hash.as_bytes(), code_ttl, now).await? {
        tries += 1;
        if tries >= 5 {
            return Err(StoreError::Full);
        }
        user_code = new_user_code();
    }
    let grant = Grant {
        client_id: client_id.to_owned(),
        user_code: user_code.clone(),
        ip: ip.to_owned(),
        user_agent: user_agent.chars().take(256).collect(),
        requested_at: now,
        expires_at: now + code_ttl,
        state: State::Pending,
    };
    store.set(&grant_key(&hash), &encode(&grant), code_ttl + EXPIRED_GRACE, now).await?;
    Ok(Codes { device_code, user_code })
}

fn encode(grant: &Grant) -> Vec<u8> {
    serde_json::to_vec(grant).expect("a grant serializes")
}

async fn load(store: &Store<'_>, hash: &str, now: u64) -> Result<Option<Grant>, StoreError> {
    Ok(store.get(&grant_key(hash), now).await?.and_then(|raw| serde_json::from_slice(&raw).ok()))
}

/// Counts a device authorization started from `ip`; whether it is within
/// [`AUTHORIZATIONS_PER_IP`].
pub async fn may_authorize(store: &Store<'_>, ip: &str, now: u64) -> Result<bool, StoreError> {
    Ok(store.count(&format!("authz:{ip}"), GUESS_WINDOW, now).await? <= AUTHORIZATIONS_PER_IP)
}

/// Whether `ip` (and everyone together) may still guess user codes.
pub async fn may_guess(store: &Store<'_>, ip: &str, now: u64) -> Result<bool, StoreError> {
    let count = |raw: Option<Vec<u8>>| {
        raw.and_then(|r| String::from_utf8(r).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let by_ip = count(store.get(&format!("guess:{ip}"), now).await?);
    let all = count(store.get("guess:*", now).await?);
    Ok(by_ip < GUESSES_PER_IP && all < GUESSES_GLOBAL)
}

/// Counts a wrong user code entered from `ip`.
pub async fn wrong_guess(store: &Store<'_>, ip: &str, now: u64) -> Result<(), StoreError> {
    store.count(&format!("guess:{ip}"), GUESS_WINDOW, now).await?;
    store.count("guess:*", GUESS_WINDOW, now).await?;
    Ok(())
}

/// The pending grant of a (normalized) user code: its key and record.
/// `None` for unknown, expired and already decided codes.
pub async fn find(store: &Store<'_>, user_code: &str, now: u64) -> Result<Option<(String, Grant)>, StoreError> {
    let Some(hash) = store.get(&user_key(user_code), now).await?.and_then(|h| String::from_utf8(h).ok()) else {
        return Ok(None);
    };
    let grant = load(store, &hash, now).await?;
    Ok(grant.filter(|g| g.state == State::Pending && now < g.expires_at && g.user_code == user_code).map(|g| (hash, g)))
}

/// Records the person's decision on a grant [`find`] returned; the user
/// code stops working at once, so it is decided only once.
pub async fn decide(store: &Store<'_>, hash: &str, mut grant: Grant, state: State, now: u64) -> Result<(), StoreError> {
    if store.take(&user_key(&grant.user_code), now).await?.is_none() {
        // Decided meanwhile (another tab, another replica).
        return Ok(());
    }
    grant.state = state;
    let left = grant.expires_at.saturating_sub(now);
    store.set(&grant_key(hash), &encode(&grant), left + EXPIRED_GRACE, now).await
}

/// One poll of the token endpoint with `device_code` by `client_id`,
/// `interval` seconds being the least allowed between two polls.
pub async fn poll(
    store: &Store<'_>,
    device_code: &str,
    client_id: &str,
    interval: u64,
    now: u64,
) -> Result<Poll, StoreError> {
    let hash = hash(device_code);
    let Some(grant) = load(store, &hash, now).await? else { return Ok(Poll::Invalid) };
    if grant.client_id != client_id {
        return Ok(Poll::Invalid);
    }
    if now >= grant.expires_at {
        return Ok(Poll::Expired);
    }
    match grant.state {
        State::Pending => {
            let mark = format!("poll:{hash}");
            // One second of slack for clients that sleep exactly `interval`.
            if store.set_if_absent(&mark, b"", interval.saturating_sub(1).max(1), now).await? {
                Ok(Poll::Pending)
            } else {
                Ok(Poll::SlowDown)
            }
        }
        State::Denied => {
            store.take(&grant_key(&hash), now).await?;
            Ok(Poll::Denied)
        }
        State::Approved(_) => {
            // Of concurrent polls, only the one that takes the record wins.
            let taken = store.take(&grant_key(&hash), now).await?;
            match taken.and_then(|raw| serde_json::from_slice::<Grant>(&raw).ok()) {
                Some(Grant { state: State::Approved(approval), .. }) => Ok(Poll::Issued(approval)),
                _ => Ok(Poll::Invalid),
            }
        }
    }
}

#[cfg(test)]
mod tests;
