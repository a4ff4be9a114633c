//! What both kinds of generated route share: the external URL's host and
//! path prefix they route, and the ownership rule that keeps the controller
//! off a route it did not create.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use url::{Host, Url};

/// Where a route sends users: requests for `host` under `path` go to the
/// gateway Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The external URL's host name, lower-case, without a port.
    pub host: String,
    /// The external URL's path without a trailing slash; `/` for none. Both
    /// Ingress `Prefix` and Gateway API `PathPrefix` match it element-wise,
    /// so `/wiki` matches `/wiki` and `/wiki/…` but not `/wikis`.
    pub path: String,
}

/// The route target of `external_url`, or why it has none: a route needs a
/// DNS host name (an Ingress or HTTPRoute cannot name an IP address).
pub fn target(external_url: &str) -> Result<Target, String> {
    let url = Url::parse(external_url).map_err(|_| format!("externalUrl {external_url:?} is not a valid URL"))?;
    let host = match url.host() {
        Some(Host::Domain(domain)) => domain.to_owned(),
        _ => {
            return Err(format!(
                "expose needs a DNS host name in externalUrl; {external_url:?} has none (an IP address cannot be routed by host)"
            ));
        }
    };
    let path = url.path().trim_end_matches('/');
    let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    Ok(Target { host, path })
}

/// Whether `meta` names the object with `uid` as its controller. Only such a
/// route is ever changed or deleted.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn t(url: &str) -> Result<(String, String), String> {
        target(url).map(|t| (t.host, t.path))
    }

    #[test]
    fn host_and_path_prefix_come_from_the_external_url() {
        assert_eq!(t("https://App.Example.com"), Ok(("app.example.com".into(), "/".into())));
        assert_eq!(t("https://app.example.com/"), Ok(("app.example.com".into(), "/".into())));
        assert_eq!(t("https://example.com:8443/wiki/"), Ok(("example.com".into(), "/wiki".into())));
        assert_eq!(t("https://example.com/a/b"), Ok(("example.com".into(), "/a/b".into())));
    }

    #[test]
    fn an_address_or_garbage_has_no_target() {
        for bad in ["http://127.0.0.1:8080/", "http://[::1]/", "not a url"] {
            let e = t(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_the_controller_owner_counts() {
        let owner = |uid: &str, controller| OwnerReference {
            uid: uid.into(),
            controller: Some(controller),
            ..OwnerReference::default()
        };
        let meta = |refs| ObjectMeta { owner_references: Some(refs), ..ObjectMeta::default() };
        assert!(controlled_by(&meta(vec![owner("u1", true)]), "u1"));
        assert!(!controlled_by(&meta(vec![owner("u1", false)]), "u1"), "a mere owner is not the controller");
        assert!(!controlled_by(&meta(vec![owner("u2", true)]), "u1"));
        assert!(!controlled_by(&ObjectMeta::default(), "u1"));
    }
}
