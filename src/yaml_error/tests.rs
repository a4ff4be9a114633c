use super::*;

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Config {
    external_url: url::Url,
    #[serde(default)]
    providers: Vec<Provider>,
    session: Session,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Provider {
    name: String,
    #[serde(rename = "type")]
    kind: Kind,
    client_secret: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Oidc,
    Github,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Session {
    cookie_name: String,
    ttl_seconds: u64,
    keys: Vec<String>,
}

const SECRET: &str = "hunter2-supersecret";
const KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWg";

fn base() -> String {
    format!(
        "externalUrl: https://app.example.com\nsession:\n  cookieName: _ag\n  ttlSeconds: 3600\n  keys: [\"{KEY}\"]\nproviders:\n- name: corp\n  type: oidc\n  clientSecret: {SECRET}\n"
    )
}

/// Decodes `yaml`, expecting an error that leaks nothing.
fn error(yaml: &str) -> ParseError {
    let e = from_yaml_str::<Config>(yaml).expect_err("should fail");
    let shown = e.to_string();
    assert!(!shown.contains("hunter2"), "secret leaked: {shown}");
    assert!(!shown.contains(&KEY[..10]), "key leaked: {shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
    e
}

#[test]
fn base_config_decodes() {
    from_yaml_str::<Config>(&base()).unwrap();
    let kinds = [Kind::Oidc, Kind::Github];
    assert_eq!(kinds.len(), 2);
}

#[test]
fn syntax_error_has_location_and_no_snippet() {
    let e = error(&format!("{}  scopes: 'openid' {SECRET}\n", base()));
    assert_eq!((e.line(), e.column()), (Some(10), Some(20)), "{e}");
    assert_eq!(
        e.to_string(),
        "line 10, column 20, field providers[0]: invalid trailing content after single-quoted scalar"
    );
    let e = error(&format!("{}  scopes: [openid, {SECRET}\n", base()));
    assert_eq!(e.line(), Some(10), "{e}");
    assert_eq!(e.field(), Some("providers[0].scopes"));
    assert!(e.message().starts_with("unclosed bracket"), "{e}");
    let e = error(&format!("{}  scopes: \"{SECRET}\n", base()));
    assert_eq!(e.message(), "unclosed quote");
}

#[test]
fn type_errors_name_the_field_not_the_value() {
    let e = error(&base().replace("ttlSeconds: 3600", &format!("ttlSeconds: \"{SECRET}\"")));
    assert_eq!(e.to_string(), "line 4, column 15, field session.ttlSeconds: invalid u64");
    let e = error(&base().replace("ttlSeconds: 3600", &format!("ttlSeconds: [{SECRET}]")));
    assert_eq!(e.field(), Some("session.ttlSeconds"));
    let e = error(&base().replace("https://app.example.com", SECRET));
    assert_eq!(e.to_string(), "line 1, column 14, field externalUrl: relative URL without a base");
}

#[test]
fn unknown_names_keep_schema_names_only() {
    let e = error(&base().replace("cookieName", "cookiName"));
    assert_eq!(
        e.to_string(),
        "line 3, column 3, field session: unknown field `cookiName`, expected one of `cookieName`, `ttlSeconds`, `keys`"
    );
    let e = error(&base().replace("type: oidc", &format!("type: {SECRET}")));
    assert_eq!(
        e.to_string(),
        "line 8, column 9, field providers[0].type: unknown variant, expected one of `oidc`, `github`"
    );
    let e = error(&base().replace("  ttlSeconds: 3600\n", ""));
    assert_eq!(e.message(), "missing field `ttlSeconds`");
    assert_eq!(e.field(), Some("session"));
    let e = error(&format!("{}  clientSecret: {SECRET}\n", base()));
    assert_eq!(e.message(), "duplicate key `clientSecret`");
    let e = error(&format!("{}---\nother: {SECRET}\n", base()));
    assert_eq!(e.line(), Some(11));
}

#[test]
fn json_errors_lose_their_values() {
    let value = serde_json::json!({"cookieName": "_ag", "ttlSeconds": SECRET, "keys": [KEY]});
    let e = from_json_value::<Session>(value).unwrap_err();
    assert_eq!(e.to_string(), "field ttlSeconds: invalid type, expected u64");
    let value = serde_json::json!({"cookieName": "_ag", "ttlSeconds": 1, "keys": [KEY], "sesion": SECRET});
    let e = from_json_value::<Session>(value).unwrap_err();
    assert_eq!(e.to_string(), "unknown field `sesion`, expected one of `cookieName`, `ttlSeconds`, `keys`");
    let value = serde_json::json!({"name": "x", "type": SECRET, "clientSecret": SECRET});
    let e = from_json_value::<Provider>(value).unwrap_err();
    assert_eq!(e.to_string(), "field type: unknown variant, expected `oidc` or `github`");
    let e = serde_json::from_str::<Session>(&format!("{{\"cookieName\": \"{SECRET}\", \"ttlSeconds\": -1}}"))
        .map_err(|e| ParseError::from_json(&e, None))
        .unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 54: invalid value, expected u64");
}

#[test]
fn located_decode_of_one_document_of_many() {
    let text = format!(
        "a: 1\n---\n---\nexternalUrl: https://app.example.com\nsession:\n  cookieName: _ag\n  ttlSeconds: \"{SECRET}\"\n  keys: []\n"
    );
    let docs: Vec<serde_json::Value> = from_yaml_multiple(&text).unwrap();
    assert_eq!(docs.len(), 2);
    let err = from_json_value::<Config>(docs[1].clone()).unwrap_err();
    assert_eq!(err.line(), None);
    let located = locate_in_multiple::<Config>(&text, 1, err.clone());
    assert_eq!(located.to_string(), "line 7, column 15, field session.ttlSeconds: invalid type, expected u64");
    // A document that decodes directly keeps the unlocated error.
    assert_eq!(locate_in_multiple::<Config>(&text, 5, err.clone()), err);
    // Sorted keys: JSON stops at `keys`, the file has `ttlSeconds` first.
    let text = format!("---\nttlSeconds: [{SECRET}]\nkeys: {SECRET}\ncookieName: _ag\n");
    let docs: Vec<serde_json::Value> = from_yaml_multiple(&text).unwrap();
    let err = from_json_value::<Session>(docs[0].clone()).unwrap_err();
    assert_eq!(err.field(), Some("keys"));
    let located = locate_in_multiple::<Session>(&text, 0, err);
    assert_eq!(located.to_string(), "line 2, column 13, field ttlSeconds: expected string scalar");
}

#[test]
fn scrub_removes_values_and_keeps_schema_names() {
    for (input, want) in [
        ("invalid type: string \"hunter2\", expected u64", "invalid type, expected u64"),
        ("invalid value: integer `5`, expected a port", "invalid value, expected a port"),
        ("invalid type: map, expected a string", "invalid type, expected a string"),
        ("unknown variant `hunter2`, expected one of `a`, `b`", "unknown variant, expected one of `a`, `b`"),
        ("unknown variant `hunter2`, expected `a` or `b`", "unknown variant, expected `a` or `b`"),
        ("unknown field `sesion`, expected `session`", "unknown field `sesion`, expected `session`"),
        ("missing field `keys`", "missing field `keys`"),
        ("duplicate field `keys`", "duplicate field `keys`"),
        ("empty host: \"hunter2://:\"", "empty host"),
        ("found character '@' that cannot start any token", "found character that cannot start any token"),
        ("it doesn't parse: \"hunter2", "it doesn't parse"),
        ("bad `hunter2` value (`x`)", "bad value"),
        ("invalid value: string \"a, expected b\", expected u8", "invalid value, expected u8"),
    ] {
        let got = scrub(input);
        assert_eq!(got, want, "{input}");
        assert!(!got.contains("hunter2"));
    }
}
