//! The OpenAPI definition of a custom resource version, as upstream's CRD OpenAPI builder
//! writes it: the version's `openAPIV3Schema` with `apiVersion`, `kind` and an ObjectMeta
//! `metadata`, and `x-kubernetes-group-version-kind`. The OpenAPI 3.0 form keeps the schema as
//! written; the Swagger 2.0 form drops what 2.0 cannot say (`nullable`, `oneOf`, `anyOf`,
//! `allOf`, `not`, the type of `x-kubernetes-int-or-string`), as upstream's
//! `ToStructuralOpenAPIV2`. The documents themselves are put together in
//! `crate::openapi::custom`.

use serde_json::{json, Map, Value};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// `com.example.v1.Widget` for `example.com/v1, Kind=Widget` (reversed group, as upstream).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            let int_or_string = o.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            for (k, x) in o {
                match k.as_str() {
                    "nullable" | "oneOf" | "anyOf" | "allOf" | "not" => continue,
                    "type" if int_or_string => continue,
                    "properties" | "patternProperties" | "definitions" => {
                        let m = x.as_object().map(|m| m.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect()).unwrap_or_default();
                        out.insert(k.clone(), Value::Object(m));
                    }
                    "items" | "additionalProperties" => {
                        out.insert(k.clone(), to_v2(x));
                    }
                    _ => {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The definition of one version of a custom resource in Swagger 2.0 form (references as
/// `#/definitions/...`) and in OpenAPI 3.0 form (`#/components/schemas/...`).
pub fn definitions(schema: Option<&Value>, group: &str, version: &str, kind: &str) -> (Value, Value) {
    let base = schema.filter(|s| s.is_object()).cloned().unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let build = |mut s: Value, meta_ref: &str| {
        if !s["properties"].is_object() {
            s["properties"] = json!({});
        }
        let props = &mut s["properties"];
        props["apiVersion"] = json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"});
        props["kind"] = json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"});
        props["metadata"] = json!({"$ref": meta_ref, "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
        if s.get("type").is_none() {
            s["type"] = json!("object");
        }
        s["x-kubernetes-group-version-kind"] = json!([{"group": group, "kind": kind, "version": version}]);
        s
    };
    let v2 = build(to_v2(&base), &format!("#/definitions/{OBJECT_META}"));
    let mut v3 = build(base, &format!("#/components/schemas/{OBJECT_META}"));
    // 3.0 ignores siblings of `$ref`: wrap it as the built-in documents do.
    v3["properties"]["metadata"] =
        json!({"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}], "description": v3["properties"]["metadata"]["description"].clone()});
    (v2, v3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_forms() {
        assert_eq!(definition_name("cert-manager.io", "v1", "Certificate"), "io.cert-manager.v1.Certificate");
        let schema = json!({"type": "object", "description": "A widget.", "properties": {"spec": {"type": "object", "nullable": true,
            "properties": {"size": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}}}});
        let (v2, v3) = definitions(Some(&schema), "example.com", "v1", "Widget");
        assert_eq!(v2["description"], "A widget.");
        assert!(v2["properties"]["spec"].get("nullable").is_none());
        assert_eq!(v2["properties"]["spec"]["properties"]["size"], json!({"x-kubernetes-int-or-string": true}));
        assert_eq!(v2["properties"]["metadata"]["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        assert_eq!(v3["properties"]["spec"]["nullable"], true);
        assert_eq!(v3["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
        assert!(v3["properties"]["metadata"]["allOf"].is_array());
    }
}
