//! What a live session needs before its request goes on: nothing, a
//! refresh or re-validation at the provider ([`crate::gateway::refresh`]),
//! or to end because the current policy no longer lets its user in.
//!
//! [`check`] is the one per-request decision the proxy and forward-auth
//! make. Its common case is two integer compares (refresh and
//! re-validation not due) plus one more (the session was validated after
//! this config took effect, so it was judged by it). Only a session
//! validated before the current config (a reload, or a restart with a
//! changed `gateway.yaml`) is judged again from what it stores, once per
//! config: the verdict is cached by session id in the [`Verdicts`] of the
//! [`Gateway`], which a reload replaces.

use super::config::ProviderType;
use super::server::Gateway;
use super::session::SessionView;
use crate::access::{Denial, DomainProof, Identity, Membership, Principal, Proof};

/// Why a session goes to the provider before its request is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// The access token is about to expire and there is a refresh token.
    pub(crate) refresh: bool,
    /// The user must be re-checked at the provider and against the policy.
    pub(crate) revalidate: bool,
    /// The current policy cannot be judged from what the session stores
    /// (say a new Google Workspace domain rule: the session keeps no `hd`):
    /// re-validate now, and without a grace if the provider is unreachable.
    pub(crate) forced: bool,
}

/// The per-request decision. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Serve the request with the session as it is.
    Current,
    /// Renew the session first ([`crate::gateway::refresh::renew`]).
    Renew(Due),
    /// The current policy refuses the session's user: sign in again.
    SignOut,
}

/// Decides what a live session needs at `now`. See the module docs.
pub(crate) fn check(gw: &Gateway, view: &SessionView<'_>, now: u64) -> Check {
    let due = Due {
        refresh: view.refresh_due(now) && view.refresh_token.is_some(),
        revalidate: view.revalidation_due(now, gw.config.session.revalidate_seconds),
        forced: false,
    };
    if due.refresh || due.revalidate {
        // Renewing judges the user against the current policy anyway.
        return Check::Renew(due);
    }
    match gw.verdicts.judge(view, || stored_verdict(gw, view)) {
        Stored::Pass => Check::Current,
        Stored::Unknown => Check::Renew(Due { revalidate: true, forced: true, ..due }),
        Stored::Deny(reason) => {
            tracing::info!(
                provider = view.provider,
                user = view.user,
                reason,
                "the current policy refuses the session"
            );
            gw.metrics.revalidation("denied");
            gw.metrics.session_revoked("revalidation");
            Check::SignOut
        }
    }
}

fn stored_verdict(gw: &Gateway, view: &SessionView<'_>) -> Stored {
    let Some(provider) = gw.provider(view.provider) else {
        return Stored::Deny("provider_removed");
    };
    let principal = stored_principal(provider.config().provider_type, view);
    match gw.authorize(provider, &principal) {
        Ok(()) => Stored::Pass,
        Err(Denial::MembershipUnavailable(_) | Denial::WorkspaceMissing) => Stored::Unknown,
        Err(denial) => Stored::Deny(denial.reason()),
    }
}

/// The principal a session stands for, rebuilt from what it stores: its
/// user, subject, verified email (a session keeps only a verified one) and
/// groups, sorted back into the memberships of the provider's kind
/// (GitHub's groups are its orgs and `org/team` slugs; GitLab's count as
/// orgs too). What a session does not keep (Google's Workspace domain) is
/// unavailable, so a rule that needs it makes the verdict
/// [`Stored::Unknown`].
pub(crate) fn stored_principal(kind: ProviderType, view: &SessionView<'_>) -> Principal {
    let groups: Vec<String> = view.groups().map(str::to_owned).collect();
    let (groups, orgs, teams, domain_proof) = match kind {
        ProviderType::Github => {
            let (teams, orgs): (Vec<String>, Vec<String>) = groups.into_iter().partition(|g| g.contains('/'));
            (Membership::Unavailable, Membership::Known(orgs), Membership::Known(teams), DomainProof::Email)
        }
        ProviderType::Gitlab => {
            (Membership::Known(groups.clone()), Membership::Known(groups), Membership::Unavailable, DomainProof::Email)
        }
        ProviderType::Google => {
            (Membership::Known(groups), Membership::Unavailable, Membership::Unavailable, DomainProof::Workspace(None))
        }
        ProviderType::Oidc => {
            (Membership::Known(groups), Membership::Unavailable, Membership::Unavailable, DomainProof::Email)
        }
    };
    let identity = Identity {
        subject: view.subject.to_owned(),
        user: view.user.to_owned(),
        email: view.email.map(str::to_owned),
        email_verified: view.email.is_some(),
        domain_proof,
        groups,
        orgs,
        teams,
    };
    Principal { identity, provider: view.provider.to_owned(), proof: Proof::SignIn }
}

#[cfg(test)]
mod tests;
pub(crate) mod verdicts;

pub(crate) use verdicts::Stored;
