//! ApiTokens of the policy (`machine.apiTokens` of gateway.yaml: hashes
//! only).
//!
//! A Bearer credential that has the ApiToken shape (prefix `agt_`, length
//! and checksum, [`crate::contract::api_token::looks_like`]) is ours; any
//! other is left to the next authenticator. Ours is hashed and looked up:
//! an unknown hash or one past its `expiresAt` is refused (401), so a
//! revoked or expired token never falls through to anonymous access.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;

use super::machine::{BearerToken, bearer_token};
use super::{Authenticator, Caller, MachineCaller, Rejection, Verdict};
use crate::access::{DomainProof, Grant, Identity, Membership, Principal, Proof};
use crate::contract::api_token::{looks_like, sha256_hex};
use crate::contract::machine::{ApiTokenEntry, MachineConfig};

/// What `principal.provider` says for an ApiToken identity (no provider
/// of the gateway vouched for it, so no provider filters apply).
pub const PROVIDER: &str = "apitoken";

/// Accepts `Authorization: Bearer <ApiToken>` whose hash is in force.
pub struct ApiTokenAuthenticator {
    /// Entries by their lowercase hex SHA-256. A plain map lookup is no
    /// timing oracle here: what is looked up is the SHA-256 of what the
    /// caller sent, and the stored keys are hashes of 256 random bits, so
    /// how far a lookup gets tells an attacker nothing they can steer
    /// toward a token (they would need preimages).
    by_hash: HashMap<String, ApiTokenEntry>,
    /// Whether the policy names scopes; without any, a token has full
    /// access like a user.
    scoped: bool,
}

impl ApiTokenAuthenticator {
    /// The authenticator for `machine`'s ApiTokens (no I/O).
    pub fn new(machine: &MachineConfig) -> Self {
        let by_hash = machine.api_tokens.iter().map(|e| (e.sha256.to_ascii_lowercase(), e.clone())).collect();
        Self { by_hash, scoped: !machine.scopes.is_empty() }
    }

    fn verdict(&self, headers: &HeaderMap, now: u64) -> Verdict {
        let BearerToken::Present(token) = bearer_token(headers) else { return Verdict::NotMine };
        if !looks_like(token) {
            return Verdict::NotMine;
        }
        let Some(entry) = self.by_hash.get(&sha256_hex(token)) else {
            return Verdict::Reject(Rejection::InvalidToken("unknown_api_token"));
        };
        if now >= entry.expires_at {
            return Verdict::Reject(Rejection::InvalidToken("expired"));
        }
        let identity = Identity {
            subject: format!("apitoken:{}", entry.name),
            user: entry.user.clone(),
            email: None,
            email_verified: false,
            domain_proof: DomainProof::default(),
            groups: Membership::Known(entry.groups.clone()),
            orgs: Membership::Unavailable,
            teams: Membership::Unavailable,
        };
        let grant = if self.scoped { Grant::Scopes(entry.scopes.clone()) } else { Grant::Full };
        Verdict::Caller(Caller::Machine(Arc::new(MachineCaller {
            principal: Principal { identity, provider: PROVIDER.into(), proof: Proof::ApiToken },
            grant,
            expires_at: entry.expires_at,
            upstream_token: None,
        })))
    }
}

