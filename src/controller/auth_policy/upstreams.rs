//! The upstream half of the gateway config: `spec.routes` and upstream TLS,
//! with every Secret and ConfigMap value they name filled in from the
//! values the reconcile resolved ([`crate::controller::refs`]).

use url::Url;

use super::render_error::RenderError;
use crate::api::{AuthPolicySpec, Route, Upstream, UpstreamTls};
use crate::contract::config::Redacted;
use crate::contract::routes::{HeaderValueConfig, RouteConfig, TlsConfig, TokenAuthConfig};
use crate::contract::rules::parse_duration_secs;
use crate::controller::refs::{self, Source, Values};

/// Where an upstream is: `http://<service>.<namespace>.svc:<port>` for a
/// Service, else its URL. `None` if it names neither or both.
pub fn upstream_url(upstream: &Upstream, namespace: &str) -> Option<String> {
    match (&upstream.service, &upstream.url) {
        (Some(svc), None) => Some(format!("http://{}.{namespace}.svc:{}", svc.name, svc.port)),
        (None, Some(url)) => Some(url.clone()),
        _ => None,
    }
}

/// A duration field in whole seconds, or why not.
pub fn seconds(field: String, value: Option<&String>) -> Result<Option<u64>, RenderError> {
    value
        .map(|v| parse_duration_secs(v).ok_or_else(|| RenderError::BadDuration { field, value: v.clone() }))
        .transpose()
}

/// The value of a reference the reconcile was meant to resolve.
fn value<'a>(values: &'a Values, source: Source, name: &str, key: &str, field: &str) -> Result<&'a str, RenderError> {
    values.get(source, name, key).ok_or_else(|| RenderError::Unresolved(field.to_owned()))
}

/// The TLS settings of an upstream, its CA bundle and client certificate
/// read from `values`.
pub fn tls(tls: &UpstreamTls, field: &str, values: &Values) -> Result<TlsConfig, RenderError> {
    let ca_pem = match tls.ca_bundle.as_ref().and_then(|b| refs::Reference::ca_bundle(b, format!("{field}.caBundle"))) {
        Some(r) => Some(value(values, r.source, &r.name, &r.key, &r.field)?.to_owned()),
        None => None,
    };
    let (client_cert_pem, client_key_pem) = match &tls.client_certificate_secret {
        Some(name) => {
            let at = format!("{field}.clientCertificateSecret");
            let cert = value(values, Source::Secret, name, refs::TLS_CERT, &at)?;
            let key = value(values, Source::Secret, name, refs::TLS_KEY, &at)?;
            (Some(cert.to_owned()), Some(Redacted::new(key.to_owned())))
        }
        None => (None, None),
    };
    Ok(TlsConfig { ca_pem, client_cert_pem, client_key_pem, insecure_skip_verify: tls.insecure_skip_verify })
}

/// One route, resolved.
fn route(r: &Route, namespace: &str, values: &Values) -> Result<RouteConfig, RenderError> {
    let at = format!("routes[{:?}]", r.path_prefix);
    let raw = upstream_url(&r.upstream, namespace).ok_or_else(|| RenderError::NoUpstream(at.clone()))?;
    let upstream =
        Url::parse(&raw).map_err(|_| RenderError::BadRouteUrl { field: format!("{at}.upstream"), value: raw })?;
    let headers = r
        .headers
        .iter()
        .map(|h| {
            let field = format!("{at}.headers[{:?}]", h.name);
            let secret = values.secret(&h.value_from.secret_key_ref).ok_or(RenderError::Unresolved(field))?;
            let value = format!("{}{secret}", h.prefix.as_deref().unwrap_or_default());
            Ok(HeaderValueConfig { name: h.name.clone(), value: Redacted::new(value) })
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    let token_auth = r
        .token_auth
        .as_ref()
        .map(|t| {
            let field = format!("{at}.tokenAuth");
            let secret = values
                .secret(&t.client_secret_ref)
                .ok_or_else(|| RenderError::Unresolved(format!("{field}.clientSecretRef")))?;
            let token_url = Url::parse(&t.token_url).map_err(|_| RenderError::BadRouteUrl {
                field: format!("{field}.tokenUrl"),
                value: t.token_url.clone(),
            })?;
            Ok::<_, RenderError>(TokenAuthConfig {
                token_url,
                client_id: t.client_id.clone(),
                client_secret: Redacted::new(secret.to_owned()),
                scopes: t.scopes.clone(),
                audience: t.audience.clone(),
                resource: t.resource.clone(),
                params: t.params.clone(),
                tls: None,
            })
        })
        .transpose()?;
    Ok(RouteConfig {
        path_prefix: r.path_prefix.clone(),
        upstream,
        tls: r.upstream.tls.as_ref().map(|t| tls(t, &format!("{at}.upstream.tls"), values)).transpose()?,
        methods: r.methods.clone(),
        strip_prefix: r.strip_prefix,
        headers,
        token_auth,
        forward_access_token: r.forward_access_token,
        timeout_seconds: seconds(format!("{at}.upstream.timeout"), r.upstream.timeout.as_ref())?,
        connect_timeout_seconds: seconds(format!("{at}.upstream.connectTimeout"), r.upstream.connect_timeout.as_ref())?,
        cors: r.cors.clone(),
    })
}

/// Every route of `spec`, in the order written (the gateway sorts them).
pub fn routes(spec: &AuthPolicySpec, namespace: &str, values: &Values) -> Result<Vec<RouteConfig>, RenderError> {
    spec.routes.iter().map(|r| route(r, namespace, values)).collect()
}

/// Fields of `spec` that turn certificate verification off, for a warning
/// in status.
pub fn insecure_fields(spec: &AuthPolicySpec) -> Vec<String> {
    let main = spec.upstream.iter().filter_map(|u| u.tls.as_ref()).map(|t| (t, "upstream".to_owned()));
    let routes =
        spec.routes.iter().filter_map(|r| Some((r.upstream.tls.as_ref()?, format!("routes[{:?}]", r.path_prefix))));
    main.chain(routes).filter(|(t, _)| t.insecure_skip_verify).map(|(_, f)| f).collect()
}
