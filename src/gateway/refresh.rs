//! Refreshing a session's access token: one refresh per session at a
//! time, the user re-checked against the filters when the provider sends a
//! new profile.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::coalescer::RefreshFailure;
use super::providers::ProviderError;
use super::server::Gateway;
use super::session::{Present, Session, SessionStore, SessionView, now};
use super::upstream::identity::forwardable_groups;
use crate::access::{Principal, Proof};

/// What became of a session whose refresh was due.
pub(crate) enum Renewal {
    /// Refreshed: the new session record, whose cookies were written out.
    Renewed(Vec<u8>),
    /// The provider could not be reached, but the access token is still
    /// valid: go on with the current session.
    KeepCurrent,
    /// Refused, or the token has expired: the user must sign in again.
    SignInAgain,
}

/// Refreshes a session that is due and stores the result, writing its
/// cookies (replacing the `present` ones) into `out`. The one way the
/// proxy and forward-auth renew a session.
pub(crate) async fn renew(
    gw: &Gateway,
    view: &SessionView<'_>,
    present: Present,
    now: u64,
    out: &mut HeaderMap,
) -> Renewal {
    match refresh(gw, view).await {
        Ok(session) => {
            if let Err(e) = gw.sessions().save(&session, present, out).await {
                tracing::warn!(error = %e, "refreshed session not stored");
            }
            Renewal::Renewed(session.encode())
        }
        Err(RefreshFailure::Transient) if !view.access_expired(now) => Renewal::KeepCurrent,
        Err(_) => Renewal::SignInAgain,
    }
}

pub(crate) async fn refresh(gw: &Gateway, view: &SessionView<'_>) -> Result<Session, RefreshFailure> {
    let Some(refresh_token) = view.refresh_token else {
        return Err(RefreshFailure::Rejected);
    };
    // Keyed by the tokens being replaced: requests carrying the same cookie
    // share one refresh; the next refresh (new access token) is a new key.
    let mut hash = Sha256::new();
    hash.update(refresh_token.as_bytes());
    hash.update([0]);
    hash.update(view.access_token.as_bytes());
    let key: [u8; 32] = hash.finalize().into();
    let current = view.to_session();
    gw.refreshes.run(key, || refresh_once(gw, current)).await
}

pub(crate) async fn refresh_once(gw: &Gateway, mut session: Session) -> Result<Session, RefreshFailure> {
    let Some(provider) = gw.provider(&session.provider) else {
        return Err(RefreshFailure::Rejected);
    };
    let refresh_token = session.refresh_token.clone().unwrap_or_default();
    match provider.refresh(&refresh_token, &session.subject).await {
        Ok(refreshed) => {
            if let Some(profile) = refreshed.profile {
                let principal =
                    Principal { identity: profile.identity, provider: session.provider.clone(), proof: Proof::SignIn };
                if let Err(d) = gw.authorize(provider, &principal) {
                    tracing::info!(provider = provider.name(), user = %session.user, reason = d.reason(), "access revoked at refresh");
                    gw.metrics.refresh("denied");
                    return Err(RefreshFailure::Rejected);
                }
                let identity = principal.identity;
                session.email = identity.verified_email().ok().map(|e| e.to_string());
                session.groups = forwardable_groups(profile.groups, &identity.user);
                session.user = identity.user;
            }
            let now = now();
            session.access_token = refreshed.tokens.access_token;
            if let Some(rt) = refreshed.tokens.refresh_token {
                session.refresh_token = Some(rt);
            }
            let keep_id_token = super::providers::logout::keeps_id_token(gw.config.forward.id_token, provider.config());
            if let Some(id_token) = refreshed.tokens.id_token.filter(|_| keep_id_token) {
                session.id_token = Some(id_token);
            }
            session.access_issued_at = now;
            session.access_expires_at = refreshed.tokens.expires_in.map_or(0, |s| now.saturating_add(s));
            gw.metrics.refresh("success");
            tracing::debug!(provider = provider.name(), user = %session.user, "access token refreshed");
            Ok(session)
        }
        Err(e @ (ProviderError::Rejected { .. } | ProviderError::InvalidIdToken(_))) => {
            tracing::info!(provider = provider.name(), user = %session.user, error = %e, "refresh refused; sign-in required");
            gw.metrics.refresh("rejected");
            Err(RefreshFailure::Rejected)
        }
        Err(e) => {
            tracing::warn!(provider = provider.name(), error = %e, "refresh failed");
            gw.metrics.refresh("error");
            Err(RefreshFailure::Transient)
        }
    }
}
