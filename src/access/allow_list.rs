//! Evaluation of one [`AllowList`] level against a user. A list that is
//! empty does not restrict; every non-empty list must match; data a list
//! needs but the provider could not deliver denies.

use super::{Denial, DomainProof, Email, Identity, Membership, domain_matches, is_valid_domain_pattern};
use crate::api::AllowList;

impl AllowList {
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
            if !self.allowed_domains.is_empty()
                && let DomainProof::Workspace(workspace) = &identity.domain_proof
            {
                let workspace = workspace.as_deref().filter(|w| !w.is_empty()).ok_or(Denial::WorkspaceMissing)?;
                if !self.allowed_domains.iter().any(|p| domain_matches(workspace, p)) {
                    return Err(Denial::WorkspaceNotAllowed(workspace.to_owned()));
                }
            }
            if !self.allowed_emails.is_empty() && !self.allowed_emails.iter().any(|e| email.eq_address(e)) {
                return Err(Denial::EmailNotAllowed);
            }
        }
        let any_case = |a: &String, v: &str| a.eq_ignore_ascii_case(v);
        member_of(&self.allowed_orgs, &identity.orgs, any_case, "organization membership", Denial::OrgNotAllowed)?;
        member_of(&self.allowed_teams, &identity.teams, any_case, "team membership", Denial::TeamNotAllowed)?;
        member_of(&self.allowed_groups, &identity.groups, |a, v| a == v, "group membership", Denial::GroupNotAllowed)
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

    /// The one domain users of these levels must have, when exactly one
    /// exact domain is allowed across them (a hint for the provider's
    /// account chooser, such as Google's `hd`).
    pub fn single_domain<'a>(levels: impl IntoIterator<Item = &'a AllowList>) -> Option<&'a str> {
        let mut domains = levels.into_iter().flat_map(|l| &l.allowed_domains);
        match (domains.next(), domains.next()) {
            (Some(only), None) if !only.starts_with('.') => Some(only),
            _ => None,
        }
    }
}

