//! Renewing a session: refreshing its access token and re-validating its
//! user at the provider and against the current policy, as one path with
//! one provider round per session at a time.
//!
//! - A due refresh uses the refresh token; when the provider sends a new
//!   ID token, the user is re-checked with it.
//! - A due re-validation (`session.revalidateSeconds` after the last one)
//!   refreshes too when the provider is OpenID Connect and there is a
//!   refresh token, then re-reads the profile: the refreshed ID token, else
//!   userinfo (OIDC), or the user, emails, orgs and teams (GitHub, with the
//!   session's access token). The user must pass [`Gateway::authorize`]
//!   with the current config; then the session's user, email and groups
//!   are updated and `validated_at` is now.
//! - A clear refusal (`invalid_grant`, a rejected ID token, 401 from the
//!   API) or a denial ends the session at once. A provider that cannot be
//!   reached (network, 5xx, timeout) keeps the session working until
//!   `validated_at + revalidateSeconds + revalidateGraceSeconds`; after
//!   that it fails closed.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::coalescer::RefreshFailure;
use super::providers::{Profile, Provider, ProviderError, Tokens};
use super::revalidate::{Due, stored_principal};
use super::server::Gateway;
use super::session::{Present, Session, SessionStore, SessionView};
use super::upstream::identity::forwardable_groups;
use crate::access::{Principal, Proof};

/// What became of a session that was due.
pub(crate) enum Renewal {
    /// Renewed: the new session record, whose cookies were written out.
    Renewed(Vec<u8>),
    /// The provider could not be reached, but the access token is still
    /// valid and any re-validation within its grace: go on with the
    /// current session.
    KeepCurrent,
    /// Refused, denied, out of grace, or the token has expired: the user
    /// must sign in again.
    SignInAgain,
}

/// Renews a session that is `due` and stores the result, writing its
/// cookies (replacing the `present` ones) into `out`. The one way the
/// proxy and forward-auth renew a session.
pub(crate) async fn renew(
    gw: &Gateway,
    view: &SessionView<'_>,
    due: Due,
    present: Present,
    now: u64,
    out: &mut HeaderMap,
) -> Renewal {
    match run(gw, view, due, now).await {
        Ok(session) => {
            if let Err(e) = gw.sessions().save(&session, present, out).await {
                tracing::warn!(error = %e, "renewed session not stored");
            }
            Renewal::Renewed(session.encode())
        }
        // A held failure may be a few seconds old: the grace is judged now.
        Err(RefreshFailure::Transient) if !view.access_expired(now) && within_grace(gw, view, due, now) => {
            Renewal::KeepCurrent
        }
        Err(_) => Renewal::SignInAgain,
    }
}

/// Renews through the gateway's coalescer: requests carrying the same
/// cookie share one provider round.
pub(crate) async fn run(gw: &Gateway, view: &SessionView<'_>, due: Due, now: u64) -> Result<Session, RefreshFailure> {
    // Keyed by what the renewal replaces: the session, its last
    // re-validation and its tokens. The next renewal is a new key.
    let mut hash = Sha256::new();
    hash.update(view.id);
    hash.update(view.validated_at.to_be_bytes());
    hash.update(view.refresh_token.unwrap_or_default().as_bytes());
    hash.update([0]);
    hash.update(view.access_token.as_bytes());
    let key: [u8; 32] = hash.finalize().into();
    let current = view.to_session();
    gw.refreshes.run(key, || renew_once(gw, current, due, now)).await
}

/// What one provider round brought.
struct Fetched {
    /// New tokens, when the session was refreshed.
    tokens: Option<Tokens>,
    /// The user's current profile, when the provider gave one.
    profile: Option<Profile>,
}

/// One provider round for `session`, and the verdict on it.
pub(crate) async fn renew_once(gw: &Gateway, session: Session, due: Due, now: u64) -> Result<Session, RefreshFailure> {
    let Some(provider) = gw.provider(&session.provider) else {
        // The provider left the config.
        if due.revalidate {
            gw.metrics.revalidation("denied");
            gw.metrics.session_revoked("revalidation");
        }
        return Err(RefreshFailure::Rejected);
    };
    match fetch(provider, &session, due).await {
        Ok(fetched) => apply(gw, provider, session, fetched, due, now),
        Err(e) => Err(failure(gw, provider, &session, due, now, &e)),
    }
}

async fn fetch(provider: &Provider, session: &Session, due: Due) -> Result<Fetched, ProviderError> {
    // GitHub OAuth tokens rarely expire and a refresh tells nothing about
    // the user there: only a due refresh uses the token endpoint.
    let refresh_token = session
        .refresh_token
        .as_deref()
        .filter(|_| due.refresh || (due.revalidate && matches!(provider, Provider::Oidc(_))));
    let (tokens, mut profile) = match refresh_token {
        Some(rt) => {
            let refreshed = provider.refresh(rt, &session.subject).await?;
            (Some(refreshed.tokens), refreshed.profile)
        }
        None => (None, None),
    };
    if due.revalidate && profile.is_none() {
        let token = tokens.as_ref().map_or(session.access_token.as_str(), |t| t.access_token.as_str());
        profile = provider.current_profile(token, &session.subject).await?;
    }
    Ok(Fetched { tokens, profile })
}

