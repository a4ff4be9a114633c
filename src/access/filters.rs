//! Access filters: provider-wide and per-policy lists, evaluated fail-closed.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Email, domain_matches, is_valid_domain_pattern};

/// Group-like data about a user that a provider may or may not have been
/// able to deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "values")]
pub enum Membership {
    /// Fetched successfully (possibly empty).
    Known(Vec<String>),
    /// The provider does not supply this, or fetching it failed. Any filter
    /// that needs it denies.
    Unavailable,
}

impl Membership {
    fn any(&self, mut allowed: impl FnMut(&str) -> bool) -> Option<bool> {
        match self {
            Self::Known(values) => Some(values.iter().any(|v| allowed(v))),
            Self::Unavailable => None,
        }
    }

    /// The values, if known.
    pub fn values(&self) -> &[String] {
        match self {
            Self::Known(values) => values,
            Self::Unavailable => &[],
        }
    }
}

/// What the gateway learned about a signed-in user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Stable subject identifier at the provider.
    pub subject: String,
    /// Display user name (`X-Auth-Request-User`).
    pub user: String,
    /// Email address as the provider sent it.
    pub email: Option<String>,
    /// Whether the provider says the email is verified.
    pub email_verified: bool,
    /// OIDC groups claim, or GitLab group paths.
    pub groups: Membership,
    /// GitHub organizations (logins).
    pub orgs: Membership,
    /// GitHub teams as `org/team-slug`.
    pub teams: Membership,
}

/// One level of filters: a provider's or a policy's. Every non-empty list
/// must match; empty lists do not restrict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    /// `example.com` exactly or `.example.com` for subdomains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
    /// Organizations (GitHub) or groups (GitLab, via `orgs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_orgs: Vec<String>,
    /// `org/team-slug`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_teams: Vec<String>,
    /// Groups claim values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_groups: Vec<String>,
    /// Whole email addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_emails: Vec<String>,
}

/// Why a user was turned away. The messages are shown to that user, so they
/// name the user's own data (e.g. their domain), never the rule lists.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The provider did not give an email address where one is required.
    #[error("your account has no verified email address")]
    EmailMissing,
    /// The provider says the email address is not verified.
    #[error("your email address is not verified with the identity provider")]
    EmailUnverified,
    /// Not exactly one `@`, or otherwise unusable.
    #[error("your email address is malformed")]
    EmailMalformed,
    /// The email's domain is not allowed.
    #[error("the email domain {0} is not allowed")]
    DomainNotAllowed(String),
    /// The address is not on the list.
    #[error("your email address is not allowed")]
    EmailNotAllowed,
    /// No allowed organization or group.
    #[error("you are not a member of an allowed organization")]
    OrgNotAllowed,
    /// No allowed team.
    #[error("you are not a member of an allowed team")]
    TeamNotAllowed,
    /// No allowed group.
    #[error("you are not a member of an allowed group")]
    GroupNotAllowed,
    /// A filter needs data the provider could not deliver.
    #[error("your {0} could not be verified with the identity provider")]
    MembershipUnavailable(&'static str),
    /// A user name or id the provider sent is not in canonical form.
    #[error("your account's {0} at the identity provider contains characters that cannot be used as identity")]
    NotCanonical(&'static str),
}

impl Denial {
    /// Stable, low-cardinality reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EmailMissing => "email_missing",
            Self::EmailUnverified => "email_unverified",
            Self::EmailMalformed => "email_malformed",
            Self::DomainNotAllowed(_) => "domain_not_allowed",
            Self::EmailNotAllowed => "email_not_allowed",
            Self::OrgNotAllowed => "org_not_allowed",
            Self::TeamNotAllowed => "team_not_allowed",
            Self::GroupNotAllowed => "group_not_allowed",
            Self::MembershipUnavailable(_) => "membership_unavailable",
            Self::NotCanonical(_) => "identity_not_canonical",
        }
    }
}

impl Identity {
    /// The verified email, or why there is none. An address that is present
    /// but unverified is an error, never silently dropped.
    pub fn verified_email(&self) -> Result<Email, Denial> {
        let raw = self.email.as_deref().ok_or(Denial::EmailMissing)?;
        let email = Email::parse(raw).map_err(|_| Denial::EmailMalformed)?;
        if !self.email_verified {
            return Err(Denial::EmailUnverified);
        }
        Ok(email)
    }
}

impl Filters {
    /// True when no list restricts anything.
    pub fn is_empty(&self) -> bool {
        self.allowed_domains.is_empty()
            && self.allowed_orgs.is_empty()
            && self.allowed_teams.is_empty()
            && self.allowed_groups.is_empty()
            && self.allowed_emails.is_empty()
    }

