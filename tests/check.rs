//! `authgate check`: the offline validation a GitOps pipeline runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn invalid_fixtures() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(root().join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let expect = text.lines().next().unwrap().trim_start_matches("# expect: ").to_owned();
            (p, expect)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn examples_pass() {
    let problems = authgate::check::check(&[root().join("examples")]).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_invalid_fixture_is_reported_with_its_message() {
    let fixtures = invalid_fixtures();
    assert!(fixtures.len() >= 10);
    for (path, expect) in fixtures {
        let problems = authgate::check::check(&[path.clone(), root().join("examples")]).unwrap();
        assert!(
            problems.iter().any(|p| p.file == path && p.message.contains(&expect)),
            "{}: expected a problem containing {expect:?}, got {problems:#?}",
            path.display()
        );
    }
}

#[test]
fn duplicate_type_across_files_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let doc = |name: &str| {
        format!(
            "apiVersion: authgate.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: {name}, namespace: team-a}}\nspec:\n  type: github\n  clientId: x\n  clientSecretRef: {{name: s}}\n  allowedOrgs: [acme]\n"
        )
    };
    std::fs::write(dir.path().join("a.yaml"), doc("first")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), doc("second")).unwrap();
    let problems = authgate::check::check(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].resource.contains("team-a/second"));
    assert!(problems[0].message.contains("DuplicateType") && problems[0].message.contains("first"));
}

#[test]
fn open_public_provider_without_restriction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("all.yaml"),
        "apiVersion: authgate.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {name: gh}\nspec: {type: github, clientId: x, clientSecretRef: {name: s}}\n---\napiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: open}\nspec:\n  upstream: {url: 'http://app:80'}\n  externalUrl: https://app.example.com\n  providers: [gh]\n",
    )
    .unwrap();
    let problems = authgate::check::check(&[dir.path().to_path_buf()]).unwrap();
    assert!(problems.iter().any(|p| p.message.contains("NoAccessRestriction")), "{problems:#?}");
    std::fs::write(
        dir.path().join("all.yaml"),
        std::fs::read_to_string(dir.path().join("all.yaml")).unwrap() + "  access: {allowAllUsers: true}\n",
    )
    .unwrap();
    assert!(authgate::check::check(&[dir.path().to_path_buf()]).unwrap().is_empty());
}

#[test]
fn cli_exit_code_and_output_fit_for_ci() {
    let bin = env!("CARGO_BIN_EXE_authgate");
    let ok = Command::new(bin).args(["check", "-f"]).arg(root().join("examples")).output().unwrap();
    assert!(ok.status.success());
    let bad = root().join("tests/fixtures/invalid/oidc-without-issuer.yaml");
    let out = Command::new(bin).args(["check", "-f"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("oidc-without-issuer.yaml"), "{stdout}");
    assert!(stdout.contains("IdentityProvider default/oidc-without-issuer"), "{stdout}");
    assert!(stdout.contains("issuerUrl is required when type is oidc"), "{stdout}");
    let missing = Command::new(bin).args(["check", "-f", "/nonexistent/path"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// `authgate check -f FILE` on `text`: exit code and everything printed.
fn check_cli(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate")).args(["check", "-f"]).arg(&path).output().unwrap();
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), log)
}

const MANIFEST_HEAD: &str =
    "apiVersion: authgate.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {name: gh}\nspec:\n  type: github\n";

#[test]
fn yaml_syntax_error_never_prints_values_from_the_manifest() {
    // Trailing junk on the line after a secret-looking value.
    let text =
        format!("{MANIFEST_HEAD}  clientId: hunter2-supersecret\n  clientSecretRef: {{name: s}} hunter2-trailing\n");
    let (code, log) = check_cli(&text);
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains("hunter2"), "a value leaked: {log}");
    assert!(log.contains("idp.yaml: -: invalid YAML: line 7, column 30"), "{log}");
}

#[test]
fn schema_error_never_prints_values_from_the_manifest() {
    // A string where a list belongs, holding a secret-looking value.
    let text = format!(
        "---\n{MANIFEST_HEAD}  clientId: x\n  clientSecretRef: {{name: s}}\n  allowedOrgs: hunter2-supersecret\n"
    );
    let (code, log) = check_cli(&text);
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains("hunter2"), "a value leaked: {log}");
    assert!(log.contains("does not match the schema: line 9, column 16, field spec.allowedOrgs: "), "{log}");
}

#[test]
fn a_policy_allow_list_error_names_its_line_and_field() {
    // `access` embeds the shared allow-list; its errors keep their place.
    let text = "apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: p}\nspec:\n  upstream: {url: 'http://a'}\n  externalUrl: https://x\n  providers: [gh]\n  access:\n    allowAllUsers: true\n    allowedEmails: hunter2@example.com\n";
    let (code, log) = check_cli(text);
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains("hunter2"), "a value leaked: {log}");
    assert!(log.contains("does not match the schema: line 10, column 20, field spec.access.allowedEmails: "), "{log}");
}
