//! Generated files must match what the code generates: `make generate`.

use std::path::Path;

#[test]
fn crds_and_chart_crds_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["crds", "charts/authgate/crds"] {
        for (name, crd) in authgate::crd::all() {
            let path = root.join(dir).join(name);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == authgate::crd::render(&crd),
                "{} is stale or missing: run `make generate`",
                path.display()
            );
        }
    }
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
