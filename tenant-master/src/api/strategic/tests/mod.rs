//! Unit tests of strategic merge patch: one per directive and strategy, the ordering and error
//! cases of upstream's own test tables, and realistic patches as kubectl sends them.

mod directives;
mod errors;
mod lists;
mod ordering;
mod realistic;

use serde_json::{json, Value};

use super::{strategic_merge_patch, SmpError};

/// Applies `patch` to a Deployment built around `spec`.
fn deploy(spec: Value, patch: Value) -> Result<Value, SmpError> {
    let original = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec});
    strategic_merge_patch(&original, &patch, "apps/v1", "Deployment")
}

/// A Pod with `containers`, patched with `{"spec": spec_patch}`; returns the patched spec.
fn pod_spec(spec: Value, spec_patch: Value) -> Result<Value, SmpError> {
    let original = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
    strategic_merge_patch(&original, &json!({"spec": spec_patch}), "v1", "Pod").map(|v| v["spec"].clone())
}

/// A ConfigMap whose metadata is `meta` (plus its name), patched with `{"metadata": meta_patch}`;
/// returns the patched metadata.
fn cm_meta(meta: Value, meta_patch: Value) -> Result<Value, SmpError> {
    let mut m = meta;
    m["name"] = json!("cm");
    let original = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": m});
    strategic_merge_patch(&original, &json!({"metadata": meta_patch}), "v1", "ConfigMap").map(|v| v["metadata"].clone())
}

/// Containers named after `names`, each with the image `<name>:1`.
fn containers(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n, "image": format!("{n}:1")})).collect())
}

/// The names of the items of a list of maps.
fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}
