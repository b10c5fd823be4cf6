//! Embedded resources (`x-kubernetes-embedded-resource`): their `apiVersion`, `kind` and
//! `metadata` are validated as upstream's `objectmeta.Validate` does (the root's are the
//! caller's: generic ObjectMeta validation).

use serde_json::{json, Map, Value};

use super::node::Node;
use super::path::{child, index, key};
use super::render::invalid;
use crate::api::status::FieldError;
use crate::validation::{dns1035_label_errors, validate_object_meta, NameRule};

/// Validates the embedded resources inside `x` (schema `s`) under `path`.
pub fn validate(path: &str, x: &Value, s: Option<&Node>, errs: &mut Vec<FieldError>) {
    let Some(s) = s else { return };
    match x {
        Value::Object(m) => {
            if s.embedded_resource {
                embedded(path, m, errs);
            }
            for (k, v) in m {
                if let Some(p) = s.properties.get(k) {
                    validate(&child(path, k), v, Some(p), errs);
                } else if s.additional_properties.is_some() {
                    validate(&key(path, k), v, s.additional_schema(), errs);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                validate(&index(path, i), v, s.items.as_deref(), errs);
            }
        }
        _ => {}
    }
}

fn embedded(path: &str, x: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    if !x.contains_key("apiVersion") {
        errs.push(FieldError::required(child(path, "apiVersion"), ""));
    }
    if !x.contains_key("kind") {
        errs.push(FieldError::required(child(path, "kind"), ""));
    }
    for (k, v) in x {
        match k.as_str() {
            "apiVersion" => match v.as_str() {
                None => errs.push(invalid(child(path, "apiVersion"), v, "must be a string")),
                Some("") => errs.push(FieldError::required(child(path, "apiVersion"), "")),
                Some(av) if av.matches('/').count() > 1 => {
                    errs.push(FieldError::invalid(child(path, "apiVersion"), av, format!("unexpected GroupVersion string: {av}")))
                }
                Some(_) => {}
            },
            "kind" => match v.as_str() {
                None => errs.push(invalid(child(path, "kind"), v, "must be a string")),
                Some("") => errs.push(FieldError::required(child(path, "kind"), "")),
                Some(kind) => {
                    let e = dns1035_label_errors(&kind.to_lowercase());
                    if !e.is_empty() {
                        errs.push(FieldError::invalid(child(path, "kind"), kind, format!("may have mixed case, but should otherwise match: {}", e.join(","))));
                    }
                }
            },
            "metadata" => match decode_error(v) {
                Some(e) => errs.push(invalid(child(path, "metadata"), v, e)),
                None => {
                    let mut md = v.clone();
                    if md.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
                        md["name"] = json!("fakename");
                    }
                    let namespaced = md.get("namespace").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
                    let mut inner = Vec::new();
                    validate_object_meta(&json!({ "metadata": md }), namespaced, NameRule::PathSegment, &mut inner);
                    for mut e in inner {
                        e.field = child(path, &e.field);
                        errs.push(e);
                    }
                }
            },
            _ => {}
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The error decoding `v` into a `metav1.ObjectMeta` would give (Go's encoding/json wording).
pub fn decode_error(v: &Value) -> Option<String> {
    let Value::Object(m) = v else {
        if v.is_null() {
            return None;
        }
        return Some(format!("json: cannot unmarshal {} into Go value of type v1.ObjectMeta", json_kind(v)));
    };
    for (k, f) in m {
        if f.is_null() {
            continue;
        }
        let go_type = match k.as_str() {
            "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion" => (!f.is_string()).then_some("string"),
            "generation" | "deletionGracePeriodSeconds" => (!f.is_i64()).then_some("int64"),
            "creationTimestamp" | "deletionTimestamp" => {
                if let Some(s) = f.as_str() {
                    if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                        return Some(format!("parsing time \"{s}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"{s}\" as \"2006\""));
                    }
                    None
                } else {
                    Some("v1.Time")
                }
            }
            "labels" | "annotations" => match f {
                Value::Object(inner) => inner.values().any(|x| !x.is_string() && !x.is_null()).then_some("string"),
                _ => Some("map[string]string"),
            },
            "finalizers" => match f {
                Value::Array(a) => a.iter().any(|x| !x.is_string() && !x.is_null()).then_some("string"),
                _ => Some("[]string"),
            },
            "ownerReferences" => (!f.is_array()).then_some("[]v1.OwnerReference"),
            "managedFields" => (!f.is_array()).then_some("[]v1.ManagedFieldsEntry"),
            _ => None,
        };
        if let Some(t) = go_type {
            return Some(format!("json: cannot unmarshal {} into Go struct field ObjectMeta.{k} of type {t}", json_kind(f)));
        }
    }
    None
}
