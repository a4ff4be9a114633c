//! Who is calling and how they proved it, and the one decision of whether
//! they may enter.

use super::{AllowList, Denial, Email, Identity, is_canonical};

/// How a caller proved who they are. Each authenticator of the gateway's
/// chain produces one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// An interactive sign-in at the provider (authorization code with
    /// PKCE), or a refresh of one; kept afterwards in a session.
    SignIn,
    /// A bearer JWT of a trusted issuer, verified on this request.
    Bearer,
    /// An ApiToken of the policy (an identity the policy's owners made, not
    /// a person's).
    ApiToken,
    /// A device-flow token, approved in a browser by a signed-in user.
    Device,
}

impl Proof {
    /// The authentication method, as metrics label it.
    pub fn method(self) -> &'static str {
        match self {
            Self::SignIn => "session",
            Self::Bearer => "bearer",
            Self::ApiToken => "api_token",
            Self::Device => "device",
        }
    }
}

/// A caller as an authenticator established it: the identity the provider
/// vouched for, the provider, and the kind of proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// What the provider said about the caller.
    pub identity: Identity,
    /// Name of the provider that vouched for it.
    pub provider: String,
    /// How the caller proved it.
    pub proof: Proof,
}

/// Lets a principal in only if it passes every level (provider AND
/// policy). Any email the provider returned must be verified, whether or
/// not a list looks at it, so an unverified address never becomes
/// identity.
///
/// Every identity value must also be in canonical form (see
/// [`is_canonical`]): one that is not is refused, never trimmed or
/// normalized into what could be another user's value.
pub fn authorize<'a>(principal: &Principal, levels: impl IntoIterator<Item = &'a AllowList>) -> Result<(), Denial> {
    let identity = &principal.identity;
    if !is_canonical(&identity.subject) {
        return Err(Denial::NotCanonical("id"));
    }
    if !is_canonical(&identity.user) {
        return Err(Denial::NotCanonical("user name"));
    }
    if let Some(email) = &identity.email {
        Email::parse(email).map_err(|_| Denial::EmailMalformed)?;
        if !identity.email_verified {
            return Err(Denial::EmailUnverified);
        }
    }
    levels.into_iter().try_for_each(|level| level.check(identity))
}

#[cfg(test)]
mod tests {
    use super::super::test_identity::alice;
    use super::*;

    fn signed_in(identity: Identity) -> Principal {
        Principal { identity, provider: "oidc".into(), proof: Proof::SignIn }
    }

    fn domains(d: &str) -> AllowList {
        AllowList { allowed_domains: vec![d.into()], ..AllowList::default() }
    }

    #[test]
    fn no_levels_or_empty_levels_let_a_sound_identity_in() {
        assert_eq!(authorize(&signed_in(alice()), []), Ok(()));
        assert_eq!(authorize(&signed_in(alice()), [&AllowList::default()]), Ok(()));
    }

    #[test]
    fn an_unverified_email_is_refused_even_when_no_list_looks_at_it() {
        let bob = Identity { email_verified: false, ..alice() };
        assert_eq!(authorize(&signed_in(bob), [&AllowList::default()]), Err(Denial::EmailUnverified));
        let nomail = Identity { email: None, ..alice() };
        assert_eq!(authorize(&signed_in(nomail.clone()), [&AllowList::default()]), Ok(()));
        assert_eq!(authorize(&signed_in(nomail), [&domains("example.com")]), Err(Denial::EmailMissing));
    }

    #[test]
    fn every_level_must_pass() {
        let provider = domains("example.com");
        let policy = AllowList { allowed_groups: vec!["dev".into()], ..AllowList::default() };
        assert_eq!(authorize(&signed_in(alice()), [&provider, &policy]), Err(Denial::GroupNotAllowed));
        assert_eq!(authorize(&signed_in(alice()), [&policy, &provider]), Err(Denial::GroupNotAllowed));
        let sre = AllowList { allowed_groups: vec!["sre".into()], ..AllowList::default() };
        assert_eq!(authorize(&signed_in(alice()), [&provider, &sre]), Ok(()));
        assert_eq!(
            authorize(&signed_in(alice()), [&provider, &domains("other.com")]),
            Err(Denial::DomainNotAllowed("example.com".into()))
        );
    }

    #[test]
    fn identity_values_must_be_canonical() {
        let none = AllowList::default();
        let padded = Identity { email: Some(" alice@example.com".into()), ..alice() };
        assert_eq!(authorize(&signed_in(padded), [&none]), Err(Denial::EmailMalformed));
        let user = Identity { user: "alice\r\nX-Evil: 1".into(), ..alice() };
        assert_eq!(authorize(&signed_in(user), [&none]), Err(Denial::NotCanonical("user name")));
        let sub = Identity { subject: " 1".into(), ..alice() };
        assert_eq!(authorize(&signed_in(sub), [&none]), Err(Denial::NotCanonical("id")));
        assert_eq!(Denial::NotCanonical("id").reason(), "identity_not_canonical");
    }
}
