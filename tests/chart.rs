//! The Helm chart, rendered by the real `helm` (AUTHGATE_HELM, or `helm` on
//! PATH): `helm lint --strict` and `helm template` for each value set, with
//! assertions on the rendered objects; the values schema refusing typos and
//! wrong types; and the CRD templates rendering exactly `authgate crd`'s
//! CRDs. `tests/chart_cluster.rs` takes the chart to the real control plane.
//!
//! A missing helm skips locally and fails under `CI=true`.

mod common;

use std::process::Command;

use common::helm::*;
use serde_json::{Value, json};

#[test]
fn helm_lint_and_template_each_value_set() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();

    // Defaults: the CRDs (kept), cluster-wide RBAC, restricted pods.
    lint(&h, &chart, "");
    let items = render(&h, &chart, "");
    assert_eq!(crd_names(&items), CRD_NAMES);
    for crd in all(&items, "CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"], json!({"helm.sh/resource-policy": "keep"}));
        assert_eq!(crd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm");
    }
    let bound = controller_cluster_roles(&items);
    assert!(bound.iter().any(|r| grants_resources(r)), "cluster-wide by default");
    assert!(all(&items, "Role").iter().all(|r| r["metadata"]["name"] == "ag-authgate-leader-election"));
    let pod = pod_spec(&items);
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        pod["containers"][0]["securityContext"],
        json!({"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    for absent in ["priorityClassName", "topologySpreadConstraints", "affinity", "volumes"] {
        assert!(pod.get(absent).is_none(), "{absent} by default: {pod}");
    }
    for kind in ["NetworkPolicy", "ServiceMonitor", "PodMonitor", "PodDisruptionBudget"] {
        assert!(all(&items, kind).is_empty(), "no {kind} by default");
    }

    // Namespaced: the controller's namespaced permissions in a Role there.
    let namespaced = "watchNamespace: team\n";
    lint(&h, &chart, namespaced);
    let items = render(&h, &chart, namespaced);
    assert!(args(&items).contains(&"--watch-namespace=team".to_owned()));
    let role = one(&items, "Role", "ag-authgate");
    assert_eq!(role["metadata"]["namespace"], "team");
    let granted: Vec<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()))
        .collect();
    for want in ["authpolicies", "identityproviders", "secrets", "deployments", "configmaps", "events"] {
        assert!(granted.contains(&want), "{want} in {granted:?}");
    }
    let binding = one(&items, "RoleBinding", "ag-authgate");
    assert_eq!(binding["metadata"]["namespace"], "team");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ag-authgate"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ag-authgate", "namespace": "authgate-system"}])
    );
    let bound = controller_cluster_roles(&items);
    assert!(!bound.is_empty() && bound.iter().all(|r| !grants_resources(r)), "cluster-wide only URLs: {bound:?}");
    assert!(bound[0]["rules"][0]["nonResourceURLs"].as_array().unwrap().contains(&json!("/openid/v1/jwks")));

    // Everything on.
    lint(&h, &chart, EVERYTHING);
    let items = render(&h, &chart, EVERYTHING);
    let pod = pod_spec(&items);
    assert!(pod["securityContext"].get("runAsUser").is_none() && pod["securityContext"].get("runAsGroup").is_none());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "only the ids are left out");
    assert_eq!(pod["securityContext"]["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert_eq!(pod["priorityClassName"], "platform-high");
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
            [0]["key"],
        "kubernetes.io/arch"
    );
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["volumes"], json!([{"name": "ca", "configMap": {"name": "corporate-ca"}}]));
    let container = &pod["containers"][0];
    assert_eq!(container["volumeMounts"], json!([{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": true}]));
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    );
    let env = container["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "HTTPS_PROXY", "value": "http://proxy:3128"})), "{env:?}");
    assert!(env.iter().any(|e| e["name"] == "POD_NAMESPACE"), "the chart's own env stays");
    assert_eq!(args(&items).last().map(String::as_str), Some("--admin-addr=127.0.0.1:9091"));
    let meta = &one(&items, "Deployment", "ag-authgate")["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["team"], "platform");
    assert_eq!(meta["labels"]["app.kubernetes.io/name"], "authgate-controller", "selector labels stay");
    assert_eq!(meta["annotations"]["note"], "hello");
    let sm = one(&items, "ServiceMonitor", "ag-authgate");
    assert_eq!(sm["metadata"]["namespace"], "monitoring");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(sm["spec"]["namespaceSelector"], json!({"matchNames": ["authgate-system"]}), "finds the Service");
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!((&ep["port"], &ep["interval"], &ep["scrapeTimeout"]), (&json!("metrics"), &json!("15s"), &json!("10s")));
    assert_eq!(ep["relabelings"][0]["targetLabel"], "team");
    assert_eq!(ep["metricRelabelings"][0]["regex"], "go_.*");
    let pm = one(&items, "PodMonitor", "ag-authgate-gateways");
    assert_eq!(pm["metadata"]["namespace"], "monitoring");
    assert_eq!(pm["metadata"]["labels"]["release"], "prom");
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    assert_eq!((&ep["port"], &ep["interval"], &ep["scrapeTimeout"]), (&json!("ops"), &json!("20s"), &json!("5s")));
    assert_eq!(ep["relabelings"][0]["targetLabel"], "tier");
    assert_eq!(ep["metricRelabelings"][0]["regex"], "process_.*");
    let np = one(&items, "NetworkPolicy", "ag-authgate");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["ingress"],
        json!([{"ports": [{"port": "metrics", "protocol": "TCP"}],
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}])
    );
    let egress = np["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 2, "DNS and the apiserver: {egress:?}");
    assert_eq!(egress[0]["ports"], json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]));
    assert_eq!(
        egress[1],
        json!({"to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]})
    );

    // NetworkPolicy defaults: ingress from anywhere to the metrics port, egress untouched.
    let items = render(&h, &chart, "networkPolicy: {enabled: true}\n");
    let np = one(&items, "NetworkPolicy", "ag-authgate");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(np["spec"]["ingress"], json!([{"ports": [{"port": "metrics", "protocol": "TCP"}]}]));
    assert!(np["spec"].get("egress").is_none());

    // CRDs managed elsewhere: none rendered.
    let off = "crds: {enabled: false}\n";
    lint(&h, &chart, off);
    let items = render(&h, &chart, off);
    assert!(crd_names(&items).is_empty(), "{:?}", names(&items));
    assert!(all(&items, "Deployment").len() == 1, "the rest is still there");

    // CRDs not kept: no resource policy.
    let unkept = "crds: {keep: false}\n";
    lint(&h, &chart, unkept);
    let items = render(&h, &chart, unkept);
    assert_eq!(crd_names(&items), CRD_NAMES);
    for crd in all(&items, "CustomResourceDefinition") {
        assert!(crd["metadata"].get("annotations").is_none(), "{}", crd["metadata"]);
    }
}

#[test]
fn works_as_a_subchart_with_global_values() {
    let Some(h) = helm_bin() else { return };
    let parent = parent_chart();
    let p = parent.path().to_string_lossy().into_owned();
    let out = helm(&h, &["lint", "--strict", &p]);
    assert!(out.status.success(), "{}", text(&out));
    let out = helm(&h, &["template", "ag", &p, "--namespace", "authgate-system"]);
    assert!(out.status.success(), "{}", text(&out));
    let items = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(crd_names(&items), CRD_NAMES);
    assert_eq!(one(&items, "Deployment", "ag-authgate")["spec"]["replicas"], 1, "the parent's values reach it");
}

#[test]
fn the_values_schema_refuses_typos_and_wrong_types() {
    let Some(h) = helm_bin() else { return };
    let chart = chart();
    for (values, error) in [
        ("replicaCont: 2\n", "additional properties 'replicaCont' not allowed"),
        ("replicaCount: two\n", "at '/replicaCount': got string, want integer"),
        ("crds: {enable: true}\n", "additional properties 'enable' not allowed"),
        ("crds: {keep: \"yes\"}\n", "at '/crds/keep': got string, want boolean"),
        ("extraArgs: --verbose\n", "at '/extraArgs': got string, want array"),
        ("extraEnv: [{value: x}]\n", "at '/extraEnv/0': missing property 'name'"),
        ("podSecurityContext: {runAsUser: root}\n", "at '/podSecurityContext/runAsUser'"),
        ("metrics: {serviceMonitor: {scrapeTimeout: 10}}\n", "at '/metrics/serviceMonitor/scrapeTimeout'"),
        ("networkPolicy: {egress: {rules: {to: []}}}\n", "at '/networkPolicy/egress/rules': got object, want array"),
        ("global: 3\n", "at '/global': got number, want object"),
    ] {
        let (_dir, file) = values_file(values);
        for cmd in ["template", "lint"] {
            let out = helm(&h, &[cmd, chart.as_str(), "-f", &file]);
            let t = text(&out);
            assert!(!out.status.success(), "helm {cmd} with {values:?} should fail:\n{t}");
            assert!(t.contains(error), "helm {cmd} with {values:?}: want {error:?} in:\n{t}");
        }
    }
}

/// Everything of a CRD but the metadata the chart adds.
fn without_chart_metadata(mut crd: Value) -> Value {
    let meta = crd["metadata"].as_object_mut().unwrap();
    meta.remove("annotations");
    meta.remove("labels");
    crd
}

#[test]
fn the_crd_templates_render_exactly_authgate_crd() {
    let Some(h) = helm_bin() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_authgate")).arg("crd").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut want = parse(&String::from_utf8(out.stdout).unwrap());
    want.sort_by_key(|c| c["metadata"]["name"].as_str().unwrap().to_owned());
    assert_eq!(want.len(), 4);
    for keep in [true, false] {
        let items = render(&h, &chart(), &format!("crds: {{keep: {keep}}}\n"));
        let mut got: Vec<Value> =
            all(&items, "CustomResourceDefinition").into_iter().cloned().map(without_chart_metadata).collect();
        got.sort_by_key(|c| c["metadata"]["name"].as_str().unwrap().to_owned());
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w,
                "{} differs from `authgate crd` (keep: {keep}): run `make generate`",
                w["metadata"]["name"]
            );
        }
    }
}

/// ApiTokens are access grants: the chart lets namespace editors manage
/// them and viewers see them, through aggregation into the built-in roles,
/// and binds neither role to anyone itself.
#[test]
fn apitoken_roles_aggregate_into_admin_edit_and_view() {
    let Some(h) = helm_bin() else { return };
    let items = render(&h, &chart(), "");
    let rules = |role: &Value| role["rules"].as_array().unwrap().clone();
    let editor = one(&items, "ClusterRole", "ag-authgate-apitoken-editor");
    for label in ["rbac.authorization.k8s.io/aggregate-to-admin", "rbac.authorization.k8s.io/aggregate-to-edit"] {
        assert_eq!(editor["metadata"]["labels"][label], "true", "{label}");
    }
    assert!(editor["metadata"]["labels"].get("rbac.authorization.k8s.io/aggregate-to-view").is_none());
    assert_eq!(
        rules(editor),
        [
            json!({"apiGroups": ["authgate.dev"], "resources": ["apitokens"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]})
        ]
    );
    let viewer = one(&items, "ClusterRole", "ag-authgate-apitoken-viewer");
    assert_eq!(viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"], "true");
    assert_eq!(
        rules(viewer),
        [json!({"apiGroups": ["authgate.dev"], "resources": ["apitokens"], "verbs": ["get", "list", "watch"]})]
    );
    let bound: Vec<&str> = all(&items, "ClusterRoleBinding")
        .iter()
        .chain(all(&items, "RoleBinding").iter())
        .map(|b| b["roleRef"]["name"].as_str().unwrap())
        .collect();
    assert!(!bound.iter().any(|r| r.contains("apitoken")), "{bound:?}");
}
