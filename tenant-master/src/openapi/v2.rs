//! `/openapi/v2`: one Swagger 2.0 document with every path and definition, laid out as
//! kube-apiserver's (kube-openapi `builder`) output: parameters used by more than one
//! operation are shared under the top-level `parameters` and referenced by `$ref`, and
//! `$ref` properties keep their `description` beside them (kubectl's explain reads it).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::model::{closure, roots_of, Operation, Param, PathItem, Spec};
use super::{hash, KUBE_GIT_VERSION};

fn param_json(p: &Param) -> Value {
    let mut o = json!({"uniqueItems": true, "type": p.ty, "description": p.description, "name": p.name, "in": p.location.as_str()});
    if p.required {
        o["required"] = json!(true);
    }
    o
}

fn def_ref(name: &str) -> Value {
    json!({"$ref": format!("#/definitions/{name}")})
}

fn operation_json(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some(b) = &op.body {
        params.push(json!({"name": "body", "in": "body", "required": b.required, "schema": def_ref(&b.definition)}));
    }
    params.extend(op.params.iter().map(param_json));
    let mut responses = Map::new();
    for r in &op.responses {
        let mut v = json!({"description": r.description()});
        if let Some(d) = &r.definition {
            v["schema"] = def_ref(d);
        }
        responses.insert(r.code.to_string(), v);
    }
    let mut o = json!({
        "description": op.description,
        "consumes": op.consumes,
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [op.tag],
        "operationId": op.id,
    });
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
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

pub(super) fn path_json(p: &PathItem) -> Value {
    let mut o = Map::new();
    for op in &p.operations {
        o.insert(op.method.as_str().into(), operation_json(op));
    }
    if !p.params.is_empty() {
        o.insert("parameters".into(), Value::Array(p.params.iter().map(param_json).collect()));
    }
    Value::Object(o)
}

/// The name a shared parameter gets: its own name and a short hash of its content.
fn shared_name(p: &Value) -> String {
    let h = hash(&serde_json::to_vec(p).unwrap_or_default());
    format!("{}-{}", p["name"].as_str().unwrap_or("param"), &h[..8])
}

/// Moves every parameter used more than once into `parameters` and refers to it there.
fn share_parameters(paths: &mut Map<String, Value>) -> Map<String, Value> {
    fn lists(path: &mut Value) -> Vec<&mut Vec<Value>> {
        let mut out = Vec::new();
        if let Some(o) = path.as_object_mut() {
            for (k, v) in o.iter_mut() {
                let ps = if k == "parameters" { Some(v) } else { v.get_mut("parameters") };
                if let Some(Value::Array(a)) = ps {
                    out.push(a);
                }
            }
        }
        out
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in paths.values_mut() {
        for list in lists(p) {
            for v in list.iter() {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
    }
    let mut shared: BTreeMap<String, Value> = BTreeMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for p in paths.values_mut() {
        for list in lists(p) {
            for v in list.iter_mut() {
                let key = v.to_string();
                if counts[&key] < 2 {
                    continue;
                }
                let name = names.entry(key).or_insert_with(|| shared_name(v)).clone();
                shared.entry(name.clone()).or_insert_with(|| v.clone());
                *v = json!({"$ref": format!("#/parameters/{name}")});
            }
        }
    }
    shared.into_iter().collect()
}

/// The Swagger 2.0 document.
pub fn document(spec: &Spec) -> Value {
    let mut paths: BTreeMap<String, Value> = BTreeMap::new();
    for p in spec.all_paths() {
        paths.insert(p.path.clone(), path_json(p));
    }
    let mut paths: Map<String, Value> = paths.into_iter().collect();
    let parameters = share_parameters(&mut paths);
    let mut definitions = Map::new();
    for name in closure(&spec.definitions, roots_of(spec.all_paths())) {
        definitions.insert(name.clone(), spec.definitions[&name].clone());
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBE_GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "securityDefinitions": {
            "BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"},
        },
        "security": [{"BearerToken": []}],
    })
}