impl Authenticator for ApiTokenAuthenticator {
    fn authenticate(&self, headers: &HeaderMap, now: u64) -> impl Future<Output = Verdict> + Send {
        std::future::ready(self.verdict(headers, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::api_token::generate;
    use crate::contract::machine::Scope;
    use http::HeaderValue;
    use http::header::AUTHORIZATION;

    fn entry(name: &str, token: &str, expires_at: u64) -> ApiTokenEntry {
        ApiTokenEntry {
            name: name.into(),
            sha256: sha256_hex(token),
            user: "ci-bot".into(),
            groups: vec!["deployers".into()],
            scopes: vec!["read".into()],
            expires_at,
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    fn scope(name: &str) -> Scope {
        serde_json::from_value(serde_json::json!({"name": name, "pathPrefixes": ["/"]})).unwrap()
    }

    fn machine(entries: Vec<ApiTokenEntry>, scopes: Vec<Scope>) -> MachineConfig {
        MachineConfig { api_tokens: entries, scopes, ..Default::default() }
    }

    fn caller(v: Verdict) -> Arc<MachineCaller> {
        match v {
            Verdict::Caller(Caller::Machine(m)) => m,
            other => panic!("expected a machine caller, got {other:?}"),
        }
    }

    #[test]
    fn a_token_in_force_is_a_machine_caller_named_after_its_apitoken() {
        let t = generate();
        let auth = ApiTokenAuthenticator::new(&machine(vec![entry("ci", &t, 2000)], vec![scope("read")]));
        let m = caller(auth.verdict(&bearer(&t), 1000));
        assert_eq!(m.principal.identity.subject, "apitoken:ci");
        assert_eq!(m.principal.identity.user, "ci-bot");
        assert_eq!(m.principal.identity.groups, Membership::Known(vec!["deployers".into()]));
        assert_eq!(m.principal.identity.email, None);
        assert!(!m.principal.identity.email_verified);
        assert_eq!(m.principal.identity.orgs, Membership::Unavailable);
        assert_eq!(m.principal.provider, "apitoken");
        assert_eq!(m.principal.proof, Proof::ApiToken);
        assert_eq!(m.grant, Grant::Scopes(vec!["read".into()]));
        assert_eq!(m.expires_at, 2000);
        assert!(m.upstream_token.is_none(), "an ApiToken is never sent upstream");
    }

    #[test]
    fn without_policy_scopes_a_token_has_full_access() {
        let t = generate();
        let auth = ApiTokenAuthenticator::new(&machine(vec![entry("ci", &t, 2000)], vec![]));
        assert_eq!(caller(auth.verdict(&bearer(&t), 1000)).grant, Grant::Full);
    }

    #[test]
    fn an_unknown_token_of_our_shape_is_refused_not_ignored() {
        let t = generate();
        let auth = ApiTokenAuthenticator::new(&machine(vec![entry("ci", &t, 2000)], vec![]));
        let other = generate();
        assert!(matches!(
            auth.verdict(&bearer(&other), 1000),
            Verdict::Reject(Rejection::InvalidToken("unknown_api_token"))
        ));
        // No tokens configured at all: still ours, still refused.
        let empty = ApiTokenAuthenticator::new(&MachineConfig::default());
        assert!(matches!(
            empty.verdict(&bearer(&t), 1000),
            Verdict::Reject(Rejection::InvalidToken("unknown_api_token"))
        ));
    }

    #[test]
    fn a_token_is_refused_from_its_expiry_on() {
        let t = generate();
        let auth = ApiTokenAuthenticator::new(&machine(vec![entry("ci", &t, 2000)], vec![]));
        assert!(matches!(auth.verdict(&bearer(&t), 1999), Verdict::Caller(_)));
        for now in [2000, 2001, u64::MAX] {
            assert!(matches!(auth.verdict(&bearer(&t), now), Verdict::Reject(Rejection::InvalidToken("expired"))));
        }
    }

    #[test]
    fn other_credentials_are_not_mine() {
        let t = generate();
        let auth = ApiTokenAuthenticator::new(&machine(vec![entry("ci", &t, 2000)], vec![]));
        let mut basic = HeaderMap::new();
        basic.insert(AUTHORIZATION, HeaderValue::from_static("Basic YTpi"));
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        // A token with our prefix but a broken checksum is not ours either
        // (a typo, or some other vendor's agt_ token).
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'a' { b'b' } else { b'a' };
        let bad = String::from_utf8(bad).unwrap();
        for h in [HeaderMap::new(), basic, bearer(jwt), bearer(&bad)] {
            assert!(matches!(auth.verdict(&h, 1000), Verdict::NotMine), "{h:?}");
        }
    }

    #[test]
    fn a_hash_in_upper_case_still_matches() {
        let t = generate();
        let mut e = entry("ci", &t, 2000);
        e.sha256 = e.sha256.to_ascii_uppercase();
        let auth = ApiTokenAuthenticator::new(&machine(vec![e], vec![]));
        assert!(matches!(auth.verdict(&bearer(&t), 1000), Verdict::Caller(_)));
    }
}
