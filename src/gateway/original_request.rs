//! Forward-auth: which request an ingress is asking about.
//!
//! An ingress asks the gateway about a request it holds, and names that
//! request in headers: ingress-nginx sends `X-Original-URL` and
//! `X-Original-Method`; Traefik sends `X-Forwarded-Method`, `-Proto`,
//! `-Host` and `-Uri`; Envoy's `ext_authz` puts the original path after the
//! configured path prefix and keeps the original `Host` and method.
//!
//! Those headers are believed only from a trusted proxy (the caller checks
//! the peer first), and only in their canonical spelling: a request that
//! also carries an `_` or `.` spelling of one of them is refused, because
//! some proxy on the way may read that one instead. `X-Forwarded-Prefix` and
//! RFC 7239 `Forwarded` are never used to name the original request. The
//! original URL must be on the policy's own origin and under its base path,
//! with no dot segments; its query string and fragment are never matched.

use http::{HeaderMap, Method};
use url::Url;

use crate::access::has_dot_segment;

/// The request an ingress asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Its method.
    pub method: Method,
    /// Its path and query, as the user's browser sent them (a valid
    /// post-login target under the policy's base path).
    pub path_and_query: String,
}

/// Why a forward-auth request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The asking peer is not a trusted proxy.
    #[error("forward-auth requests are accepted only from the policy's trusted proxies")]
    UntrustedPeer,
    /// An `_` or `.` spelling of an original-request header.
    #[error("an original-request header is spelled with '_' or '.'; only the '-' spelling is accepted")]
    AliasedHeader,
    /// The original URL is not on this policy's origin or base path.
    #[error("the original request is not for this policy's external URL")]
    ForeignHost,
    /// The original URL or method does not parse, or has dot segments.
    #[error("the original request is malformed")]
    Malformed,
}

/// The headers that name the original request, in their canonical spelling.
const NAMING: [&str; 6] = [
    "x-original-url",
    "x-original-method",
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
];

/// Whether `name` (lower case, as `http` stores it) is an `_` or `.`
/// spelling of a header in [`NAMING`].
fn is_alias(name: &str) -> bool {
    name.contains(['_', '.']) && {
        let normalized = name.replace(['_', '.'], "-");
        NAMING.contains(&normalized.as_str())
    }
}

/// The original request of an nginx `auth_request` or a Traefik
/// `ForwardAuth` check, or `None` when the proxy named none (then nothing
/// but the session is judged, and sign-in returns to the base path).
pub fn from_headers(headers: &HeaderMap, external: &Url) -> Result<Option<Original>, Refused> {
    refuse_aliases(headers)?;
    let text = |name: &str| -> Result<Option<&str>, Refused> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| Refused::Malformed),
        }
    };
    let (url, method) = if let Some(full) = text("x-original-url")? {
        refuse_raw_dot_segments(full)?;
        (Url::parse(full).map_err(|_| Refused::Malformed)?, text("x-original-method")?)
    } else if let Some(uri) = text("x-forwarded-uri")? {
        refuse_raw_dot_segments(uri)?;
        let proto = text("x-forwarded-proto")?.unwrap_or(external.scheme());
        let host = text("x-forwarded-host")?.ok_or(Refused::Malformed)?;
        let url = Url::parse(&format!("{proto}://{host}{uri}")).map_err(|_| Refused::Malformed)?;
        if !uri.starts_with('/') {
            return Err(Refused::Malformed);
        }
        (url, text("x-forwarded-method")?)
    } else {
        return Ok(None);
    };
    let method =
        method.map_or(Ok(Method::GET), |m| Method::from_bytes(m.as_bytes()).map_err(|_| Refused::Malformed))?;
    judge(url, method, external).map(Some)
}

/// The original request of an Envoy `ext_authz` check: the path after
/// `prefix`, the `Host` and the method of the check itself.
pub fn from_ext_authz(
    method: &Method,
    path_and_query: &str,
    prefix: &str,
    headers: &HeaderMap,
    external: &Url,
) -> Result<Original, Refused> {
    refuse_aliases(headers)?;
    let rest = path_and_query.strip_prefix(prefix).ok_or(Refused::Malformed)?;
    refuse_raw_dot_segments(rest)?;
    if !rest.starts_with('/') {
        return Err(Refused::Malformed);
    }
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).ok_or(Refused::Malformed)?;
    let proto = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or(external.scheme());
    let url = Url::parse(&format!("{proto}://{host}{rest}")).map_err(|_| Refused::Malformed)?;
    judge(url, method.clone(), external)
}

/// Dot segments in the text as sent, before URL parsing resolves them
/// away (`/a/%2e%2e/b` would quietly become `/b`).
fn refuse_raw_dot_segments(text: &str) -> Result<(), Refused> {
    let path = text.split(['?', '#']).next().unwrap_or_default();
    if has_dot_segment(path) { Err(Refused::Malformed) } else { Ok(()) }
}

fn refuse_aliases(headers: &HeaderMap) -> Result<(), Refused> {
    if headers.keys().any(|k| is_alias(k.as_str())) { Err(Refused::AliasedHeader) } else { Ok(()) }
}

/// Same origin as `external`, under its base path, no dot segments.
fn judge(url: Url, method: Method, external: &Url) -> Result<Original, Refused> {
    if url.origin() != external.origin() || url.username() != "" || url.password().is_some() {
        return Err(Refused::ForeignHost);
    }
    let path = url.path();
    // `//host/…` would read as another origin wherever it is used as a
    // target (a protocol-relative reference).
    if has_dot_segment(path) || path.starts_with("//") || path.contains('\\') {
        return Err(Refused::Malformed);
    }
    let base = external.path().trim_end_matches('/');
    let under_base = path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !under_base {
        return Err(Refused::ForeignHost);
    }
    let path_and_query = match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    Ok(Original { method, path_and_query })
}

#[cfg(test)]
mod tests;
