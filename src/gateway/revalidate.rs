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

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::config::ProviderType;
use super::server::Gateway;
use super::session::{SESSION_ID_BYTES, SessionView, now};
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

/// What the session's stored identity is worth under the current policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// It passes.
    Pass,
    /// It is refused.
    Deny(&'static str),
    /// The policy needs data the session does not keep.
    Unknown,
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
    match gw.verdicts.judge(gw, view) {
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

/// Most cached verdicts before the cache starts over.
const MAX_VERDICTS: usize = 100_000;

/// Verdicts on stored identities under one config, by session id (and the
/// re-validation they come from). Built with the [`Gateway`].
pub(crate) struct Verdicts {
    /// When this config took effect (Unix seconds): a session validated
    /// later was judged by it.
    since: u64,
    cache: RwLock<HashMap<[u8; SESSION_ID_BYTES], (u64, Stored)>>,
}

impl Default for Verdicts {
    fn default() -> Self {
        Self::since(now())
    }
}

impl Verdicts {
    /// Verdicts for a config in effect since `since`.
    pub(crate) fn since(since: u64) -> Self {
        Self { since, cache: RwLock::default() }
    }

    /// Judges the session's stored identity under `gw`'s policy.
    pub(crate) fn judge(&self, gw: &Gateway, view: &SessionView<'_>) -> Stored {
        if view.validated_at > self.since {
            return Stored::Pass;
        }
        // Version-1 records have no id: judged every time, until their
        // re-validation gives them one.
        let cacheable = view.id != [0; SESSION_ID_BYTES];
        if cacheable {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&(validated_at, verdict)) = cache.get(&view.id)
                && validated_at == view.validated_at
            {
                return verdict;
            }
        }
        let verdict = stored_verdict(gw, view);
        if cacheable {
            self.remember(view.id, view.validated_at, verdict);
        }
        verdict
    }

    /// Records that session `id` passed a re-validation at `validated_at`
    /// under this config: needed only within the second the config took
    /// effect, which `judge` cannot tell from before it.
    pub(crate) fn passed(&self, id: [u8; SESSION_ID_BYTES], validated_at: u64) {
        if validated_at <= self.since && id != [0; SESSION_ID_BYTES] {
            self.remember(id, validated_at, Stored::Pass);
        }
    }

    fn remember(&self, id: [u8; SESSION_ID_BYTES], validated_at: u64, verdict: Stored) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_VERDICTS {
            cache.clear();
        }
        cache.insert(id, (validated_at, verdict));
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