    /// Checks one user against this level.
    pub fn check(&self, identity: &Identity) -> Result<(), Denial> {
        if !self.allowed_domains.is_empty() || !self.allowed_emails.is_empty() {
            let email = identity.verified_email()?;
            if !self.allowed_domains.is_empty()
                && !self.allowed_domains.iter().any(|p| domain_matches(email.domain(), p))
            {
                return Err(Denial::DomainNotAllowed(email.domain().to_owned()));
            }
            if !self.allowed_emails.is_empty() && !self.allowed_emails.iter().any(|e| email.eq_address(e)) {
                return Err(Denial::EmailNotAllowed);
            }
        }
        if !self.allowed_orgs.is_empty() {
            let ok = identity
                .orgs
                .any(|org| self.allowed_orgs.iter().any(|a| a.eq_ignore_ascii_case(org)))
                .ok_or(Denial::MembershipUnavailable("organization membership"))?;
            if !ok {
                return Err(Denial::OrgNotAllowed);
            }
        }
        if !self.allowed_teams.is_empty() {
            let ok = identity
                .teams
                .any(|team| self.allowed_teams.iter().any(|a| a.eq_ignore_ascii_case(team)))
                .ok_or(Denial::MembershipUnavailable("team membership"))?;
            if !ok {
                return Err(Denial::TeamNotAllowed);
            }
        }
        if !self.allowed_groups.is_empty() {
            let ok = identity
                .groups
                .any(|group| self.allowed_groups.iter().any(|a| a == group))
                .ok_or(Denial::MembershipUnavailable("group membership"))?;
            if !ok {
                return Err(Denial::GroupNotAllowed);
            }
        }
        Ok(())
    }

    /// Problems with the lists themselves, for status messages and `check`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in &self.allowed_domains {
            if !is_valid_domain_pattern(d) {
                out.push(format!("allowedDomains entry {d:?} is not a bare hostname"));
            }
        }
        for t in &self.allowed_teams {
            let mut parts = t.split('/');
            let shaped = matches!((parts.next(), parts.next(), parts.next()), (Some(o), Some(s), None) if !o.is_empty() && !s.is_empty());
            if !shaped {
                out.push(format!("allowedTeams entry {t:?} is not shaped org/team-slug"));
            }
        }
        for e in &self.allowed_emails {
            if Email::parse(e).is_err() {
                out.push(format!("allowedEmails entry {e:?} is not an email address with exactly one '@'"));
            }
        }
        out
    }
}

