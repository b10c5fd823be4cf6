//! The structured-merge type of a custom resource, from its CRD version's `openAPIV3Schema`,
//! as kube-openapi's `schemaconv` derives it for server-side apply and managedFields:
//!
//! * objects with `properties` are structs (`x-kubernetes-preserve-unknown-fields` keeps other
//!   keys, typed as deduced); with `additionalProperties` they are maps; either is atomic with
//!   `x-kubernetes-map-type: atomic`;
//! * arrays are atomic unless `x-kubernetes-list-type` is `set` or `map` (keyed by
//!   `x-kubernetes-list-map-keys`);
//! * `x-kubernetes-int-or-string` is an untyped scalar; `x-kubernetes-embedded-resource` objects
//!   have `apiVersion`, `kind` and an ObjectMeta `metadata`, as the resource itself does.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::apply::typed::{Custom, TypeRef};
use crate::schema::SCHEMA;

fn object_meta() -> Custom {
    match SCHEMA.by_name("meta.v1.ObjectMeta") {
        Some(m) => Custom::Builtin(TypeRef::Message(m)),
        None => Custom::Deduced,
    }
}

/// Adds `apiVersion`, `kind` and `metadata` to the fields of a resource (root or embedded).
fn resource_fields(fields: &mut BTreeMap<String, Custom>) {
    fields.insert("apiVersion".into(), Custom::Leaf(Some("string")));
    fields.insert("kind".into(), Custom::Leaf(Some("string")));
    fields.insert("metadata".into(), object_meta());
}

fn convert(s: &Value) -> Custom {
    let preserve = s["x-kubernetes-preserve-unknown-fields"] == true;
    if s["x-kubernetes-int-or-string"] == true {
        return Custom::Leaf(None);
    }
    let embedded = s["x-kubernetes-embedded-resource"] == true;
    match s["type"].as_str().unwrap_or("") {
        "object" | "" if s["properties"].is_object() || embedded => {
            if s["x-kubernetes-map-type"] == "atomic" {
                return Custom::Leaf(None);
            }
            let mut fields: BTreeMap<String, Custom> = s["properties"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), convert(v))).collect();
            if embedded {
                resource_fields(&mut fields);
            }
            Custom::Struct { fields, preserve_unknown: preserve }
        }
        "object" => {
            if s["x-kubernetes-map-type"] == "atomic" {
                return Custom::Leaf(None);
            }
            match s.get("additionalProperties") {
                Some(ap) if ap.is_object() => Custom::Map(Box::new(convert(ap))),
                Some(Value::Bool(true)) => Custom::Deduced,
                _ if preserve => Custom::Deduced,
                _ => Custom::Struct { fields: BTreeMap::new(), preserve_unknown: false },
            }
        }
        "array" => {
            let elem = Box::new(s.get("items").map(convert).unwrap_or(Custom::Deduced));
            match s["x-kubernetes-list-type"].as_str() {
                Some("map") => {
                    let keys = s["x-kubernetes-list-map-keys"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(String::from)).collect();
                    Custom::List { elem, keys: Some(keys) }
                }
                Some("set") => Custom::List { elem, keys: None },
                _ => Custom::Leaf(None),
            }
        }
        "string" => Custom::Leaf(Some("string")),
        "integer" | "number" => Custom::Leaf(Some("numeric")),
        "boolean" => Custom::Leaf(Some("boolean")),
        _ => Custom::Deduced,
    }
}

/// The type of a whole custom resource under `schema` (None: a version without schema, whose
/// fields are all deduced).
pub fn resource_type(schema: Option<&Value>) -> Custom {
    let mut root = match schema.map(convert) {
        Some(Custom::Struct { fields, preserve_unknown }) => Custom::Struct { fields, preserve_unknown },
        Some(Custom::Deduced) | None => Custom::Struct { fields: BTreeMap::new(), preserve_unknown: true },
        Some(_) => Custom::Struct { fields: BTreeMap::new(), preserve_unknown: true },
    };
    if let Custom::Struct { fields, .. } = &mut root {
        resource_fields(fields);
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::apply::merge::to_field_set;
    use serde_json::json;

    #[test]
    fn list_types_and_maps() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "size": {"x-kubernetes-int-or-string": true},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let t = resource_type(Some(&schema));
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {"ports": [{"name": "http", "port": 80}], "tags": ["x"], "args": ["a", "b"], "labels": {"k": "v"}, "size": "10%", "extra": {"free": {"x": 1}}}});
        let set = to_field_set(&obj, TypeRef::Custom(&t));
        let fields = crate::api::apply::fieldset::Set::to_fields_v1(&set);
        let spec = &fields["f:spec"];
        assert!(spec["f:ports"].get("k:{\"name\":\"http\"}").is_some(), "{fields}");
        assert!(spec["f:tags"].get("v:\"x\"").is_some(), "{fields}");
        assert_eq!(spec["f:args"], json!({}), "atomic: {fields}");
        assert!(spec["f:labels"].get("f:k").is_some(), "{fields}");
        assert_eq!(spec["f:size"], json!({}));
        assert!(spec["f:extra"]["f:free"].get("f:x").is_some(), "deduced maps are granular: {fields}");
        assert!(fields["f:metadata"]["f:labels"].get("f:a").is_some(), "{fields}");
    }
}
