//! What the gateway tells the upstream (or the ingress, for forward-auth)
//! about the signed-in user: identity headers under the names the policy
//! chose, and the bearer credential.
//!
//! Whatever names are chosen are also stripped from what clients send
//! ([`IdentityHeaders::custom`], given to [`super::headers::sanitize`]),
//! so a name outside the built-in list (`X-Grafana-User`) cannot be spoofed
//! either.

use bytes::{BufMut, BytesMut};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::api::IdentityHeaderNames;
use crate::gateway::session::SessionView;

/// `X-Auth-Request-User`: the configured username claim, else the verified
/// email, else the stable subject.
pub static X_AUTH_REQUEST_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
/// `X-Auth-Request-User-Id`: the provider's stable, never reassigned account
/// id (`sub`; GitHub's numeric id). What an upstream should key accounts on.
pub static X_AUTH_REQUEST_USER_ID: HeaderName = HeaderName::from_static("x-auth-request-user-id");
/// `X-Auth-Request-Email`: the verified email, in the canonical form the
/// filters matched.
pub static X_AUTH_REQUEST_EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
/// `X-Auth-Request-Groups`: comma-separated, each group percent-encoded
/// (see [`encode_groups`]).
pub static X_AUTH_REQUEST_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");

/// Characters escaped in a group name: the separator, the escape character
/// itself and controls (non-ASCII is always escaped).
const GROUP_ESCAPES: &AsciiSet = &CONTROLS.add(b',').add(b'%');

/// The groups as one header value: comma-separated, each group
/// percent-encoded (RFC 3986 style) where it contains `,`, `%`, a control
/// character or non-ASCII. An upstream splits on `,` and percent-decodes
/// each part; a group called `dev,admin` arrives as `dev%2Cadmin`, never as
/// two groups.
pub fn encode_groups<'a>(groups: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let mut buf = BytesMut::with_capacity(64);
    for (i, g) in groups.enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        for piece in utf8_percent_encode(g, GROUP_ESCAPES) {
            buf.put_slice(piece.as_bytes());
        }
    }
    if buf.is_empty() {
        return None;
    }
    HeaderValue::from_maybe_shared(buf.freeze()).ok()
}

/// The groups worth keeping in a session: a group containing a control
/// character (CR, LF, NUL, …) could only break or split a header, so it is
/// dropped — with a log line that says why — and the others are kept.
pub fn forwardable_groups(groups: Vec<String>, user: &str) -> Vec<String> {
    let before = groups.len();
    let kept: Vec<String> = groups.into_iter().filter(|g| !g.is_empty() && !g.chars().any(char::is_control)).collect();
    if kept.len() != before {
        tracing::warn!(
            user,
            dropped = before - kept.len(),
            "group names that are empty or contain control characters were dropped from the session"
        );
    }
    kept
}

/// The header names identity goes out under, parsed once.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    user: HeaderName,
    user_id: HeaderName,
    email: HeaderName,
    groups: HeaderName,
    preferred_username: Option<HeaderName>,
    /// Names not in the built-in spoofable list, stripped from clients too.
    custom: Vec<HeaderName>,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            user: X_AUTH_REQUEST_USER.clone(),
            user_id: X_AUTH_REQUEST_USER_ID.clone(),
            email: X_AUTH_REQUEST_EMAIL.clone(),
            groups: X_AUTH_REQUEST_GROUPS.clone(),
            preferred_username: None,
            custom: Vec::new(),
        }
    }
}