/// Lets a user in only if they pass every level (provider AND policy).
/// Any email the provider returned must be verified, whether or not a
/// filter looks at it, so an unverified address never becomes identity.
///
/// Every identity value must also be in canonical form (see
/// [`is_canonical`](super::is_canonical)): one that is not is refused, never
/// trimmed or normalized into what could be another user's value.
pub fn authorize<'a>(identity: &Identity, levels: impl IntoIterator<Item = &'a Filters>) -> Result<(), Denial> {
    if !super::is_canonical(&identity.subject) {
        return Err(Denial::NotCanonical("id"));
    }
    if !super::is_canonical(&identity.user) {
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
    use super::*;

    fn alice() -> Identity {
        Identity {
            subject: "1".into(),
            user: "alice".into(),
            email: Some("alice@Example.com".into()),
            email_verified: true,
            groups: Membership::Known(vec!["sre".into()]),
            orgs: Membership::Known(vec!["Acme".into()]),
            teams: Membership::Known(vec!["acme/platform".into()]),
        }
    }

    fn filters(f: impl FnOnce(&mut Filters)) -> Filters {
        let mut x = Filters::default();
        f(&mut x);
        x
    }

    #[test]
    fn empty_filters_allow() {
        assert!(Filters::default().is_empty());
        assert_eq!(authorize(&alice(), [&Filters::default()]), Ok(()));
    }

    #[test]
    fn domains_exact_or_suffix() {
        let exact = filters(|f| f.allowed_domains = vec!["example.com".into()]);
        assert_eq!(exact.check(&alice()), Ok(()));
        let mut sub = alice();
        sub.email = Some("alice@eu.example.com".into());
        assert_eq!(exact.check(&sub), Err(Denial::DomainNotAllowed("eu.example.com".into())));
        let suffix = filters(|f| f.allowed_domains = vec![".example.com".into()]);
        assert_eq!(suffix.check(&sub), Ok(()));
        let mut evil = alice();
        evil.email = Some("alice@notexample.com".into());
        assert_eq!(exact.check(&evil), Err(Denial::DomainNotAllowed("notexample.com".into())));
        assert_eq!(suffix.check(&evil), Err(Denial::DomainNotAllowed("notexample.com".into())));
        let mut smuggled = alice();
        smuggled.email = Some("alice@example.com@evil.io".into());
        assert_eq!(exact.check(&smuggled), Err(Denial::EmailMalformed));
    }

    #[test]
    fn unverified_email_is_rejected_everywhere() {
        let mut bob = alice();
        bob.email_verified = false;
        assert_eq!(authorize(&bob, [&Filters::default()]), Err(Denial::EmailUnverified));
        let f = filters(|f| f.allowed_domains = vec!["example.com".into()]);
        assert_eq!(f.check(&bob), Err(Denial::EmailUnverified));
        let mut nomail = alice();
        nomail.email = None;
        assert_eq!(f.check(&nomail), Err(Denial::EmailMissing));
        assert_eq!(authorize(&nomail, [&Filters::default()]), Ok(()));
    }

    #[test]
    fn emails_case_insensitive() {
        let f = filters(|f| f.allowed_emails = vec!["ALICE@example.com".into()]);
        assert_eq!(f.check(&alice()), Ok(()));
        let g = filters(|f| f.allowed_emails = vec!["bob@example.com".into()]);
        assert_eq!(g.check(&alice()), Err(Denial::EmailNotAllowed));
    }

    #[test]
    fn orgs_teams_groups() {
        let orgs = filters(|f| f.allowed_orgs = vec!["acme".into()]);
        assert_eq!(orgs.check(&alice()), Ok(()));
        let other = filters(|f| f.allowed_orgs = vec!["globex".into()]);
        assert_eq!(other.check(&alice()), Err(Denial::OrgNotAllowed));
        let teams = filters(|f| f.allowed_teams = vec!["ACME/platform".into()]);
        assert_eq!(teams.check(&alice()), Ok(()));
        let wrong_team = filters(|f| f.allowed_teams = vec!["acme/plat".into()]);
        assert_eq!(wrong_team.check(&alice()), Err(Denial::TeamNotAllowed));
        let groups = filters(|f| f.allowed_groups = vec!["sre".into()]);
        assert_eq!(groups.check(&alice()), Ok(()));
        let case = filters(|f| f.allowed_groups = vec!["SRE".into()]);
        assert_eq!(case.check(&alice()), Err(Denial::GroupNotAllowed));
    }

    #[test]
    fn unavailable_membership_denies_only_when_needed() {
        let mut x = alice();
        x.teams = Membership::Unavailable;
        x.orgs = Membership::Unavailable;
        x.groups = Membership::Unavailable;
        assert_eq!(Filters::default().check(&x), Ok(()));
        for f in [
            filters(|f| f.allowed_teams = vec!["acme/platform".into()]),
            filters(|f| f.allowed_orgs = vec!["acme".into()]),
            filters(|f| f.allowed_groups = vec!["sre".into()]),
        ] {
            assert!(matches!(f.check(&x), Err(Denial::MembershipUnavailable(_))));
        }
    }

    #[test]
    fn every_level_and_every_list_must_pass() {
        let provider = filters(|f| f.allowed_domains = vec!["example.com".into()]);
        let policy = filters(|f| f.allowed_groups = vec!["dev".into()]);
        assert_eq!(authorize(&alice(), [&provider, &policy]), Err(Denial::GroupNotAllowed));
        let both = filters(|f| {
            f.allowed_domains = vec!["example.com".into()];
            f.allowed_orgs = vec!["globex".into()];
        });
        assert_eq!(both.check(&alice()), Err(Denial::OrgNotAllowed));
    }

    #[test]
    fn denial_messages_never_list_rules() {
        let f = filters(|f| f.allowed_domains = vec!["secret-partner.com".into()]);
        let msg = f.check(&alice()).unwrap_err().to_string();
        assert!(msg.contains("example.com"));
        assert!(!msg.contains("secret-partner"));
    }

    #[test]
    fn problems_found() {
        let f = filters(|f| {
            f.allowed_domains = vec!["*.x.com".into()];
            f.allowed_teams = vec!["acme".into()];
            f.allowed_emails = vec!["a@b@c".into()];
        });
        assert_eq!(f.problems().len(), 3);
    }

    #[test]
    fn identity_values_must_be_canonical() {
        let none = Filters::default();
        let padded = Identity { email: Some(" alice@example.com".into()), ..alice() };
        assert_eq!(authorize(&padded, [&none]), Err(Denial::EmailMalformed));
        let user = Identity { user: "alice\r\nX-Evil: 1".into(), ..alice() };
        assert_eq!(authorize(&user, [&none]), Err(Denial::NotCanonical("user name")));
        let sub = Identity { subject: " 1".into(), ..alice() };
        assert_eq!(authorize(&sub, [&none]), Err(Denial::NotCanonical("id")));
        assert_eq!(Denial::NotCanonical("id").reason(), "identity_not_canonical");
    }
}