fn apply(
    gw: &Gateway,
    provider: &Provider,
    mut session: Session,
    fetched: Fetched,
    due: Due,
    now: u64,
) -> Result<Session, RefreshFailure> {
    let fresh = fetched.profile.is_some();
    let principal = match fetched.profile {
        Some(profile) => {
            let principal =
                Principal { identity: profile.identity, provider: session.provider.clone(), proof: Proof::SignIn };
            Some((principal, Some(profile.groups)))
        }
        // The provider has no way to describe the user again (no ID token
        // with the refresh, no userinfo): judge what the session stores.
        None if due.revalidate => {
            let record = session.encode();
            let view = SessionView::decode(&record).expect("just encoded");
            Some((stored_principal(provider.config().provider_type, &view), None))
        }
        None => None,
    };
    if let Some((principal, groups)) = principal {
        if let Err(d) = gw.authorize(provider, &principal) {
            tracing::info!(provider = provider.name(), user = %session.user, reason = d.reason(), fresh, "access revoked at re-validation");
            if due.revalidate {
                gw.metrics.revalidation("denied");
                gw.metrics.session_revoked("revalidation");
            } else {
                gw.metrics.refresh("denied");
            }
            return Err(RefreshFailure::Rejected);
        }
        if let Some(groups) = groups {
            let identity = principal.identity;
            session.email = identity.verified_email().ok().map(|e| e.to_string());
            session.groups = forwardable_groups(groups, &identity.user);
            session.user = identity.user;
        }
        session.validated_at = now;
        gw.verdicts.passed(session.id, now);
        if due.revalidate {
            gw.metrics.revalidation("passed");
            tracing::debug!(provider = provider.name(), user = %session.user, fresh, "session re-validated");
        }
    }
    if let Some(tokens) = fetched.tokens {
        session.access_token = tokens.access_token;
        if let Some(rt) = tokens.refresh_token {
            session.refresh_token = Some(rt);
        }
        let keep_id_token = super::providers::logout::keeps_id_token(gw.config.forward.id_token, provider.config());
        if let Some(id_token) = tokens.id_token.filter(|_| keep_id_token) {
            session.id_token = Some(id_token);
        }
        session.access_issued_at = now;
        session.access_expires_at = tokens.expires_in.map_or(0, |s| now.saturating_add(s));
        gw.metrics.refresh("success");
        tracing::debug!(provider = provider.name(), user = %session.user, "access token refreshed");
    }
    Ok(session)
}

/// Whether a session whose re-validation (if `due`) failed transiently may
/// still go on at `now`.
fn within_grace(gw: &Gateway, view: &SessionView<'_>, due: Due, now: u64) -> bool {
    !due.revalidate || (!due.forced && now < grace_ends(gw, view.validated_at))
}

/// When a session last validated at `validated_at` stops being let in
/// while its provider cannot be reached.
fn grace_ends(gw: &Gateway, validated_at: u64) -> u64 {
    let settings = &gw.config.session;
    validated_at.saturating_add(settings.revalidate_seconds).saturating_add(settings.revalidate_grace_seconds)
}

/// Classifies a failed provider round: a refusal ends the session; trouble
/// reaching the provider is transient, within a re-validation's grace.
fn failure(
    gw: &Gateway,
    provider: &Provider,
    session: &Session,
    due: Due,
    now: u64,
    e: &ProviderError,
) -> RefreshFailure {
    let refused = matches!(e, ProviderError::Rejected { .. } | ProviderError::InvalidIdToken(_));
    if due.refresh {
        gw.metrics.refresh(if refused { "rejected" } else { "error" });
    }
    if refused {
        tracing::info!(provider = provider.name(), user = %session.user, error = %e, "the provider refused the session; sign-in required");
        if due.revalidate {
            gw.metrics.revalidation("denied");
            gw.metrics.session_revoked("revalidation");
        }
        return RefreshFailure::Rejected;
    }
    if !due.revalidate {
        tracing::warn!(provider = provider.name(), error = %e, "refresh failed");
        return RefreshFailure::Transient;
    }
    let grace_ends = grace_ends(gw, session.validated_at);
    if !due.forced && now < grace_ends {
        tracing::warn!(provider = provider.name(), error = %e, grace_left = grace_ends - now, "re-validation failed; the session goes on within its grace");
        gw.metrics.revalidation("error");
        RefreshFailure::Transient
    } else {
        tracing::warn!(provider = provider.name(), user = %session.user, error = %e, "re-validation failed past its grace; sign-in required");
        gw.metrics.revalidation("failed_closed");
        gw.metrics.session_revoked("revalidation");
        RefreshFailure::Rejected
    }
}
