//! Where a policy (or one of its routes) sends requests, and how the
//! gateway reaches it: timeouts and TLS.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A duration such as `30s`, `2m` or `1h30m`.
pub(crate) const DURATION: &str = "self.matches('^([0-9]+(s|m|h))+$')";

/// Where to send authenticated requests: exactly one of `service` or `url`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.service) != has(self.url)").message("upstream must set exactly one of service or url"))]
#[x_kube(validation = Rule::new("!has(self.tls) || has(self.url) && self.url.startsWith('https://')").message("upstream.tls needs an https:// upstream.url"))]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    /// A Service in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceUpstream>,
    /// An absolute http:// or https:// URL. Its path is a base: a request
    /// for `/x` goes to `<url path>/x`.
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']").message("upstream.url must be an absolute http:// or https:// URL"))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How long the upstream may take to send its response headers, as a
    /// duration such as `30s` or `2m` (default `60s`). A slower upstream
    /// gets the client a 504. Response bodies and WebSockets are not limited.
    #[x_kube(validation = Rule::new(DURATION).message("upstream.timeout must be a duration such as 30s or 2m"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How long opening a connection to the upstream may take (default
    /// `5s`). A refused or unreachable upstream gets the client a 502.
    #[x_kube(validation = Rule::new(DURATION).message("upstream.connectTimeout must be a duration such as 5s"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    /// How the upstream's certificate is verified and which client
    /// certificate is presented. Without it an https:// upstream is
    /// verified against the system's roots; SNI is always the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

/// A Service in the policy's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceUpstream {
    /// Service name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Service port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// TLS towards an upstream.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caBundle))").message("upstream.tls: insecureSkipVerify and caBundle exclude each other"))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamTls {
    /// PEM certificates that sign the upstream's certificate (a private
    /// CA). They replace the system's roots for this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
    /// A `kubernetes.io/tls` Secret in this namespace (`tls.crt`,
    /// `tls.key`) presented as the client certificate (mutual TLS).
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("upstream.tls.clientCertificateSecret must be a valid Secret name"))]
    #[schemars(length(min = 1, max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_secret: Option<String>,
    /// Accept any certificate the upstream presents. Anyone on the path
    /// to the upstream can then read and change the traffic, injected
    /// credentials included. For tests and migrations only; the gateway
    /// logs a warning at start and the policy's status says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// PEM certificates from exactly one of a ConfigMap or a Secret in the
/// resource's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)").message("caBundle must set exactly one of configMapKeyRef or secretKeyRef"))]
#[serde(rename_all = "camelCase")]
pub struct CaBundle {
    /// A key of a ConfigMap (e.g. `ca.crt` of a trust-manager bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    /// A key of a Secret (e.g. `ca.crt` of a cert-manager certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// One key of a Secret or ConfigMap in the resource's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    /// Name of the object.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("name must be a valid object name"))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within its data.
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("key must be a valid data key"))]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}
