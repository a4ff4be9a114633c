//! Signing in: `/oauth2/start` and `/oauth2/callback`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;

use crate::access::{Principal, Proof};
use crate::gateway::error::Error;
use crate::gateway::pages;
use crate::gateway::providers::{Profile, SignedIn, Tokens, logout};
use crate::gateway::server::{Gateway, MAX_FLOWS, found};
use crate::gateway::session::flow::{FLOW_TTL, LoginFlow};
use crate::gateway::session::{CookieSettings, Session, SessionStore, now};
use crate::gateway::upstream::identity::forwardable_groups;

/// Query of `/oauth2/start`.
#[derive(Deserialize)]
pub struct StartQuery {
    provider: Option<String>,
    rd: Option<String>,
    prompt: Option<String>,
}

/// Prompts passed through to the provider.
pub(crate) fn allowed_prompt(prompt: Option<&str>) -> Option<&str> {
    prompt.filter(|p| matches!(*p, "login" | "select_account" | "consent"))
}

pub(crate) async fn start(State(gw): State<Arc<Gateway>>, Query(q): Query<StartQuery>, headers: HeaderMap) -> Response {
    let rd = gw.validated_rd(q.rd.as_deref());
    let prompt = allowed_prompt(q.prompt.as_deref());
    let provider = match q.provider.as_deref().filter(|p| !p.is_empty()) {
        Some(name) => match gw.provider(name) {
            Some(p) => p,
            None => {
                gw.metrics.login("unknown", Error::UnknownProvider.reason());
                return gw.error_page(&Error::UnknownProvider);
            }
        },
        None if gw.providers.len() == 1 => &gw.providers[0],
        None => {
            let choices = gw
                .providers
                .iter()
                .map(|p| pages::Choice {
                    name: p.name().to_owned(),
                    shown: p.config().shown_name(),
                    kind: p.config().provider_type,
                    href: gw.start_href(Some(p.name()), Some(&rd), prompt),
                })
                .collect::<Vec<_>>();
            return pages::chooser(&gw.look(), &choices);
        }
    };
    let mut flow = LoginFlow::new(provider.name(), rd, provider.uses_nonce(), now());
    let mut response = Response::new(axum::body::Body::empty());
    let flow_cookie = gw.cookies.flow_name(&flow.state);
    let sealed = gw.keyring().seal(flow_cookie.as_bytes(), &flow.encode());
    if gw.cookies.write_flow(&flow_cookie, &sealed, FLOW_TTL, response.headers_mut()).is_err() {
        // A deep link too long for the flow cookie would make this login
        // impossible to finish: land on the home page instead.
        tracing::info!(rd_len = flow.rd.len(), "post-login target too long for the flow cookie; using the base path");
        flow.rd = gw.paths.home.clone();
        let sealed = gw.keyring().seal(flow_cookie.as_bytes(), &flow.encode());
        if let Err(e) = gw.cookies.write_flow(&flow_cookie, &sealed, FLOW_TTL, response.headers_mut()) {
            return gw.error_page(&Error::from(e));
        }
    }
    expire_old_flows(&gw, &headers, response.headers_mut());
    let location = provider.authorization_url(&flow, prompt, gw.domain_hint(provider));
    let mut redirect = found(location.as_str());
    for v in response.headers().get_all(header::SET_COOKIE) {
        redirect.headers_mut().append(header::SET_COOKIE, v.clone());
    }
    tracing::debug!(provider = provider.name(), "login started");
    pages::harden(redirect)
}

/// Keeps at most [`MAX_FLOWS`] login attempts per browser: expires the
/// oldest of the flow cookies the request carried (and expired ones), so
/// repeated visits to `/oauth2/start` cannot pile cookies up until the
/// browser's header limit locks the user out. Cookies this gateway cannot
/// decrypt are not its own and are left alone.
pub(crate) fn expire_old_flows(gw: &Gateway, headers: &HeaderMap, out: &mut HeaderMap) {
    let now = now();
    let mut open: Vec<(u64, &str)> = Vec::new();
    for (name, sealed) in gw.cookies.flows(headers) {
        let Some(flow) = gw.keyring().open(name.as_bytes(), sealed).and_then(|p| LoginFlow::decode(&p).ok()) else {
            continue;
        };
        if flow.is_fresh(now) {
            open.push((flow.created_at, name));
        } else {
            gw.cookies.clear_flow(name, out);
        }
    }
    if open.len() >= MAX_FLOWS {
        open.sort_unstable();
        for (_, name) in &open[..=open.len() - MAX_FLOWS] {
            gw.cookies.clear_flow(name, out);
        }
    }
}

/// Query of `/oauth2/callback`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

