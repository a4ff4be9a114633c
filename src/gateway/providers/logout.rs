//! Ending the session at the provider when a user signs out: revoking the
//! refresh token (RFC 7009) and the end-session redirect (OpenID Connect
//! RP-Initiated Logout 1.0). Back-channel logout tokens, the provider
//! ending sessions here, are in [`super::logout_token`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use url::Url;

use super::HttpClient;
use crate::gateway::config::ProviderConfig;

/// How long sign-out waits for the provider to revoke a token. Revocation
/// is best effort: a slow or failing provider must not keep anyone signed
/// in locally.
pub const REVOCATION_TIMEOUT: Duration = Duration::from_secs(3);

/// How a revocation attempt ended; a metric-safe label, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The provider answered 200 (RFC 7009 §2.2: also for unknown tokens).
    Revoked,
    /// The provider has no revocation endpoint.
    Unsupported,
    /// The provider answered an error status.
    Refused(u16),
    /// The provider could not be reached in time.
    Unreachable,
}

impl Revocation {
    /// Label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Unsupported => "unsupported",
            Self::Refused(_) => "refused",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Which token a session holds for revocation (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The refresh token: revoking it ends the grant.
    Refresh,
    /// The access token, for sessions without a refresh token.
    Access,
}

/// Revokes `token` at the provider's revocation endpoint, with the
/// client's credentials as HTTP Basic (RFC 6749 §2.3.1: each part
/// form-urlencoded first), within [`REVOCATION_TIMEOUT`].
pub async fn revoke(http: &HttpClient, provider: &ProviderConfig, token: &str, kind: TokenKind) -> Revocation {
    let hint = match kind {
        TokenKind::Refresh => "refresh_token",
        TokenKind::Access => "access_token",
    };
    let Some(endpoint) = &provider.revocation_url else {
        return Revocation::Unsupported;
    };
    let request = http
        .reqwest()
        .post(endpoint.clone())
        .header(reqwest::header::AUTHORIZATION, basic_auth(&provider.client_id, provider.client_secret.expose()))
        .form(&[("token", token), ("token_type_hint", hint)])
        .send();
    match tokio::time::timeout(REVOCATION_TIMEOUT, request).await {
        Ok(Ok(response)) if response.status().is_success() => Revocation::Revoked,
        Ok(Ok(response)) => Revocation::Refused(response.status().as_u16()),
        Ok(Err(_)) | Err(_) => Revocation::Unreachable,
    }
}

fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(client_id), encode(client_secret))))
}

/// Where to send the browser to end its session at the provider: the
/// end-session endpoint (its own query kept) with `client_id`,
/// `post_logout_redirect_uri` (the gateway's signed-out page, one fixed URL
/// to register at the provider), the ID token as `id_token_hint` when the
/// session kept it, and `state`: the already validated `rd`, which the
/// signed-out page validates again before following it.
pub fn end_session_url(
    endpoint: &Url,
    client_id: &str,
    id_token_hint: Option<&str>,
    post_logout_redirect_uri: &str,
    state: Option<&str>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(hint) = id_token_hint {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("client_id", client_id);
        q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    url
}

/// Whether sessions keep the ID token: to forward it (`forward.idToken`),
/// or as the `id_token_hint` of the end-session redirect, which providers
/// use to end the right session without asking the user.
pub fn keeps_id_token(forward_id_token: bool, provider: &ProviderConfig) -> bool {
    forward_id_token || provider.end_session_url.is_some()
}

/// The `sid` (provider session ID) claim of an ID token that has already
/// been verified, so that back-channel logout tokens naming only a `sid`
/// find the session.
pub fn id_token_sid(verified_id_token: &str) -> Option<String> {
    let payload = verified_id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("sid").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_session_url_keeps_the_endpoint_query_and_encodes_every_parameter() {
        let endpoint = Url::parse("https://id.example.com/logout?tenant=a").unwrap();
        let url =
            end_session_url(&endpoint, "gate way", Some("h.p.s"), "https://app.example.com/oauth2/signed_out", None);
        let q: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(
            q,
            [
                ("tenant", "a"),
                ("id_token_hint", "h.p.s"),
                ("client_id", "gate way"),
                ("post_logout_redirect_uri", "https://app.example.com/oauth2/signed_out"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let with_state = end_session_url(&endpoint, "c", None, "https://a/x", Some("/back?x=1&y=2"));
        assert!(!with_state.as_str().contains("id_token_hint"));
        assert_eq!(with_state.query_pairs().find(|(k, _)| k == "state").unwrap().1, "/back?x=1&y=2");
    }

    #[test]
    fn basic_auth_form_encodes_the_credentials() {
        let header = basic_auth("id:x", "s&cret");
        let decoded = STANDARD.decode(header.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3Ax:s%26cret");
    }

    #[test]
    fn sid_comes_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","sid":"op-session"}"#);
        assert_eq!(id_token_sid(&format!("e30.{payload}.sig")).as_deref(), Some("op-session"));
        let none = URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
        assert_eq!(id_token_sid(&format!("e30.{none}.sig")), None);
        assert_eq!(id_token_sid("garbage"), None);
    }
}
