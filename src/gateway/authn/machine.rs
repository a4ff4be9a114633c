//! Callers without a browser: what the bearer, ApiToken and device
//! authenticators establish, and how they find their credential.
//!
//! A machine credential travels only in `Authorization: Bearer …`. One in
//! the query string (`access_token=`, RFC 6750 §2.3) is refused outright
//! rather than ignored, so a client that leaks tokens into URLs (and so
//! into every proxy's access log) learns it at once.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::access::{Grant, Principal};

/// A caller that presented a machine credential the gateway accepted.
#[derive(Clone, Debug)]
pub struct MachineCaller {
    /// Who it is, who vouched for it and how.
    pub principal: Principal,
    /// What it may do under the policy's scopes.
    pub grant: Grant,
    /// Unix seconds at which the credential stops being accepted.
    pub expires_at: u64,
    /// The bearer JWT itself, for `forward.accessToken` (only a JWT of a
    /// trusted issuer is ever sent on; ApiTokens and device tokens are the
    /// gateway's own and stay here).
    pub upstream_token: Option<std::sync::Arc<str>>,
}

/// The token of `Authorization: Bearer <token>`, when the request carries
/// exactly one Authorization header with the Bearer scheme
/// (case-insensitive) and a non-empty token without whitespace.
pub fn bearer_token(headers: &HeaderMap) -> BearerToken<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return BearerToken::Absent };
    if values.next().is_some() {
        return BearerToken::Malformed;
    }
    let Ok(value) = value.to_str() else { return BearerToken::Malformed };
    let Some((scheme, token)) = value.split_once(' ') else { return BearerToken::Absent };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Basic and other schemes belong to the upstream.
        return BearerToken::Absent;
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return BearerToken::Malformed;
    }
    BearerToken::Present(token)
}

/// What [`bearer_token`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerToken<'a> {
    /// No Bearer credential.
    Absent,
    /// A Bearer credential that cannot be one (several headers, empty,
    /// spaces inside).
    Malformed,
    /// The token.
    Present(&'a str),
}

/// Whether `query` carries an OAuth bearer token (`access_token`, RFC 6750
/// §2.3), which the gateway refuses.
pub fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_not_ours() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), BearerToken::Present("abc"));
        assert_eq!(bearer_token(&headers(&["bearer abc"])), BearerToken::Present("abc"));
        assert_eq!(bearer_token(&headers(&["Basic YTpi"])), BearerToken::Absent);
        assert_eq!(bearer_token(&headers(&[])), BearerToken::Absent);
    }

    #[test]
    fn odd_bearer_credentials_are_malformed_not_ignored() {
        assert_eq!(bearer_token(&headers(&["Bearer "])), BearerToken::Malformed);
        assert_eq!(bearer_token(&headers(&["Bearer a b"])), BearerToken::Malformed);
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), BearerToken::Malformed);
    }

    #[test]
    fn a_token_in_the_query_is_spotted() {
        assert!(token_in_query(Some("a=1&access_token=x")));
        assert!(token_in_query(Some("access%5Ftoken=x")));
        assert!(!token_in_query(Some("token=x")));
        assert!(!token_in_query(None));
    }
}
