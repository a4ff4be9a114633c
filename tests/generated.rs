//! Generated files must match what the code generates: `make generate`.

use std::path::Path;

#[test]
fn crds_and_chart_crd_templates_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = |path: &Path, want: String| {
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(on_disk == want, "{} is stale or missing: run `make generate`", path.display());
    };
    for (name, crd) in authgate::crd::all() {
        fresh(&root.join("crds").join(name), authgate::crd::render(&crd));
        fresh(&root.join("charts/authgate/templates/crds").join(name), authgate::crd::render_template(&crd));
    }
    // Helm installs a chart's crds/ directory besides its templates, and
    // never upgrades it: the CRDs are only templates.
    assert!(!root.join("charts/authgate/crds").exists(), "charts/authgate/crds must not exist");
    let templates: Vec<_> = std::fs::read_dir(root.join("charts/authgate/templates/crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(templates.len(), authgate::crd::all().len(), "a stale CRD template is left over: {templates:?}");
}

#[test]
fn field_reference_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == authgate::crd::reference_markdown(), "docs/reference.md is stale: run `make generate`");
    assert!(on_disk.contains("`spec.allowedTeams`") && on_disk.contains("org/team-slug"));
}

#[test]
fn crds_carry_printer_columns_short_names_and_status() {
    for (_, crd) in authgate::crd::all() {
        let names = &crd.spec.names;
        assert_eq!(names.categories.as_deref(), Some(&["authgate".to_owned()][..]));
        let version = &crd.spec.versions[0];
        let columns: Vec<&str> = version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        assert!(columns.contains(&"Ready") && columns.contains(&"Reason") && columns.contains(&"Age"));
        let message =
            version.additional_printer_columns.iter().flatten().find(|c| c.name == "Message").expect("Message column");
        assert_eq!(message.priority, Some(1));
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    }
}

#[test]
fn crds_explain_themselves_and_key_conditions_by_type() {
    for (name, crd) in authgate::crd::all() {
        let crd = serde_json::to_value(&crd).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let root = schema["description"].as_str().unwrap_or_default();
        assert!(root.len() > 40 && !root.contains("Auto-generated"), "{name}: `kubectl explain` root text: {root:?}");
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]), "{name}");
        let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"].as_array().unwrap().clone();
        let wide: Vec<&str> =
            columns.iter().filter(|c| c["priority"] == 1).filter_map(|c| c["name"].as_str()).collect();
        let shown = ["External URL", "Issuer", "Expires", "Secret"];
        assert!(wide.iter().any(|w| shown.contains(w)), "{name}: {wide:?}");
    }
}
