//! `<policy>-gateway` HTTPRoute (`spec.expose.httpRoute`): the external
//! URL's host and path prefix, on the named Gateways, to the gateway Service.
//!
//! The Gateway API is optional (its CRDs may not be installed), so the type
//! is a small serde struct of the fields the controller writes rather than
//! a dependency on a Gateway API crate. Fields the apiserver defaults
//! (`group`, `kind`, a backend's `weight`) are left out: the applied-hash
//! of [`super::apply`] compares what was sent, never what came back.

use kube::{CustomResource, ResourceExt};
use serde::{Deserialize, Serialize};

use super::route::Target;
use super::service::PORT;
use super::{gateway_name, labels};
use crate::api::{AuthPolicy, HttpRouteExpose};

/// The part of `gateway.networking.k8s.io/v1` HTTPRoute the controller writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    root = "HttpRoute",
    plural = "httproutes",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<RouteParentRef>,
    /// Host names the route matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Matches and where they go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
}

/// `spec.parentRefs[]`: a Gateway (the default group and kind).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentRef {
    /// Name of the Gateway.
    pub name: String,
    /// Its namespace; the route's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One of its listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// `spec.rules[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Requests this rule takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<RouteMatch>,
    /// Where they go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
}

/// `spec.rules[].matches[]`: a path match only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// The path match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
}

/// `spec.rules[].matches[].path`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PathMatch {
    /// `PathPrefix`, `Exact` or `RegularExpression`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The path.
    pub value: String,
}

/// `spec.rules[].backendRefs[]`: a Service (the default group and kind).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BackendRef {
    /// Service name.
    pub name: String,
    /// Service port number (a Gateway API backend cannot name a port).
    pub port: i32,
}

/// The desired HTTPRoute. A parent without a namespace is the Gateway in
/// the policy's namespace, as the Gateway API defines it.
pub fn build(policy: &AuthPolicy, expose: &HttpRouteExpose, target: &Target) -> HttpRoute {
    let name = gateway_name(&policy.name_any());
    let parent_refs = expose
        .parent_refs
        .iter()
        .map(|p| RouteParentRef {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            section_name: p.section_name.clone(),
        })
        .collect();
    let spec = HttpRouteSpec {
        parent_refs,
        hostnames: vec![target.host.clone()],
        rules: vec![RouteRule {
            matches: vec![RouteMatch {
                path: Some(PathMatch { type_: "PathPrefix".into(), value: target.path.clone() }),
            }],
            backend_refs: vec![BackendRef { name: name.clone(), port: PORT }],
        }],
    };
    HttpRoute { metadata: labels::child_meta(policy, name), spec }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ParentRef;
    use crate::controller::children::route::target;
    use crate::controller::fixtures::objects;

    #[test]
    fn attaches_to_the_parents_and_routes_the_prefix_to_the_service() {
        let mut policy = objects::policy();
        policy.spec.external_url = "https://tools.example.com/grafana".into();
        let expose = HttpRouteExpose {
            parent_refs: vec![
                ParentRef {
                    name: "public".into(),
                    namespace: Some("infra".into()),
                    section_name: Some("https".into()),
                },
                ParentRef { name: "local".into(), namespace: None, section_name: None },
            ],
        };
        let route = build(&policy, &expose, &target(&policy.spec.external_url).unwrap());
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(json["kind"], "HTTPRoute");
        assert_eq!(json["metadata"]["name"], "grafana-gateway");
        assert_eq!(json["metadata"]["ownerReferences"][0]["uid"], "uid-policy");
        assert_eq!(json["metadata"]["labels"]["app.kubernetes.io/managed-by"], "authgate");
        assert_eq!(
            json["spec"],
            serde_json::json!({
                "parentRefs": [
                    {"name": "public", "namespace": "infra", "sectionName": "https"},
                    {"name": "local"},
                ],
                "hostnames": ["tools.example.com"],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/grafana"}}],
                    "backendRefs": [{"name": "grafana-gateway", "port": 80}],
                }],
            })
        );
    }

    #[test]
    fn reads_back_what_the_apiserver_adds() {
        let served = serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g"}],
                "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": "s", "port": 80, "weight": 1}]}],
            },
            "status": {"parents": []},
        });
        let route: HttpRoute = serde_json::from_value(served).unwrap();
        assert_eq!(route.spec.parent_refs[0].name, "g");
        assert_eq!(route.spec.rules[0].backend_refs[0].port, 80);
    }
}
