use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: GatewayArgs,
}

fn args(argv: &[&str]) -> GatewaySettings {
    *Cli::parse_from(std::iter::once("gateway").chain(argv.iter().copied())).args.settings
}

fn file() -> GatewayConfig {
    GatewayConfig::from_yaml(
        r#"
externalUrl: https://app.example.com
upstream: http://app:8080
providers:
- name: corp
  type: oidc
  clientId: authgate
  clientSecret: from-file
  issuerUrl: https://id.example.com
  authorizeUrl: https://id.example.com/auth
  tokenUrl: https://id.example.com/token
  jwksUrl: https://id.example.com/jwks
  scopes: [openid, email]
session:
  cookieName: _ag
  ttlSeconds: 3600
  keys: [k1]
"#,
    )
    .unwrap()
}

#[test]
fn flags_override_the_file() {
    let a = args(&[
        "--listen",
        "127.0.0.1:9000",
        "--upstream",
        "http://other:1",
        "--cookie-keys",
        "new,old",
        "--cookie-name",
        "_x",
        "--access",
        "{allowedDomains: [example.com], allowedEmails: [a@example.com]}",
        "--provider-client-secret",
        "from-env",
        "--session-ttl",
        "1h",
        "--authentication",
        "disabled",
    ]);
    let c = merge(Some(file()), &a, None).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(c.upstream.as_ref().map(Url::as_str), Some("http://other:1/"));
    assert_eq!(c.session.keys.iter().map(Redacted::expose).collect::<Vec<_>>(), ["new", "old"]);
    assert_eq!(c.session.cookie_name, "_x");
    assert_eq!(c.session.ttl_seconds, 3600);
    assert_eq!(c.access.allowed_domains, ["example.com"]);
    assert_eq!(c.access.allowed_emails, ["a@example.com"]);
    assert_eq!(c.providers[0].client_secret.expose(), "from-env");
    assert_eq!(c.providers[0].client_id, "authgate");
    assert_eq!(c.authentication, Authentication::Disabled);
}

#[test]
fn a_retired_allow_list_variable_refuses_to_start() {
    let names = |n: &[&str]| n.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
    assert!(refuse_retired_variables(names(&["PATH", "AUTHGATE_ACCESS"])).is_ok());
    let err = refuse_retired_variables(names(&["PATH", "AUTHGATE_ALLOWED_GROUPS"])).unwrap_err().to_string();
    assert!(err.contains("AUTHGATE_ALLOWED_GROUPS") && err.contains("AUTHGATE_ACCESS"), "{err}");
}

#[test]
fn no_file_needs_the_essentials() {
    let err = merge(None, &args(&[]), None).unwrap_err().to_string();
    assert!(err.contains("AUTHGATE_EXTERNAL_URL"), "{err}");
    let c = merge(None, &args(&["--external-url", "http://127.0.0.1:1", "--upstream", "http://127.0.0.1:2"]), None)
        .unwrap();
    assert_eq!(c.session.cookie_name, DEFAULT_COOKIE_NAME);
    assert!(c.providers.is_empty());
}

#[test]
fn provider_patch_needs_one_target() {
    let mut two = file();
    let mut second = two.providers[0].clone();
    second.name = "other".into();
    two.providers.push(second);
    assert!(merge(Some(two.clone()), &args(&["--provider-client-id", "x"]), None).is_err());
    let named = merge(Some(two), &args(&["--provider-name", "other", "--provider-client-id", "x"]), None).unwrap();
    assert_eq!(named.providers[1].client_id, "x");
    assert_eq!(named.providers[0].client_id, "authgate");
}

#[test]
fn secrets_do_not_show_in_debug() {
    let a = args(&["--cookie-keys", "supersecretkey", "--provider-client-secret", "hunter2"]);
    let text = format!("{a:?}");
    assert!(!text.contains("supersecretkey") && !text.contains("hunter2"), "{text}");
}
