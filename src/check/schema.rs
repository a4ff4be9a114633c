//! The CRDs' structural schema, applied to a manifest the way the
//! apiserver applies it with kubectl's strict field validation: types,
//! enums, required fields, ranges, lengths, item counts, patterns and
//! unknown fields. The schema is the one `authgate crd` generates from the
//! Rust types ([`crate::crd::all`]), walked here, so the two never drift.
//!
//! Messages follow the apiserver's wording (`spec.session.ttl: Too long:
//! may not be more than 32 bytes`, `unknown field "spec.sesion"`) and
//! never quote a value from the manifest: a Secret reference may sit next
//! to something sensitive.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// The `openAPIV3Schema` of every authgate kind, by kind.
static SCHEMAS: LazyLock<HashMap<String, Value>> = LazyLock::new(|| {
    crate::crd::all()
        .into_iter()
        .filter_map(|(_, crd)| {
            let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
            Some((crd.spec.names.kind.clone(), serde_json::to_value(schema).ok()?))
        })
        .collect()
});

/// What is wrong with `doc` (a whole manifest of `kind`) under its CRD's
/// schema; empty when it passes or the kind is not ours.
pub fn problems(kind: &str, doc: &Value) -> Vec<String> {
    let Some(schema) = SCHEMAS.get(kind) else { return Vec::new() };
    let mut out = Vec::new();
    let Some(obj) = doc.as_object() else {
        out.push("the document is not an object".to_owned());
        return out;
    };
    // The envelope: metadata is the apiserver's own (ObjectMeta), the rest
    // the CRD's.
    let props = schema.get("properties").and_then(Value::as_object);
    for (key, value) in obj {
        match key.as_str() {
            "apiVersion" | "kind" | "metadata" => {}
            _ => match props.and_then(|p| p.get(key)) {
                Some(sub) => walk(sub, value, key, &mut out),
                None => out.push(format!("unknown field {key:?}")),
            },
        }
    }
    for required in strings(schema.get("required")) {
        if !obj.contains_key(required) {
            out.push(format!("{required}: Required value"));
        }
    }
    out
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        // The apiserver drops a null of a non-nullable field; a nullable
        // one keeps it. Either way nothing below it to check.
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if int_or_string {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            out.push(format!("{path}: Invalid value: must be an integer or a string"));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(ty, value)
    {
        out.push(format!("{path}: Invalid value: must be of type {ty}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        out.push(format!("{path}: Unsupported value: supported values: {}", names.join(", ")));
    }
    match value {
        Value::Object(obj) => object(schema, obj, path, out),
        Value::Array(items) => array(schema, items, path, out),
        Value::String(s) => string(schema, s, path, out),
        Value::Number(n) => number(schema, n.as_f64().unwrap_or_default(), path, out),
        _ => {}
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn object(schema: &Value, obj: &Map<String, Value>, path: &str, out: &mut Vec<String>) {
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, value) in obj {
        let sub_path = format!("{path}.{key}");
        match (props.and_then(|p| p.get(key)), additional) {
            (Some(sub), _) | (None, Some(sub)) => walk(sub, value, &sub_path, out),
            (None, None) if preserve || (props.is_none() && schema.get("additionalProperties").is_some()) => {}
            (None, None) => out.push(format!("unknown field {sub_path:?}")),
        }
    }
    for required in strings(schema.get("required")) {
        if !obj.contains_key(required) {
            out.push(format!("{path}.{required}: Required value"));
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && obj.len() as u64 > max
    {
        out.push(format!("{path}: Too many: {}: must have at most {max} items", obj.len()));
    }
}

fn array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<String>) {
    let count = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        out.push(format!("{path}: Too many: {count}: must have at most {max} items"));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        out.push(format!("{path}: Invalid value: must have at least {min} items"));
    }
    if let Some(item) = schema.get("items") {
        for (i, v) in items.iter().enumerate() {
            walk(item, v, &format!("{path}[{i}]"), out);
        }
    }
}

fn string(schema: &Value, s: &str, path: &str, out: &mut Vec<String>) {
    let chars = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        out.push(format!("{path}: Too long: may not be more than {max} bytes"));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        out.push(format!("{path}: Invalid value: should be at least {min} chars long"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => out.push(format!("{path}: Invalid value: should match '{pattern}'")),
            Ok(_) => {}
            Err(_) => out.push(format!("{path}: the schema's pattern cannot be evaluated offline")),
        }
    }
}

fn number(schema: &Value, n: f64, path: &str, out: &mut Vec<String>) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    if let Some(max) = bound("maximum")
        && (n > max || (exclusive("exclusiveMaximum") && n >= max))
    {
        out.push(format!("{path}: Invalid value: should be less than or equal to {max}"));
    }
    if let Some(min) = bound("minimum")
        && (n < min || (exclusive("exclusiveMinimum") && n <= min))
    {
        out.push(format!("{path}: Invalid value: should be greater than or equal to {min}"));
    }
}

#[cfg(test)]
mod tests;
