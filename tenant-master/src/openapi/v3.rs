//! `/openapi/v3/<group-version>`: one OpenAPI 3.0 document per group version (and for `api`,
//! `apis`, `apis/<group>`, `version`), each with its paths and only the schemas they reach,
//! as kube-apiserver's kube-openapi `builder3` writes them: references are
//! `#/components/schemas/<name>`, a reference with siblings (`description`, extensions) is
//! wrapped in `allOf` (3.0 ignores siblings of `$ref`, kubectl's explain prints them), and
//! parameters are inline.

use serde_json::{json, Map, Value};

use super::model::{closure, roots_of, Operation, Param, PathItem, Spec};
use super::KUBE_GIT_VERSION;

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Rewrites a Swagger 2.0 schema for OpenAPI 3.0. Only schema positions are rewritten
/// (`properties` values, `items`, `allOf`, ...): values such as `default` or `enum` and the
/// property names themselves are data and stay as they are.
pub fn convert_schema(v: &Value) -> Value {
    let Value::Object(o) = v else { return v.clone() };
    let mut out = Map::new();
    let mut reference = None;
    for (k, x) in o {
        let converted = match (k.as_str(), x) {
            ("$ref", Value::String(r)) => {
                reference = Some(schema_ref(super::model::ref_name(r)));
                continue;
            }
            ("properties" | "patternProperties" | "definitions", Value::Object(m)) => {
                Value::Object(m.iter().map(|(n, s)| (n.clone(), convert_schema(s))).collect())
            }
            ("items" | "additionalProperties" | "not", Value::Object(_)) => convert_schema(x),
            ("items" | "allOf" | "oneOf" | "anyOf", Value::Array(a)) => Value::Array(a.iter().map(convert_schema).collect()),
            _ => x.clone(),
        };
        out.insert(k.clone(), converted);
    }
    match reference {
        Some(r) if out.is_empty() => r,
        Some(r) => {
            let mut wrapped = Map::new();
            wrapped.insert("allOf".into(), json!([r]));
            wrapped.extend(out);
            Value::Object(wrapped)
        }
        None => Value::Object(out),
    }
}

fn param_json(p: &Param) -> Value {
    let mut o = json!({"name": p.name, "in": p.location.as_str(), "description": p.description});
    if p.required {
        o["required"] = json!(true);
    }
    o["schema"] = json!({"type": p.ty, "uniqueItems": true});
    o
}

fn content(types: &[&str], def: &str) -> Value {
    let mut c = Map::new();
    for t in types {
        c.insert(t.to_string(), json!({"schema": schema_ref(def)}));
    }
    Value::Object(c)
}

fn operation_json(op: &Operation) -> Value {
    let mut o = json!({"tags": [op.tag], "description": op.description, "operationId": op.id});
    if !op.params.is_empty() {
        o["parameters"] = Value::Array(op.params.iter().map(param_json).collect());
    }
    if let Some(b) = &op.body {
        o["requestBody"] = json!({"content": content(op.consumes, &b.definition), "required": b.required});
    }
    let mut responses = Map::new();
    for r in &op.responses {
        let mut v = json!({"description": r.description()});
        if let Some(d) = &r.definition {
            v["content"] = content(op.produces, d);
        }
        responses.insert(r.code.to_string(), v);
    }
    o["responses"] = Value::Object(responses);
    if let Some(a) = op.action {
        o["x-kubernetes-action"] = json!(a);
    }
    if let Some(g) = &op.gvk {
        o["x-kubernetes-group-version-kind"] = g.to_json();
    }
    o
}

fn path_json(p: &PathItem) -> Value {
    let mut o = Map::new();
    for op in &p.operations {
        o.insert(op.method.as_str().into(), operation_json(op));
    }
    if !p.params.is_empty() {
        o.insert("parameters".into(), Value::Array(p.params.iter().map(param_json).collect()));
    }
    Value::Object(o)
}

/// The OpenAPI 3.0 document of one `/openapi/v3` key (`apis/apps/v1`, `api/v1`, ...).
pub fn document(spec: &Spec, paths: &[PathItem]) -> Value {
    let mut p = Map::new();
    for item in paths {
        p.insert(item.path.clone(), path_json(item));
    }
    let mut schemas = Map::new();
    for name in closure(&spec.definitions, roots_of(paths)) {
        let v = match spec.v3_overrides.get(&name) {
            Some(o) => o.clone(),
            None => convert_schema(&spec.definitions[&name]),
        };
        schemas.insert(name, v);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_GIT_VERSION},
        "paths": p,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"},
            },
        },
        "security": [{"BearerToken": []}],
    })
}
