//! What a resource names by reference, and reading what those references
//! point to: keys of Secrets and ConfigMaps in the resource's namespace.
//!
//! [`of_policy`] and [`of_provider`] are the one list of what an
//! AuthPolicy or IdentityProvider refers to. The reference index
//! ([`super::index`]) maps a changed object to its users with them, the
//! caches ([`super::cache`]) read them, and the renderer
//! ([`super::auth_policy::render`]) looks the values up in the
//! [`Values`] they produce, so the three can never disagree about which
//! object a field means.
//!
//! Values never leave this module in an error or a message: a
//! [`RefError`] names the object and the key, nothing else.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::error::Result;
use crate::api::{AuthPolicySpec, CaBundle, IdentityProviderSpec, KeyRef, SecretKeyRef, UpstreamTls};
use crate::contract::validate::{is_certificates, is_private_key};

/// The kinds of object a reference can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A core/v1 Secret.
    Secret,
    /// A core/v1 ConfigMap.
    ConfigMap,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        })
    }
}

/// The key of a certificate in a `kubernetes.io/tls` Secret.
pub const TLS_CERT: &str = "tls.crt";
/// The key of a private key in a `kubernetes.io/tls` Secret.
pub const TLS_KEY: &str = "tls.key";

/// One key of one object in the resource's namespace, and which field
/// names it (for status messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Secret or ConfigMap.
    pub source: Source,
    /// The object's name.
    pub name: String,
    /// The key within its data.
    pub key: String,
    /// The field that names it, e.g. `routes["/api"].headers["X-Api-Key"]`.
    pub field: String,
}

impl Reference {
    fn new(source: Source, name: &str, key: &str, field: String) -> Self {
        Self { source, name: name.to_owned(), key: key.to_owned(), field }
    }

    fn secret(r: &KeyRef, field: String) -> Self {
        Self::new(Source::Secret, &r.name, &r.key, field)
    }

    /// The error of this key being absent.
    pub fn missing(&self) -> RefError {
        RefError::MissingKey(self.source, self.name.clone(), self.key.clone())
    }

    /// The reference of a provider's `clientSecretRef`.
    pub fn client_secret(r: &SecretKeyRef) -> Self {
        Self::new(Source::Secret, &r.name, &r.key, "clientSecretRef".into())
    }

    /// The reference of a `caBundle`; `None` if it names neither kind (the
    /// schema forbids that).
    pub fn ca_bundle(b: &CaBundle, field: String) -> Option<Self> {
        match (&b.config_map_key_ref, &b.secret_key_ref) {
            (Some(r), _) => Some(Self::new(Source::ConfigMap, &r.name, &r.key, field)),
            (None, Some(r)) => Some(Self::secret(r, field)),
            (None, None) => None,
        }
    }
}

/// Why a reference did not resolve. The message names the object and the
/// key, never a value.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RefError {
    /// No such object.
    #[error("{0} {1:?} not found")]
    NotFound(Source, String),
    /// The object lacks the key, or its value is empty.
    #[error("{0} {1:?} has no non-empty key {2:?}")]
    MissingKey(Source, String, String),
    /// The value is not what the field needs (PEM certificates, a key).
    #[error("key {2:?} of {0} {1:?} {3}")]
    Unusable(Source, String, String, &'static str),
}

impl RefError {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(Source::Secret, _) => "SecretNotFound",
            Self::NotFound(Source::ConfigMap, _) => "ConfigMapNotFound",
            Self::MissingKey(Source::Secret, ..) => "SecretKeyNotFound",
            Self::MissingKey(Source::ConfigMap, ..) => "ConfigMapKeyNotFound",
            Self::Unusable(..) => "InvalidReference",
        }
    }

    /// `field: message`, e.g. `routes["/api"].headers["X-Api-Key"]: Secret "k" not found`.
    pub fn in_field(&self, r: &Reference) -> String {
        format!("{}: {self}", r.field)
    }

    /// This error of reference `r`, as status reports it.
    pub fn of(&self, r: &Reference) -> Unresolved {
        Unresolved { reason: self.reason(), message: self.in_field(r) }
    }
}

/// A reference that did not resolve, as status reports it: a condition
/// reason, and a message naming the field, the object and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Condition reason ([`RefError::reason`]).
    pub reason: &'static str,
    /// [`RefError::in_field`].
    pub message: String,
}

/// Resolved values by (kind, object, key).
#[derive(Default, Clone, Debug)]
pub struct Values(BTreeMap<(Source, String, String), String>);

