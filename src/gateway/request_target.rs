//! Which request targets the gateway forwards at all.
//!
//! - `CONNECT` (a tunnel to any host) and `OPTIONS *` (a question about the
//!   gateway itself) are never forwarded.
//! - A path with a dot segment (`.` or `..`), raw or percent-encoded
//!   (`%2e%2e`, `.%2E`), or hidden behind an encoded separator (`..%2f`,
//!   `..%5c`), is refused: browsers resolve dot segments before they send a
//!   request, so only a client trying to climb out of the upstream URL's base
//!   path (or past a path-based rule) sends one, and what an upstream would
//!   make of it varies. Encoded slashes that are not part of a dot segment
//!   (`group%2Fproject`, as GitLab's API uses) are forwarded unchanged.
//! - Repeated slashes are merged (`//admin` is `/admin`), as nginx does by
//!   default, before routes and public paths are matched, so the path the
//!   gateway matched is the path the upstream gets.

use http::uri::PathAndQuery;
use http::{Method, StatusCode, Uri};

use crate::access::{has_dot_segment, merge_slashes};

/// Why a request is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `CONNECT`.
    #[error("CONNECT is not supported")]
    Connect,
    /// `OPTIONS *` or another target that is not a path.
    #[error("only origin-form request targets are forwarded")]
    NotAPath,
    /// A dot segment, raw or encoded.
    #[error("the path contains a dot segment")]
    DotSegment,
}

impl Refused {
    /// The status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAPath | Self::DotSegment => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks a request's method and target before anything else looks at it.
pub fn check(method: &Method, uri: &Uri) -> Result<(), Refused> {
    if method == Method::CONNECT {
        return Err(Refused::Connect);
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(Refused::NotAPath);
    }
    if has_dot_segment(path) {
        return Err(Refused::DotSegment);
    }
    Ok(())
}

/// `uri` with repeated slashes of its path merged; `None` when there are
/// none (the common case, which allocates nothing).
pub fn merged(uri: &Uri) -> Option<Uri> {
    let std::borrow::Cow::Owned(path) = merge_slashes(uri.path()) else { return None };
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_and_asterisk_are_not_forwarded() {
        assert_eq!(check(&Method::CONNECT, &Uri::from_static("example.com:443")), Err(Refused::Connect));
        assert_eq!(check(&Method::OPTIONS, &Uri::from_static("*")), Err(Refused::NotAPath));
        assert_eq!(check(&Method::OPTIONS, &Uri::from_static("/x")), Ok(()));
        assert_eq!(check(&Method::GET, &Uri::from_static("http://h/x/../y")), Err(Refused::DotSegment));
        assert_eq!(Refused::Connect.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn repeated_slashes_merge_and_the_query_is_kept() {
        assert_eq!(merged(&Uri::from_static("//admin?x=//y")).unwrap(), "/admin?x=//y");
        assert_eq!(merged(&Uri::from_static("/a//b")).unwrap(), "/a/b");
        assert_eq!(merged(&Uri::from_static("/a/b?c=//")), None);
    }
}
