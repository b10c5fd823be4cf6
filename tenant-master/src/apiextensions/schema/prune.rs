//! Pruning of unknown fields, as upstream's `pruning.Prune` (with returned paths for the
//! `unknown field` warnings), plus the ObjectMeta part of `objectmeta.Coerce`: `metadata` at the
//! root and of embedded resources keeps only ObjectMeta's fields.

use serde_json::Value;

use super::node::{AdditionalProperties, Node};

/// The fields of `metav1.ObjectMeta` as JSON.
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn seg(path: &str, k: &str) -> String {
    format!("{path}.{k}")
}

/// Prunes `obj` (a whole custom resource) against `s`; returns the removed paths (`.spec.foo`).
pub fn prune_root(obj: &mut Value, s: &Node) -> Vec<String> {
    let mut out = Vec::new();
    prune_meta(obj, "", &mut out);
    prune(obj, Some(s), true, "", &mut out);
    out
}

/// Prunes `x` against `s`; `embedded` marks a resource root (root object or embedded resource)
/// whose `apiVersion`, `kind` and `metadata` are kept.
pub fn prune(x: &mut Value, s: Option<&Node>, embedded: bool, path: &str, out: &mut Vec<String>) {
    if let Some(s) = s {
        if s.preserve_unknown_fields {
            skip_prune(x, s, embedded, path, out);
            return;
        }
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                for k in m.keys() {
                    out.push(seg(path, k));
                }
                m.clear();
                return;
            };
            let mut remove = Vec::new();
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    prune_child(v, Some(p), &seg(path, k), out);
                } else if let Some(ap) = &s.additional_properties {
                    let sub = match ap {
                        AdditionalProperties::Schema(a) => Some(&**a),
                        AdditionalProperties::Bool(_) => None,
                    };
                    prune_child(v, sub, &seg(path, k), out);
                } else {
                    remove.push(k.clone());
                }
            }
            for k in remove {
                out.push(seg(path, &k));
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            let sub = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                prune_child(v, if s.is_some() { sub } else { None }, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn prune_child(v: &mut Value, s: Option<&Node>, path: &str, out: &mut Vec<String>) {
    let embedded = s.is_some_and(|s| s.embedded_resource);
    if embedded {
        prune_meta(v, path, out);
    }
    prune(v, s, embedded, path, out);
}

fn skip_prune(x: &mut Value, s: &Node, embedded: bool, path: &str, out: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    prune_child(v, Some(p), &seg(path, k), out);
                } else if let Some(ap) = &s.additional_properties {
                    let sub = match ap {
                        AdditionalProperties::Schema(a) => Some(&**a),
                        AdditionalProperties::Bool(_) => None,
                    };
                    prune_child(v, sub, &seg(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    let p = format!("{path}[{i}]");
                    if sub.embedded_resource {
                        prune_meta(v, &p, out);
                    }
                    skip_prune(v, sub, sub.embedded_resource, &p, out);
                }
            }
        }
        _ => {}
    }
}

/// Drops the fields of `x.metadata` that ObjectMeta does not have.
fn prune_meta(x: &mut Value, path: &str, out: &mut Vec<String>) {
    if let Some(Value::Object(md)) = x.get_mut("metadata") {
        let unknown: Vec<String> = md.keys().filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str())).cloned().collect();
        for k in unknown {
            out.push(format!("{path}.metadata.{k}"));
            md.remove(&k);
        }
    }
}