/// A membership list: passes when `allowed` is empty or the user has one
/// of its values; denies when the provider could not say.
fn member_of(
    allowed: &[String],
    membership: &Membership,
    same: impl Fn(&String, &str) -> bool,
    what: &'static str,
    not_allowed: Denial,
) -> Result<(), Denial> {
    if allowed.is_empty() {
        return Ok(());
    }
    match membership.any(|value| allowed.iter().any(|a| same(a, value))) {
        Some(true) => Ok(()),
        Some(false) => Err(not_allowed),
        None => Err(Denial::MembershipUnavailable(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_identity::alice;
    use super::*;

    fn list(f: impl FnOnce(&mut AllowList)) -> AllowList {
        let mut x = AllowList::default();
        f(&mut x);
        x
    }

    #[test]
    fn an_empty_list_restricts_nothing() {
        assert!(AllowList::default().is_empty());
        assert_eq!(AllowList::default().check(&alice()), Ok(()));
        assert!(!list(|f| f.allowed_emails = vec!["a@b.c".into()]).is_empty());
    }

    #[test]
    fn domains_exact_or_suffix() {
        let exact = list(|f| f.allowed_domains = vec!["example.com".into()]);
        assert_eq!(exact.check(&alice()), Ok(()));
        let mut sub = alice();
        sub.email = Some("alice@eu.example.com".into());
        assert_eq!(exact.check(&sub), Err(Denial::DomainNotAllowed("eu.example.com".into())));
        let suffix = list(|f| f.allowed_domains = vec![".example.com".into()]);
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
    fn a_domain_rule_needs_a_verified_email() {
        let f = list(|f| f.allowed_domains = vec!["example.com".into()]);
        let mut bob = alice();
        bob.email_verified = false;
        assert_eq!(f.check(&bob), Err(Denial::EmailUnverified));
        let mut nomail = alice();
        nomail.email = None;
        assert_eq!(f.check(&nomail), Err(Denial::EmailMissing));
    }

    #[test]
    fn a_workspace_account_must_prove_its_domain_twice() {
        let f = list(|f| f.allowed_domains = vec![".example.com".into(), "example.com".into()]);
        let workspace =
            |hd: Option<&str>| Identity { domain_proof: DomainProof::Workspace(hd.map(Into::into)), ..alice() };
        assert_eq!(f.check(&workspace(Some("example.com"))), Ok(()));
        assert_eq!(f.check(&workspace(Some("eu.example.com"))), Ok(()));
        assert_eq!(f.check(&workspace(None)), Err(Denial::WorkspaceMissing));
        assert_eq!(f.check(&workspace(Some(""))), Err(Denial::WorkspaceMissing));
        assert_eq!(f.check(&workspace(Some("other.com"))), Err(Denial::WorkspaceNotAllowed("other.com".into())));
        assert_eq!(Denial::WorkspaceMissing.reason(), "hosted_domain_missing");
        // No domain rule: the organization is not looked at.
        assert_eq!(AllowList::default().check(&workspace(None)), Ok(()));
        let groups = list(|f| f.allowed_groups = vec!["sre".into()]);
        assert_eq!(groups.check(&workspace(None)), Ok(()));
    }

    #[test]
    fn emails_case_insensitive() {
        let f = list(|f| f.allowed_emails = vec!["ALICE@example.com".into()]);
        assert_eq!(f.check(&alice()), Ok(()));
        let g = list(|f| f.allowed_emails = vec!["bob@example.com".into()]);
        assert_eq!(g.check(&alice()), Err(Denial::EmailNotAllowed));
    }

    #[test]
    fn orgs_teams_groups() {
        let orgs = list(|f| f.allowed_orgs = vec!["acme".into()]);
        assert_eq!(orgs.check(&alice()), Ok(()));
        let other = list(|f| f.allowed_orgs = vec!["globex".into()]);
        assert_eq!(other.check(&alice()), Err(Denial::OrgNotAllowed));
        let teams = list(|f| f.allowed_teams = vec!["ACME/platform".into()]);
        assert_eq!(teams.check(&alice()), Ok(()));
        let wrong_team = list(|f| f.allowed_teams = vec!["acme/plat".into()]);
        assert_eq!(wrong_team.check(&alice()), Err(Denial::TeamNotAllowed));
        let groups = list(|f| f.allowed_groups = vec!["sre".into()]);
        assert_eq!(groups.check(&alice()), Ok(()));
        let case = list(|f| f.allowed_groups = vec!["SRE".into()]);
        assert_eq!(case.check(&alice()), Err(Denial::GroupNotAllowed));
    }

    #[test]
    fn unavailable_membership_denies_only_when_needed() {
        let mut x = alice();
        x.teams = Membership::Unavailable;
        x.orgs = Membership::Unavailable;
        x.groups = Membership::Unavailable;
        assert_eq!(AllowList::default().check(&x), Ok(()));
        for f in [
            list(|f| f.allowed_teams = vec!["acme/platform".into()]),
            list(|f| f.allowed_orgs = vec!["acme".into()]),
            list(|f| f.allowed_groups = vec!["sre".into()]),
        ] {
            assert!(matches!(f.check(&x), Err(Denial::MembershipUnavailable(_))));
        }
    }

    #[test]
    fn every_list_of_a_level_must_pass() {
        let both = list(|f| {
            f.allowed_domains = vec!["example.com".into()];
            f.allowed_orgs = vec!["globex".into()];
        });
        assert_eq!(both.check(&alice()), Err(Denial::OrgNotAllowed));
    }

    #[test]
    fn denial_messages_never_list_rules() {
        let f = list(|f| f.allowed_domains = vec!["secret-partner.com".into()]);
        let msg = f.check(&alice()).unwrap_err().to_string();
        assert!(msg.contains("example.com"));
        assert!(!msg.contains("secret-partner"));
    }

    #[test]
    fn problems_found() {
        let f = list(|f| {
            f.allowed_domains = vec!["*.x.com".into()];
            f.allowed_teams = vec!["acme".into()];
            f.allowed_emails = vec!["a@b@c".into()];
        });
        assert_eq!(f.problems().len(), 3);
    }

    #[test]
    fn a_single_exact_domain_is_a_hint() {
        let one = list(|f| f.allowed_domains = vec!["example.com".into()]);
        let none = AllowList::default();
        assert_eq!(AllowList::single_domain([&none, &one]), Some("example.com"));
        let suffix = list(|f| f.allowed_domains = vec![".example.com".into()]);
        assert_eq!(AllowList::single_domain([&suffix]), None);
        assert_eq!(AllowList::single_domain([&one, &one]), None);
        assert_eq!(AllowList::single_domain([&none]), None);
    }
}
