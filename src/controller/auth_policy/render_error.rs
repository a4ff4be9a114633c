//! Why a policy's gateway config could not be rendered: shared by
//! [`super::render`] and [`super::upstreams`].

use url::Url;

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A URL did not parse.
    #[error("{field} is not a valid URL: {value:?}")]
    BadUrl {
        /// Which field.
        field: &'static str,
        /// The value that did not parse as a URL.
        value: String,
    },
    /// The provider has no resolved endpoints yet.
    #[error("IdentityProvider {0:?} has no resolved endpoints")]
    NoEndpoints(String),
    /// The session TTL did not parse.
    #[error("session.ttl {0:?} is not a duration such as 12h")]
    BadTtl(String),
    /// The upstream timeout did not parse.
    #[error("upstream.timeout {0:?} is not a duration such as 30s")]
    BadTimeout(String),
    /// A trusted proxy is not an address range.
    #[error("forward.trustedProxies entry {0:?} is not a CIDR range such as 10.0.0.0/8")]
    BadTrustedProxy(String),
    /// A duration of a route or upstream did not parse.
    #[error("{field} {value:?} is not a duration such as 30s")]
    BadDuration {
        /// Which field.
        field: String,
        /// The value that did not parse.
        value: String,
    },
    /// A route's URL did not parse.
    #[error("{field} is not a valid URL: {value:?}")]
    BadRouteUrl {
        /// Which field.
        field: String,
        /// The value that did not parse as a URL.
        value: String,
    },
    /// A route's upstream names neither or both of service and url.
    #[error("{0}.upstream must set exactly one of service or url")]
    NoUpstream(String),
    /// A referenced value was not resolved before rendering (a bug: the
    /// reconcile resolves every reference first).
    #[error("{0}: its Secret or ConfigMap was not resolved")]
    Unresolved(String),
}

/// `value` as a URL, or which field did not parse.
pub(super) fn url(field: &'static str, value: &str) -> Result<Url, RenderError> {
    Url::parse(value).map_err(|_| RenderError::BadUrl { field, value: value.to_owned() })
}
