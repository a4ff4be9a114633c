//! `authgate check` on an `auth-credentials` Secret in the Foxglove
//! remote-data-loader format, the one a gateway runs from with `envFrom`:
//! required keys, URLs, the cookie key's length and comma-separated scopes,
//! by the rules of [`crate::contract::seed`]. Messages name the key and the
//! problem, never a value.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::contract::seed::{self, SeedError};

/// Name of the Secret in the Foxglove template; the controller's are
/// `<policy>-auth-credentials`.
const NAME: &str = "auth-credentials";

/// Whether `doc` (any manifest) is a Secret in the seed format: a `v1`
/// Secret named `auth-credentials` or `…-auth-credentials`, or holding an
/// `OAUTH_*` key.
pub(super) fn is_auth_credentials(doc: &Value) -> bool {
    if doc.get("apiVersion").and_then(Value::as_str) != Some("v1")
        || doc.get("kind").and_then(Value::as_str) != Some("Secret")
    {
        return false;
    }
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let oauth_key = ["data", "stringData"]
        .iter()
        .filter_map(|field| doc.get(field).and_then(Value::as_object))
        .any(|map| map.keys().any(|k| k.starts_with("OAUTH_")));
    name == NAME || name.ends_with(&format!("-{NAME}")) || oauth_key
}

/// `Secret namespace/name`, as problems name resources.
pub(super) fn label(doc: &Value) -> String {
    let meta = |field: &str| doc.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).map(str::to_owned);
    format!(
        "Secret {}/{}",
        meta("namespace").unwrap_or_else(|| "default".into()),
        meta("name").unwrap_or_else(|| "(unnamed)".into())
    )
}

/// Every problem of the Secret `doc`.
pub(super) fn problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    // Key → its value, or `None` when present but unreadable (reported).
    let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
    // `data` first: `stringData` wins on apply, as the API server merges.
    for field in ["data", "stringData"] {
        let Some(map) = doc.get(field) else { continue };
        let Some(map) = map.as_object() else {
            out.push(format!("{field} must be a map of key to value"));
            continue;
        };
        for (key, value) in map {
            let read = match (field, value) {
                ("data", Value::String(b64)) => STANDARD
                    .decode(b64.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| format!("data.{key} is not base64 of UTF-8 text")),
                (_, Value::String(text)) => Ok(text.clone()),
                (_, Value::Null) => Err(format!("{field}.{key} has no value")),
                _ => Err(format!("{field}.{key} is not a string (quote it)")),
            };
            match read {
                Ok(v) => values.insert(key.clone(), Some(v)),
                Err(m) => {
                    out.push(m);
                    values.insert(key.clone(), None)
                }
            };
        }
    }
    let reported: Vec<&str> = values.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.as_str()).collect();
    for e in seed::problems(|key| values.get(key).cloned().flatten()) {
        if matches!(e, SeedError::Missing(key) if reported.contains(&key)) {
            continue;
        }
        out.push(e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Value {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn recognised_by_name_or_keys_only_when_a_v1_secret() {
        assert!(is_auth_credentials(&doc("apiVersion: v1\nkind: Secret\nmetadata: {name: auth-credentials}\n")));
        assert!(is_auth_credentials(&doc(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: grafana-auth-credentials}\n"
        )));
        assert!(is_auth_credentials(&doc(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {OAUTH_CLIENT_ID: a}\n"
        )));
        assert!(!is_auth_credentials(&doc(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ndata: {ca.crt: eA==}\n"
        )));
        assert!(!is_auth_credentials(&doc("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: auth-credentials}\n")));
    }

    #[test]
    fn string_data_wins_and_unreadable_values_are_named_once() {
        let d = doc(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: auth-credentials}\ndata:\n  OAUTH_CLIENT_ID: '!!notbase64'\n  OAUTH_TOKEN_URL: aHR0cDovL2lkLmV4YW1wbGUuY29tL3Rva2Vu\nstringData:\n  OAUTH_CLIENT_SECRET:\n  OAUTH_TOKEN_URL: https://id.example.com/token\n",
        );
        let found = problems(&d);
        assert!(found.contains(&"data.OAUTH_CLIENT_ID is not base64 of UTF-8 text".to_owned()), "{found:#?}");
        assert!(found.contains(&"stringData.OAUTH_CLIENT_SECRET has no value".to_owned()), "{found:#?}");
        assert!(!found.iter().any(|m| m.contains("OAUTH_CLIENT_ID is required")), "{found:#?}");
        assert!(!found.iter().any(|m| m.contains("OAUTH_TOKEN_URL")), "stringData overrides data: {found:#?}");
        assert!(found.iter().any(|m| m == "OAUTH_AUTHORIZE_URL is required"), "{found:#?}");
    }
}