impl IdentityHeaders {
    /// The names of `chosen`, defaults for the rest.
    pub fn new(chosen: Option<&IdentityHeaderNames>) -> Result<Self, String> {
        let Some(chosen) = chosen else { return Ok(Self::default()) };
        let parse = |field: &str, name: &Option<String>, default: &HeaderName| match name {
            None => Ok(default.clone()),
            Some(n) => HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("forward.headerNames.{field} {n:?} is not a header name")),
        };
        let mut out = Self {
            user: parse("user", &chosen.user, &X_AUTH_REQUEST_USER)?,
            user_id: parse("userId", &chosen.user_id, &X_AUTH_REQUEST_USER_ID)?,
            email: parse("email", &chosen.email, &X_AUTH_REQUEST_EMAIL)?,
            groups: parse("groups", &chosen.groups, &X_AUTH_REQUEST_GROUPS)?,
            preferred_username: chosen
                .preferred_username
                .as_ref()
                .map(|n| parse("preferredUsername", &Some(n.clone()), &X_AUTH_REQUEST_USER))
                .transpose()?,
            custom: Vec::new(),
        };
        let names = [&out.user, &out.user_id, &out.email, &out.groups].into_iter().chain(&out.preferred_username);
        let mut custom: Vec<HeaderName> =
            names.filter(|n| !super::headers::is_spoofable(n.as_str())).cloned().collect();
        custom.dedup();
        for reserved in ["authorization", "cookie", "host"] {
            if custom.iter().any(|n| n == reserved) {
                return Err(format!("forward.headerNames cannot use {reserved}"));
            }
        }
        out.custom = custom;
        Ok(out)
    }

    /// The chosen names that the built-in list does not already strip:
    /// what [`super::headers::sanitize`] must remove as well.
    pub fn custom(&self) -> &[HeaderName] {
        &self.custom
    }

    /// Sets the identity headers of `who`.
    pub fn add(&self, headers: &mut HeaderMap, who: &Who<'_>) {
        if let Ok(v) = HeaderValue::from_str(who.user) {
            if let Some(second) = &self.preferred_username {
                headers.insert(second.clone(), v.clone());
            }
            headers.insert(self.user.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(who.subject) {
            headers.insert(self.user_id.clone(), v);
        }
        if let Some(email) = who.email
            && let Ok(v) = HeaderValue::from_str(email)
        {
            headers.insert(self.email.clone(), v);
        }
        let groups = match who.groups {
            WhoGroups::Session(view) => encode_groups(view.groups()),
            WhoGroups::List(list) => encode_groups(list.iter().map(String::as_str)),
        };
        if let Some(v) = groups {
            headers.insert(self.groups.clone(), v);
        }
    }
}

/// Whom the identity headers describe: a session's user or a machine
/// caller's identity, borrowed.
pub struct Who<'a> {
    /// `X-Auth-Request-User`.
    pub user: &'a str,
    /// `X-Auth-Request-User-Id`.
    pub subject: &'a str,
    /// `X-Auth-Request-Email` (verified).
    pub email: Option<&'a str>,
    /// `X-Auth-Request-Groups`.
    pub groups: WhoGroups<'a>,
}

/// Where [`Who`]'s groups are read from.
#[derive(Clone, Copy)]
pub enum WhoGroups<'a> {
    /// A session record's encoded list.
    Session(&'a SessionView<'a>),
    /// A list in hand.
    List(&'a [String]),
}

impl<'a> Who<'a> {
    /// The user of a session.
    pub fn session(view: &'a SessionView<'a>) -> Self {
        Self { user: view.user, subject: view.subject, email: view.email, groups: WhoGroups::Session(view) }
    }

    /// A machine caller's identity.
    pub fn identity(identity: &'a crate::access::Identity) -> Self {
        Self {
            user: &identity.user,
            subject: &identity.subject,
            email: identity.email.as_deref().filter(|_| identity.email_verified),
            groups: WhoGroups::List(identity.groups.values()),
        }
    }
}

/// `Authorization: Bearer <token>`, marked sensitive.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut buf = BytesMut::with_capacity(7 + token.len());
    buf.put_slice(b"Bearer ");
    buf.put_slice(token.as_bytes());
    let mut v = HeaderValue::from_maybe_shared(buf.freeze()).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Which of the user's tokens goes upstream as `Authorization: Bearer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserToken {
    /// None of them.
    Neither,
    /// The OAuth2 access token.
    Access,
    /// The OpenID Connect ID token (`forward.idToken`).
    Id,
}

impl UserToken {
    /// From the policy's `forward.idToken` and whether the route forwards
    /// the user's token at all.
    pub fn new(id_token: bool, forwarded: bool) -> Self {
        match (forwarded, id_token) {
            (false, _) => Self::Neither,
            (true, false) => Self::Access,
            (true, true) => Self::Id,
        }
    }
}

/// The gateway's identity headers for `who`, under `names` (when
/// `identity`), and the user's bearer `token` for the upstream.
pub fn add_identity(
    headers: &mut HeaderMap,
    names: &IdentityHeaders,
    who: &Who<'_>,
    identity: bool,
    token: Option<&str>,
) {
    if identity {
        names.add(headers, who);
    }
    if let Some(v) = token.and_then(bearer) {
        headers.insert(AUTHORIZATION, v);
    }
}

impl UserToken {
    /// The token of `session` this choice sends upstream.
    pub fn of<'a>(self, session: &SessionView<'a>) -> Option<&'a str> {
        match self {
            Self::Neither => None,
            Self::Access => Some(session.access_token),
            Self::Id => session.id_token,
        }
    }
}

#[cfg(test)]
mod tests;
