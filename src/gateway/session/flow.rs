//! One login attempt: the secrets `/oauth2/start` creates and
//! `/oauth2/callback` checks, carried in a short-lived encrypted cookie.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::codec::{Malformed, Reader, Writer};

const FLOW_VERSION: u8 = 1;
/// How long a login attempt may take, in seconds.
pub const FLOW_TTL: u64 = 600;

/// The state of one login attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginFlow {
    /// CSRF token sent as `state` and expected back.
    pub state: String,
    /// PKCE code verifier (S256 challenge sent).
    pub pkce_verifier: String,
    /// OpenID Connect nonce, for OIDC-based providers.
    pub nonce: Option<String>,
    /// Provider name.
    pub provider: String,
    /// Validated post-login target.
    pub rd: String,
    /// Unix seconds at creation.
    pub created_at: u64,
}

impl std::fmt::Debug for LoginFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlow").field("provider", &self.provider).field("rd", &self.rd).finish_non_exhaustive()
    }
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl LoginFlow {
    /// A fresh attempt with random state, PKCE verifier and (if `oidc`) nonce.
    pub fn new(provider: &str, rd: String, oidc: bool, now: u64) -> Self {
        Self {
            state: random_token(),
            // 43 characters of base64url: within RFC 7636's 43..=128 range.
            pkce_verifier: random_token(),
            nonce: oidc.then(random_token),
            provider: provider.to_owned(),
            rd,
            created_at: now,
        }
    }

    /// Serializes the flow (plaintext; seal it before it leaves).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(200 + self.rd.len());
        w.u8(FLOW_VERSION);
        w.str(&self.state);
        w.str(&self.pkce_verifier);
        w.opt_str(self.nonce.as_deref());
        w.str(&self.provider);
        w.str(&self.rd);
        w.varint(self.created_at);
        w.finish()
    }

    /// Decodes what [`encode`](Self::encode) wrote.
    pub fn decode(buf: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(buf);
        if r.u8()? != FLOW_VERSION {
            return Err(Malformed);
        }
        let flow = Self {
            state: r.str()?.to_owned(),
            pkce_verifier: r.str()?.to_owned(),
            nonce: r.opt_str()?.map(str::to_owned),
            provider: r.str()?.to_owned(),
            rd: r.str()?.to_owned(),
            created_at: r.varint()?,
        };
        r.end()?;
        Ok(flow)
    }

    /// Compares the returned `state` in constant time.
    pub fn state_matches(&self, state: &str) -> bool {
        self.state.as_bytes().ct_eq(state.as_bytes()).into()
    }

    /// Whether the attempt is recent enough to finish.
    pub fn is_fresh(&self, now: u64) -> bool {
        now >= self.created_at.saturating_sub(60) && now < self.created_at.saturating_add(FLOW_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let f = LoginFlow::new("corp", "/x?y=1".into(), true, 1000);
        assert_eq!(f.state.len(), 43);
        assert_ne!(f.state, f.pkce_verifier);
        assert!(f.nonce.is_some());
        let back = LoginFlow::decode(&f.encode()).unwrap();
        assert_eq!(back, f);
        assert!(back.state_matches(&f.state));
        assert!(!back.state_matches(&f.state[..42]));
        assert!(!back.state_matches("x"));
        assert!(back.is_fresh(1000 + FLOW_TTL - 1));
        assert!(!back.is_fresh(1000 + FLOW_TTL));
        assert!(LoginFlow::new("gh", "/".into(), false, 0).nonce.is_none());
    }
}