pub(crate) async fn callback(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        gw.metrics.login("unknown", Error::FlowMissing.reason());
        return gw.error_page(&Error::FlowMissing);
    };
    let flow_cookie = gw.cookies.flow_name(state);
    let (provider_label, result) = match load_flow(&gw, &headers, &flow_cookie, state) {
        Err(e) => ("unknown".to_owned(), Err(e)),
        Ok(flow) => (flow.provider.clone(), finish_login(&gw, &flow, &q, &headers).await),
    };
    let mut response = match result {
        Ok(response) => {
            gw.metrics.login(&provider_label, "success");
            response
        }
        Err(e) => {
            gw.metrics.login(&provider_label, e.reason());
            match &e {
                Error::Denied(_) | Error::DeniedAs(_) => {
                    tracing::info!(provider = %provider_label, reason = e.reason(), "sign-in denied")
                }
                Error::SignIn(inner) => {
                    tracing::warn!(provider = %provider_label, error = %inner, "sign-in failed")
                }
                _ => tracing::info!(provider = %provider_label, error = %e, "sign-in refused"),
            }
            gw.error_page(&e)
        }
    };
    if CookieSettings::read(&headers, &flow_cookie).is_some() {
        gw.cookies.clear_flow(&flow_cookie, response.headers_mut());
    }
    pages::harden(response)
}

pub(crate) fn load_flow(gw: &Gateway, headers: &HeaderMap, flow_cookie: &str, state: &str) -> Result<LoginFlow, Error> {
    let sealed = CookieSettings::read(headers, flow_cookie).ok_or(Error::FlowMissing)?;
    let plaintext = gw.keyring().open(flow_cookie.as_bytes(), sealed).ok_or(Error::FlowMissing)?;
    let flow = LoginFlow::decode(&plaintext).map_err(|_| Error::FlowMissing)?;
    if !flow.state_matches(state) {
        return Err(Error::StateMismatch);
    }
    if !flow.is_fresh(now()) {
        return Err(Error::FlowExpired);
    }
    Ok(flow)
}

pub(crate) async fn finish_login(
    gw: &Gateway,
    flow: &LoginFlow,
    q: &CallbackQuery,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let provider = gw.provider(&flow.provider).ok_or(Error::UnknownProvider)?;
    if let Some(error) = &q.error {
        // Only the standard code, and only if it looks like one.
        let code: String = error.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').take(64).collect();
        return Err(Error::ProviderReturned(if code.is_empty() { "error".into() } else { code }));
    }
    if !provider.accepts_issuer_param(q.iss.as_deref()) {
        return Err(Error::IssuerMismatch);
    }
    let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or(Error::MissingCode)?;
    let SignedIn { profile: Profile { identity, groups }, mut tokens } = provider.sign_in(code, flow).await?;
    let idp_sid = tokens.id_token.as_deref().and_then(logout::id_token_sid);
    if !logout::keeps_id_token(gw.config.forward.id_token, provider.config()) {
        // Cookies stay small unless the ID token is forwarded or needed
        // as the end-session `id_token_hint`.
        tokens.id_token = None;
    }
    let principal = Principal { identity, provider: provider.name().to_owned(), proof: Proof::SignIn };
    if let Err(denial) = gw.authorize(provider, &principal) {
        tracing::info!(provider = provider.name(), user = %principal.identity.user, reason = denial.reason(), "access denied");
        let who = crate::gateway::error::DeniedAs {
            denial,
            user: principal.identity.user.clone(),
            provider: principal.provider.clone(),
        };
        return Err(Error::DeniedAs(Box::new(who)));
    }
    let now = now();
    let session = Session { idp_sid, ..new_session(principal, groups, tokens, now, gw.config.session.ttl_seconds) };
    tracing::info!(provider = provider.name(), user = %session.user, "signed in");
    let (_, present) = gw.cookies.read_session(headers);
    let target = gw.validated_rd(Some(&flow.rd));
    let mut response = found(&target);
    gw.sessions().save(&session, present, response.headers_mut()).await?;
    Ok(response)
}

/// The session of a principal just admitted by an interactive sign-in.
pub(crate) fn new_session(principal: Principal, groups: Vec<String>, tokens: Tokens, now: u64, ttl: u64) -> Session {
    let Principal { identity, provider, .. } = principal;
    Session {
        id: crate::gateway::session::new_session_id(),
        issued_at: now,
        validated_at: now,
        idp_sid: None,
        provider,
        // The canonical form the filters matched, never the raw claim.
        email: identity.verified_email().ok().map(|e| e.to_string()),
        groups: forwardable_groups(groups, &identity.user),
        subject: identity.subject,
        user: identity.user,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_issued_at: now,
        access_expires_at: tokens.expires_in.map_or(0, |s| now.saturating_add(s)),
        expires_at: now.saturating_add(ttl),
        id_token: tokens.id_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_allow_listed() {
        assert_eq!(allowed_prompt(Some("login")), Some("login"));
        assert_eq!(allowed_prompt(Some("none")), None);
        assert_eq!(allowed_prompt(Some("login&x=y")), None);
    }
}
