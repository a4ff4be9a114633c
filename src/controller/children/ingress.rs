//! `<policy>-gateway` Ingress (`spec.expose.ingress`): the external URL's
//! host and path prefix to the gateway Service's `http` port.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use kube::ResourceExt;

use super::route::Target;
use super::service::PORT_NAME;
use super::{gateway_name, labels};
use crate::api::{AuthPolicy, IngressExpose};

/// The desired Ingress. Its annotations are exactly `expose.annotations`,
/// so one removed from the policy is removed from the Ingress too.
pub fn build(policy: &AuthPolicy, expose: &IngressExpose, target: &Target) -> Ingress {
    let name = gateway_name(&policy.name_any());
    let mut metadata = labels::child_meta(policy, name.clone());
    if !expose.annotations.is_empty() {
        metadata.annotations = Some(expose.annotations.clone());
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name,
            port: Some(ServiceBackendPort { name: Some(PORT_NAME.into()), number: None }),
        }),
        ..IngressBackend::default()
    };
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: expose.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(target.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(target.path.clone()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            tls: expose.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS { hosts: Some(vec![target.host.clone()]), secret_name: Some(secret.clone()) }]
            }),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::controller::children::route::target;
    use crate::controller::fixtures::objects;

    #[test]
    fn routes_host_and_base_path_to_the_service_with_tls() {
        let mut policy = objects::policy();
        policy.spec.external_url = "https://docs.example.com/wiki/".into();
        let expose = IngressExpose {
            class_name: Some("nginx".into()),
            annotations: BTreeMap::from([("nginx.ingress.kubernetes.io/proxy-body-size".into(), "8m".into())]),
            tls_secret_name: Some("docs-tls".into()),
        };
        let ing = build(&policy, &expose, &target(&policy.spec.external_url).unwrap());
        assert_eq!(ing.metadata.name.as_deref(), Some("grafana-gateway"));
        assert_eq!(ing.metadata.annotations, Some(expose.annotations.clone()));
        assert_eq!(ing.metadata.owner_references.as_ref().unwrap()[0].uid, policy.metadata.uid.clone().unwrap());
        assert_eq!(ing.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "authgate");
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("docs.example.com"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!((path.path.as_deref(), path.path_type.as_str()), (Some("/wiki"), "Prefix"));
        let svc = path.backend.service.as_ref().unwrap();
        assert_eq!(svc.name, "grafana-gateway");
        assert_eq!(svc.port.as_ref().unwrap().name.as_deref(), Some("http"));
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(tls.hosts.as_deref(), Some(&["docs.example.com".to_owned()][..]));
        assert_eq!(tls.secret_name.as_deref(), Some("docs-tls"));
    }

    #[test]
    fn no_class_annotations_or_tls_unless_asked() {
        let policy = objects::policy();
        let ing = build(&policy, &IngressExpose::default(), &target(&policy.spec.external_url).unwrap());
        assert_eq!(ing.metadata.annotations, None);
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name, None);
        assert_eq!(spec.tls, None);
        assert_eq!(spec.rules.unwrap()[0].http.as_ref().unwrap().paths[0].path.as_deref(), Some("/"));
    }
}
