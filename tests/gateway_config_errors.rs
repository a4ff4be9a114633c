//! `authgate gateway --config FILE` with a broken file: it refuses to start,
//! says where the problem is (line, column, field), and never echoes a value
//! from the file, so a client secret or a cookie key next to the mistake
//! does not end up in the pod's log.

use std::path::Path;
use std::process::{Command, Stdio};

/// A client secret as an operator would paste it.
const SECRET: &str = "hunter2-supersecret";
/// A cookie key (base64), as the controller writes it.
const KEY: &str = "c2VjcmV0LWNvb2tpZS1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6";

/// Runs the gateway on `yaml`; returns whether it exited successfully and
/// everything it printed.
fn run(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    run_file(&path)
}

fn run_file(path: &Path) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.args(["--log-format", "text", "gateway", "--config"]).arg(path).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AUTHGATE_") {
            cmd.env_remove(k);
        }
    }
    // A bad config fails before anything listens, so this returns at once.
    let out = cmd.output().expect("run gateway");
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), log)
}

fn assert_no_values(log: &str) {
    assert!(!log.contains("hunter2"), "the secret leaked: {log}");
    assert!(!log.contains(&KEY[..12]), "the cookie key leaked: {log}");
}

#[test]
fn syntax_error_next_to_secrets_names_the_place_only() {
    // Line 13 has trailing junk after a quoted scalar; the secret is two
    // lines above it, the cookie key two lines below.
    let yaml = format!(
        "externalUrl: https://app.example.com
upstream: http://app:8080
providers:
- name: corp
  type: oidc
  clientId: authgate
  authorizeUrl: https://id.example.com/auth
  tokenUrl: https://id.example.com/token
  scopes: [openid]
  clientSecret: {SECRET}
  jwksUrl: https://id.example.com/jwks
  issuerUrl: 'https://id.example.com' {SECRET}
session:
  keys: [\"{KEY}\"]
  cookieName: _ag
  ttlSeconds: 3600
"
    );
    let (ok, log) = run(&yaml);
    assert!(!ok, "a broken config must not start: {log}");
    assert_no_values(&log);
    assert!(log.contains("line 12, column "), "names the line and column: {log}");
    assert!(log.contains("gateway.yaml"), "names the file: {log}");
}

#[test]
fn type_error_on_a_field_names_the_field_not_the_value() {
    let yaml = format!(
        "externalUrl: https://app.example.com
upstream: http://app:8080
session:
  cookieName: _ag
  ttlSeconds: \"{SECRET}\"
  keys: [\"{KEY}\"]
"
    );
    let (ok, log) = run(&yaml);
    assert!(!ok, "a broken config must not start: {log}");
    assert_no_values(&log);
    assert!(log.contains("line 5, column 15, field session.ttlSeconds"), "names line, column and field: {log}");
}

#[test]
fn unknown_field_is_named_and_values_are_not() {
    let yaml = format!(
        "externalUrl: https://app.example.com
upstream: http://app:8080
session:
  cookiName: {SECRET}
  ttlSeconds: 3600
  keys: [\"{KEY}\"]
"
    );
    let (ok, log) = run(&yaml);
    assert!(!ok, "a broken config must not start: {log}");
    assert_no_values(&log);
    assert!(log.contains("line 4, column 3, field session: unknown field `cookiName`"), "names the typo: {log}");
    assert!(log.contains("`cookieName`"), "lists the expected fields: {log}");
}

#[test]
fn invalid_url_value_is_not_echoed() {
    let yaml = format!(
        "externalUrl: {SECRET}
upstream: http://app:8080
session:
  cookieName: _ag
  ttlSeconds: 3600
  keys: [\"{KEY}\"]
"
    );
    let (ok, log) = run(&yaml);
    assert!(!ok, "a broken config must not start: {log}");
    assert_no_values(&log);
    assert!(log.contains("line 1, column 14, field externalUrl"), "names the field: {log}");
}
