//! `authgate check`: the offline validation a GitOps pipeline runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures under `dir`, each with the message its first line
/// (`# expect: …`) promises.
fn invalid_fixtures_in(dir: &str) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(root().join(dir))
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

/// Manifests the API server refuses too (the admission test applies them).
fn invalid_fixtures() -> Vec<(PathBuf, String)> {
    invalid_fixtures_in("tests/fixtures/invalid")
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

// ---- `auth-credentials` Secrets in the Foxglove format (issue 12 item 7) ----

fn seed_fixture() -> PathBuf {
    root().join("tests/fixtures/seed/auth-credentials.yaml")
}

/// The one problem `check` reports for `path`, which must be the only one.
fn only_problem(path: &Path) -> authgate::check::Problem {
    let problems = authgate::check::check(&[path.to_path_buf()]).unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

#[test]
fn a_hand_written_seed_secret_passes_as_is() {
    let problems = authgate::check::check(&[seed_fixture()]).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate")).args(["check", "-f"]).arg(seed_fixture()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn every_invalid_seed_secret_is_reported_with_its_message_and_without_its_values() {
    // Secrets the API server admits: only `check` can catch these.
    let fixtures = invalid_fixtures_in("tests/fixtures/seed/invalid");
    assert!(fixtures.len() >= 6);
    let good = std::fs::read_to_string(seed_fixture()).unwrap();
    for (path, expect) in fixtures {
        let p = only_problem(&path);
        assert!(p.file == path && p.message.contains(&expect), "{}: expected {expect:?}, got {p}", path.display());
        // The value the fixture changed appears nowhere in the report.
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#') && !good.contains(*l)) {
            let value = line.split_once(": ").map_or("", |(_, v)| v.trim());
            assert!(value.is_empty() || !p.to_string().contains(value), "{}: {value:?} leaked: {p}", path.display());
        }
    }
}

#[test]
fn a_seed_secret_missing_a_key_is_refused_naming_it() {
    let path = root().join("tests/fixtures/seed/invalid/missing-client-secret.yaml");
    let p = only_problem(&path);
    assert_eq!(p.file, path);
    assert_eq!(p.resource, "Secret foxglove/auth-credentials");
    assert_eq!(p.message, "OAUTH_CLIENT_SECRET is required");
}

#[test]
fn a_seed_secret_with_a_bad_url_is_refused_without_the_url() {
    let p = only_problem(&root().join("tests/fixtures/seed/invalid/token-url-not-url.yaml"));
    assert_eq!(p.message, "OAUTH_TOKEN_URL is not a URL");
    let p = only_problem(&root().join("tests/fixtures/seed/invalid/authorize-url-plain-http.yaml"));
    assert!(p.message.starts_with("OAUTH_AUTHORIZE_URL must be https://"), "{p}");
    assert!(!p.to_string().contains("abc.auth0.com"), "the value is not repeated: {p}");
}

#[test]
fn a_seed_secret_with_a_short_cookie_key_is_refused_without_the_key() {
    let path = root().join("tests/fixtures/seed/invalid/cookie-key-short.yaml");
    let value = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("COOKIE_ENCRYPTION_KEY: ").map(str::to_owned))
        .unwrap();
    let p = only_problem(&path);
    assert!(p.message.starts_with("COOKIE_ENCRYPTION_KEY decodes to 32 bytes; at least 64 are required"), "{p}");
    // Through the CLI too: file, resource and key named, the key itself not.
    let out = Command::new(env!("CARGO_BIN_EXE_authgate")).args(["check", "-f"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cookie-key-short.yaml: Secret foxglove/auth-credentials: COOKIE_ENCRYPTION_KEY"),
        "{stdout}"
    );
    assert!(!stdout.contains(&value) && !stdout.contains(&value[..12]), "the key leaked: {stdout}");
}

#[test]
fn a_seed_secret_in_base64_data_is_read_like_the_api_server_does() {
    // As `kubectl get secret -o yaml` shows it, or as the controller writes it.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let text = std::fs::read_to_string(seed_fixture()).unwrap();
    let string_data: serde_json::Value =
        serde_saphyr::from_str::<serde_json::Value>(&text).unwrap()["stringData"].clone();
    let data: serde_json::Map<String, serde_json::Value> = string_data
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), b64(v.as_str().unwrap()).into()))
        .chain([("gateway.yaml".to_owned(), b64("externalUrl: https://data.loader.dev\n").into())])
        .collect();
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "grafana-auth-credentials", "namespace": "team-a"},
        "data": data,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.yaml");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    assert!(authgate::check::check(std::slice::from_ref(&path)).unwrap().is_empty());
    // Scopes written space-separated (what the controller used to write) are refused.
    let mut bad = doc.clone();
    bad["data"]["OAUTH_REQUESTED_SCOPES"] = b64("read:org user:email").into();
    std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
    let p = only_problem(&path);
    assert_eq!(p.resource, "Secret team-a/grafana-auth-credentials");
    assert!(p.message.contains("OAUTH_REQUESTED_SCOPES is a comma-separated list"), "{p}");
}