impl Values {
    /// Records the value of `r`.
    pub fn insert(&mut self, r: &Reference, value: String) {
        self.0.insert((r.source, r.name.clone(), r.key.clone()), value);
    }

    /// The value of `key` in `name`, if resolved.
    pub fn get(&self, source: Source, name: &str, key: &str) -> Option<&str> {
        self.0.get(&(source, name.to_owned(), key.to_owned())).map(String::as_str)
    }

    /// The value a Secret key reference names, if resolved.
    pub fn secret(&self, r: &KeyRef) -> Option<&str> {
        self.get(Source::Secret, &r.name, &r.key)
    }

    /// The PEM a `caBundle` names, if resolved.
    pub fn ca_bundle(&self, b: &CaBundle) -> Option<&str> {
        let r = Reference::ca_bundle(b, String::new())?;
        self.get(r.source, &r.name, &r.key)
    }
}

/// What an upstream's `tls` refers to: its CA bundle and client certificate.
fn of_tls(tls: &UpstreamTls, field: &str, out: &mut Vec<Reference>) {
    if let Some(b) = &tls.ca_bundle {
        out.extend(Reference::ca_bundle(b, format!("{field}.caBundle")));
    }
    if let Some(name) = &tls.client_certificate_secret {
        for key in [TLS_CERT, TLS_KEY] {
            out.push(Reference::new(Source::Secret, name, key, format!("{field}.clientCertificateSecret")));
        }
    }
}

/// Every key a policy refers to, in the order of its fields (the first
/// that fails is the one reported).
pub fn of_policy(spec: &AuthPolicySpec) -> Vec<Reference> {
    let mut out = Vec::new();
    if let Some(tls) = spec.upstream.as_ref().and_then(|u| u.tls.as_ref()) {
        of_tls(tls, "upstream.tls", &mut out);
    }
    for route in &spec.routes {
        let at = format!("routes[{:?}]", route.path_prefix);
        if let Some(tls) = &route.upstream.tls {
            of_tls(tls, &format!("{at}.upstream.tls"), &mut out);
        }
        for h in &route.headers {
            out.push(Reference::secret(&h.value_from.secret_key_ref, format!("{at}.headers[{:?}]", h.name)));
        }
        if let Some(t) = &route.token_auth {
            out.push(Reference::secret(&t.client_secret_ref, format!("{at}.tokenAuth.clientSecretRef")));
        }
    }
    if let Some(redis) = &spec.session.redis {
        if let Some(r) = &redis.password_secret_ref {
            out.push(Reference::secret(r, "session.redis.passwordSecretRef".into()));
        }
        if let Some(b) = redis.tls.as_ref().and_then(|t| t.ca_bundle.as_ref()) {
            out.extend(Reference::ca_bundle(b, "session.redis.tls.caBundle".into()));
        }
    }
    out
}

/// Every key a provider refers to: its client secret and CA bundle.
pub fn of_provider(spec: &IdentityProviderSpec) -> Vec<Reference> {
    let mut out = vec![Reference::client_secret(&spec.client_secret_ref)];
    out.extend(spec.ca_bundle.as_ref().and_then(|b| Reference::ca_bundle(b, "caBundle".into())));
    out
}

/// The names of the objects of `source` among `refs`, each once.
pub fn names(refs: &[Reference], source: Source) -> Vec<String> {
    let mut names: Vec<String> = refs.iter().filter(|r| r.source == source).map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// An object as far as references care: its resourceVersion and data.
pub struct Object {
    /// resourceVersion when read.
    pub resource_version: Option<String>,
    data: BTreeMap<String, Vec<u8>>,
}

impl Object {
    /// The non-empty value of `key`, without trailing newlines.
    pub fn value(&self, r: &Reference) -> Result<String, RefError> {
        self.data
            .get(&r.key)
            .map(|b| String::from_utf8_lossy(b).trim_end_matches(['\n', '\r']).to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| r.missing())
    }
}

fn bytes(map: Option<BTreeMap<String, ByteString>>) -> impl Iterator<Item = (String, Vec<u8>)> {
    map.into_iter().flatten().map(|(k, v)| (k, v.0))
}

/// Reads the object `r` names from the apiserver. Transport errors are
/// errors; a missing object is a user problem, returned as `Ok(Err(..))`.
pub async fn fetch(client: &Client, ns: &str, r: &Reference) -> Result<Result<Object, RefError>> {
    let object = match r.source {
        Source::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), ns);
            api.get_opt(&r.name)
                .await?
                .map(|s| Object { resource_version: s.metadata.resource_version, data: bytes(s.data).collect() })
        }
        Source::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            api.get_opt(&r.name).await?.map(|c| {
                // Text keys win over binary ones of the same name (the apiserver forbids both).
                let text = c.data.into_iter().flatten().map(|(k, v)| (k, v.into_bytes()));
                let data = bytes(c.binary_data).chain(text).collect();
                Object { resource_version: c.metadata.resource_version, data }
            })
        }
    };
    Ok(object.ok_or_else(|| RefError::NotFound(r.source, r.name.clone())))
}

