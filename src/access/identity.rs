//! What a provider told the gateway about a user, and why a user is turned
//! away.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Email;

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
    pub(super) fn any(&self, mut allowed: impl FnMut(&str) -> bool) -> Option<bool> {
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

/// What proves that an account belongs to an email domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DomainProof {
    /// The verified email address's domain.
    #[default]
    Email,
    /// The verified email's domain AND the organization domain the provider
    /// puts the account in (Google Workspace's `hd`): an address alone does
    /// not prove membership, since anyone can open a consumer Google account
    /// for an address they receive mail at. `None`: the account has no
    /// organization, so no domain rule can pass.
    Workspace(Option<String>),
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
    /// What an allowed-domain rule must see besides the email.
    #[serde(default)]
    pub domain_proof: DomainProof,
    /// OIDC groups claim, or GitLab group paths.
    pub groups: Membership,
    /// GitHub organizations (logins).
    pub orgs: Membership,
    /// GitHub teams as `org/team-slug`.
    pub teams: Membership,
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
    /// A domain rule applies but the account belongs to no organization
    /// domain ([`DomainProof::Workspace`] without one).
    #[error("your Google account does not belong to a Google Workspace organization")]
    WorkspaceMissing,
    /// The account's organization domain is not allowed.
    #[error("the Google Workspace domain {0} is not allowed")]
    WorkspaceNotAllowed(String),
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
            Self::WorkspaceMissing => "hosted_domain_missing",
            Self::WorkspaceNotAllowed(_) => "hosted_domain_not_allowed",
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