#[test]
fn other_secrets_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tls.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==, tls.key: eA==}\n",
    )
    .unwrap();
    assert!(authgate::check::check(&[dir.path().to_path_buf()]).unwrap().is_empty());
}

#[test]
fn the_documented_seed_secret_passes() {
    let doc = std::fs::read_to_string(root().join("docs/seed-format.md")).unwrap();
    let yaml = doc.split("```yaml\n").nth(1).and_then(|b| b.split("```").next()).expect("a yaml block");
    assert!(yaml.contains("kind: Secret"), "the first yaml block is the Secret:\n{yaml}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.yaml"), yaml).unwrap();
    let problems = authgate::check::check(&[dir.path().to_path_buf()]).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn session_revocations_are_decoded_strictly_and_must_name_a_checked_policy() {
    let dir = tempfile::tempdir().unwrap();
    let doc = |name: &str, spec: &str| {
        format!(
            "apiVersion: authgate.dev/v1alpha1\nkind: SessionRevocation\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        )
    };
    let file = dir.path().join("revocations.yaml");
    let text = [
        doc("ok", "{policy: grafana, user: alice}"),
        doc("everywhere", "{email: bob@example.com}"),
        doc("typo", "{policy: grafana, users: alice}"),
        doc("lost", "{policy: nope, user: alice}"),
        doc("nobody", "{policy: grafana}"),
    ]
    .join("---\n");
    std::fs::write(&file, text).unwrap();
    let problems = authgate::check::check(&[file.clone(), root().join("examples/policies.yaml")]).unwrap();
    let of = |needle: &str| problems.iter().filter(|p| p.file == file && p.resource.contains(needle)).count();
    assert!(
        problems.iter().any(|p| p.message.contains("unknown field `users`") && p.message.contains("line 14")),
        "{problems:#?}"
    );
    let lost = problems.iter().find(|p| p.resource == "SessionRevocation default/lost").expect("lost reported");
    assert!(lost.message.contains(r#"policy "nope" is not defined in namespace default"#), "{}", lost.message);
    assert!(
        problems.iter().any(|p| p.resource == "SessionRevocation default/nobody"
            && p.message.contains("a SessionRevocation names a user, an email, or both")),
        "{problems:#?}"
    );
    assert_eq!(of("default/ok") + of("default/everywhere"), 0, "{problems:#?}");
    assert_eq!(
        of("default/typo") + of("default/lost") + of("default/nobody"),
        problems.iter().filter(|p| p.file == file).count()
    );
}

// ---- strict structural schema, stdin, output formats, exit codes (issue 14 item 7) ----

/// Runs `authgate check` with `args`, `stdin` piped in; returns the exit
/// code, standard output and standard error.
fn check_stdin(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("check")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn policy_yaml(extra: &str) -> String {
    format!(
        "apiVersion: authgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {{name: app, namespace: team}}\nspec:\n  upstream: {{url: 'http://app:8080'}}\n  externalUrl: https://app.example.com\n  providers: [corp]\n  access: {{allowedGroups: [sre]}}\n{extra}"
    )
}

const CORP: &str = "apiVersion: authgate.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {name: corp, namespace: team}\nspec: {type: oidc, issuerUrl: 'https://id.example.com', clientId: app, clientSecretRef: {name: corp}}\n";

#[test]
fn what_the_apiserver_refuses_check_refuses_naming_the_field_and_the_limit_in_text_and_json() {
    let cases = [
        ("  gateway: {replicas: 500}\n", "spec.gateway.replicas: Invalid value: should be less than or equal to 100"),
        (
            "  session: {cookieName: '_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}\n",
            "spec.session.cookieName: Too long: may not be more than 64 bytes",
        ),
        (
            "  publicPaths: [/a, /b, /c, /d, /e, /f, /g, /h, /i, /j, /k, /l, /m, /n, /o, /p, /q]\n",
            "spec.publicPaths: Too many: 17: must have at most 16 items",
        ),
        ("  sesion: {ttl: 8h}\n", "unknown field \"spec.sesion\""),
        ("  scopes: [{methods: [GET]}]\n", "spec.scopes[0].name: Required value"),
        (
            "  authentication: Sometimes\n",
            "field spec.authentication: unknown variant, expected `Enabled` or `Disabled`",
        ),
    ];
    for (extra, expected) in cases {
        let input = format!("{CORP}---\n{}", policy_yaml(extra));
        let (code, out, err) = check_stdin(&["-f", "-"], &input);
        assert_eq!(code, Some(1), "{extra}: {out}{err}");
        assert!(out.contains(expected), "{extra}: expected {expected:?} in text:\n{out}");
        assert!(out.contains("-: AuthPolicy team/app: "), "stdin is named `-`: {out}");
        let (code, out, _) = check_stdin(&["-f", "-", "-o", "json"], &input);
        assert_eq!(code, Some(1));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(report["errors"].as_u64().unwrap() >= 1, "{report}");
        let messages: Vec<&str> =
            report["problems"].as_array().unwrap().iter().filter_map(|p| p["message"].as_str()).collect();
        assert!(messages.iter().any(|m| m.contains(expected)), "{extra}: {messages:?}");
    }
    // A wrong type keeps the decoder's line and column.
    let wrong_type = policy_yaml("").replace("providers: [corp]", "providers: corp");
    let (code, out, _) = check_stdin(&["-f", "-"], &format!("{CORP}---\n{wrong_type}"));
    assert_eq!(code, Some(1));
    assert!(out.contains("field spec.providers") && out.contains("line "), "{out}");
}

#[test]
fn the_exit_codes_hold_and_are_documented() {
    let good = format!("{CORP}---\n{}", policy_yaml(""));
    let (code, out, _) = check_stdin(&["-f", "-"], &good);
    assert_eq!((code, out.as_str()), (Some(0), "ok: no problems found\n"));
    let (code, _, _) = check_stdin(&["-f", "-"], &policy_yaml("  sesion: {}\n"));
    assert_eq!(code, Some(1));
    let (code, _, err) = check_stdin(&["-f", "/nonexistent/manifests"], "");
    assert_eq!(code, Some(2), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_authgate")).args(["check", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for line in ["0  no errors", "1  problems found", "2  the input could not be read", "--namespace", "--output"] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn missing_references_can_be_warnings_and_the_namespace_defaults() {
    // The policy names `corp`, which is not among the checked files.
    let lone = policy_yaml("");
    let (code, out, _) = check_stdin(&["-f", "-"], &lone);
    assert_eq!(code, Some(1));
    assert!(out.contains("MissingReference: provider \"corp\" is not defined"), "{out}");
    let (code, out, _) = check_stdin(&["-f", "-", "--allow-missing-refs"], &lone);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: MissingReference"), "{out}");
    // Without a namespace, documents land in --namespace's, so the
    // provider and the policy meet there.
    let bare = |text: &str| text.replace(", namespace: team", "");
    let input = format!("{}---\n{}", bare(CORP), bare(&policy_yaml("")));
    let (code, out, _) = check_stdin(&["-f", "-", "-n", "team"], &input);
    assert_eq!(code, Some(0), "{out}");
    let junit = check_stdin(&["-f", "-", "-o", "junit", "-n", "other"], &bare(&policy_yaml(""))).1;
    assert!(junit.contains("AuthPolicy other/app") && junit.contains("<failure"), "{junit}");
}

#[test]
fn api_tokens_need_a_checked_policy_its_scopes_and_a_ttl_within_the_maximum() {
    let token = |name: &str, spec: &str| {
        format!(
            "apiVersion: authgate.dev/v1alpha1\nkind: ApiToken\nmetadata: {{name: {name}, namespace: team}}\nspec: {spec}\n"
        )
    };
    let scoped = policy_yaml("  scopes:\n    - {name: read, methods: [GET]}\n    - {name: admin}\n");
    let text = [
        CORP.to_owned(),
        scoped,
        token("ok", "{policy: app, user: ci, scopes: [read], ttl: 720h}"),
        token("lost", "{policy: nope, user: ci, ttl: 1h}"),
        token("unknown-scope", "{policy: app, user: ci, scopes: [read, write], ttl: 1h}"),
        token("forever", "{policy: app, user: ci, scopes: [read], ttl: 8761h}"),
        token("typo", "{policy: app, user: ci, ttl: 1h, scope: [read]}"),
        token("no-ttl", "{policy: app, user: ci}"),
    ]
    .join("---\n");
    let (code, stdout, _) = check_stdin(&["-f", "-", "-o", "json"], &text);
    assert_eq!(code, Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let problems = report["problems"].as_array().expect("a problems array");
    let of = |name: &str| -> Vec<String> {
        problems
            .iter()
            .filter(|p| p["resource"].as_str().is_some_and(|r| r.ends_with(&format!("team/{name}"))))
            .map(|p| p["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(of("ok").is_empty(), "{stdout}");
    let lost = of("lost");
    assert!(lost.len() == 1 && lost[0].contains(r#"policy "nope" is not defined in namespace team"#), "{lost:?}");
    let unknown = of("unknown-scope");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains(r#""write" is not a scope of AuthPolicy team/app (it defines read, admin)"#));
    assert!(of("forever").iter().any(|m| m.contains("ttl") && m.contains("8760h")), "{:?}", of("forever"));
    assert!(of("typo").iter().any(|m| m.contains("scope")), "{:?}", of("typo"));
    assert!(of("no-ttl").iter().any(|m| m.contains("ttl")), "{:?}", of("no-ttl"));

    // A missing policy is only a warning with --allow-missing-refs.
    let lone = token("lost", "{policy: nope, user: ci, ttl: 1h}");
    let (code, stdout, _) = check_stdin(&["-f", "-", "-o", "json", "--allow-missing-refs"], &lone);
    assert_eq!(code, Some(0), "{stdout}");
    // A policy without scopes gives full access: naming none is fine.
    let open = [CORP.to_owned(), policy_yaml(""), token("any", "{policy: app, user: ci, scopes: [read], ttl: 1h}")]
        .join("---\n");
    let (code, stdout, _) = check_stdin(&["-f", "-", "-o", "json"], &open);
    assert_eq!(code, Some(0), "{stdout}");
}
