//! Reading claims from a verified token or a userinfo response, shared by
//! the OpenID Connect providers and GitLab's userinfo groups.

use serde_json::{Map, Value};

use crate::access::Membership;

/// A string claim (non-empty).
pub fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A boolean claim; some providers send `"true"` as a string.
pub fn bool_claim(claims: &Map<String, Value>, name: &str) -> bool {
    match claims.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The groups claim: absent means no groups; anything but a string or a
/// list of strings means the data is unusable.
pub fn groups_claim(value: Option<&Value>) -> Membership {
    match value {
        None | Some(Value::Null) => Membership::Known(Vec::new()),
        Some(Value::String(s)) => Membership::Known(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map_or(Membership::Unavailable, Membership::Known),
        Some(_) => Membership::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claim_helpers() {
        let c = map(json!({"email": "a@b.c", "email_verified": "TRUE", "empty": "", "n": 1}));
        assert_eq!(string_claim(&c, "email").as_deref(), Some("a@b.c"));
        assert_eq!(string_claim(&c, "empty"), None);
        assert_eq!(string_claim(&c, "n"), None);
        assert!(bool_claim(&c, "email_verified"));
        assert!(!bool_claim(&map(json!({"email_verified": "no"})), "email_verified"));
        assert!(!bool_claim(&c, "missing"));
    }

    #[test]
    fn groups_shapes() {
        assert_eq!(groups_claim(None), Membership::Known(vec![]));
        assert_eq!(groups_claim(Some(&json!("a"))), Membership::Known(vec!["a".into()]));
        assert_eq!(groups_claim(Some(&json!(["a", "b"]))), Membership::Known(vec!["a".into(), "b".into()]));
        assert_eq!(groups_claim(Some(&json!(["a", 1]))), Membership::Unavailable);
        assert_eq!(groups_claim(Some(&json!({"a": 1}))), Membership::Unavailable);
    }
}