/// Reads the value `r` names from the apiserver (no cache).
pub async fn read(client: &Client, ns: &str, r: &Reference) -> Result<Result<String, RefError>> {
    Ok(fetch(client, ns, r).await?.and_then(|o| o.value(r)))
}

/// Checks that each resolved value is usable where it goes: certificates
/// for CA bundles and client certificates, a private key for `tls.key`.
pub fn check_usable(refs: &[Reference], values: &Values) -> Result<(), Unresolved> {
    for r in refs {
        let Some(value) = values.get(r.source, &r.name, &r.key) else { continue };
        let certificates =
            r.field.ends_with("caBundle") || r.field.ends_with("clientCertificateSecret") && r.key == TLS_CERT;
        let problem = if certificates && !is_certificates(value) {
            Some("holds no PEM certificate")
        } else if r.field.ends_with("clientCertificateSecret") && r.key == TLS_KEY && !is_private_key(value) {
            Some("holds no PEM private key")
        } else {
            None
        };
        if let Some(what) = problem {
            return Err(RefError::Unusable(r.source, r.name.clone(), r.key.clone(), what).of(r));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> AuthPolicySpec {
        let mut base = serde_json::json!({"upstream": {"url": "https://app:8443"}, "externalUrl": "https://x", "providers": ["p"]});
        base.as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_policy_names_every_secret_and_config_map_in_field_order() {
        let s = spec(serde_json::json!({
            "upstream": {"url": "https://app:8443", "tls": {"caBundle": {"configMapKeyRef": {"name": "trust", "key": "ca.crt"}}}},
            "routes": [{
                "pathPrefix": "/api",
                "upstream": {"url": "https://api:443", "tls": {"clientCertificateSecret": "mtls"}},
                "headers": [{"name": "X-Api-Key", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "api"}}}],
                "tokenAuth": {"tokenUrl": "https://id/token", "clientId": "c", "clientSecretRef": {"name": "keys", "key": "cc"}},
            }],
        }));
        let refs: Vec<String> =
            of_policy(&s).iter().map(|r| format!("{} {}/{} {}", r.source, r.name, r.key, r.field)).collect();
        assert_eq!(
            refs,
            [
                "ConfigMap trust/ca.crt upstream.tls.caBundle",
                "Secret mtls/tls.crt routes[\"/api\"].upstream.tls.clientCertificateSecret",
                "Secret mtls/tls.key routes[\"/api\"].upstream.tls.clientCertificateSecret",
                "Secret keys/api routes[\"/api\"].headers[\"X-Api-Key\"]",
                "Secret keys/cc routes[\"/api\"].tokenAuth.clientSecretRef",
            ]
        );
        assert_eq!(names(&of_policy(&s), Source::Secret), ["keys", "mtls"]);
        assert_eq!(names(&of_policy(&s), Source::ConfigMap), ["trust"]);
    }

    #[test]
    fn errors_name_the_object_and_key_with_a_reason_per_kind() {
        let r = Reference::new(Source::ConfigMap, "trust", "ca.crt", "caBundle".into());
        let e = RefError::NotFound(Source::ConfigMap, "trust".into());
        assert_eq!(
            (e.reason(), e.in_field(&r).as_str()),
            ("ConfigMapNotFound", r#"caBundle: ConfigMap "trust" not found"#)
        );
        let e = RefError::MissingKey(Source::Secret, "k".into(), "api".into());
        assert_eq!(
            (e.reason(), e.to_string().as_str()),
            ("SecretKeyNotFound", r#"Secret "k" has no non-empty key "api""#)
        );
    }

    #[test]
    fn tls_material_must_be_usable_where_it_goes() {
        let r = Reference::new(Source::ConfigMap, "trust", "ca.crt", "upstream.tls.caBundle".into());
        let mut values = Values::default();
        values.insert(&r, "garbage".into());
        let e = check_usable(std::slice::from_ref(&r), &values).unwrap_err();
        assert_eq!(e.message, r#"upstream.tls.caBundle: key "ca.crt" of ConfigMap "trust" holds no PEM certificate"#);
        assert_eq!(e.reason, "InvalidReference");
    }
}
