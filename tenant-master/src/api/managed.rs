//! `metadata.managedFields` bookkeeping for Update operations.
//!
//! Each write records, under its field manager, the set of fields it changed (FieldsV1 form:
//! `{"f:spec":{"f:replicas":{}}}`); lists are treated as atomic here. Server-side apply builds on
//! this later.

use serde_json::{json, Map, Value};

use crate::registry::ResourceInfo;

fn changed_fields(new: &Value, old: Option<&Value>, out: &mut Map<String, Value>) {
    let Some(obj) = new.as_object() else { return };
    for (k, v) in obj {
        let o = old.and_then(|o| o.get(k));
        if o == Some(v) {
            continue;
        }
        let key = format!("f:{k}");
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut sub = Map::new();
                changed_fields(v, o, &mut sub);
                if !sub.is_empty() {
                    sub.insert(".".into(), json!({}));
                    out.insert(key, Value::Object(sub));
                }
            }
            _ => {
                out.insert(key, json!({}));
            }
        }
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Records that `manager` changed `new` from `old` (None: created it).
pub fn record(new: &mut Value, old: Option<&Value>, manager: &str, operation: &str, inf: &ResourceInfo) {
    let mut strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
            o.remove("status");
        }
        if let Some(md) = v["metadata"].as_object_mut() {
            for f in ["managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "name", "namespace", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"] {
                md.remove(f);
            }
        }
        v
    };
    let n = strip(new);
    let o = old.map(&mut strip);
    let mut set = Map::new();
    changed_fields(&n, o.as_ref(), &mut set);
    let mut entries: Vec<Value> = new["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    let idx = entries.iter().position(|e| e["manager"] == manager && e["operation"] == operation && e.get("subresource").is_none());
    let mut fields = match idx {
        Some(i) => entries[i]["fieldsV1"].as_object().cloned().unwrap_or_default(),
        None => Map::new(),
    };
    if set.is_empty() && idx.is_none() {
        return;
    }
    merge(&mut fields, set);
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": inf.api_version(),
        "time": crate::meta::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": Value::Object(fields),
    });
    match idx {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    crate::meta::metadata_mut(new).insert("managedFields".into(), Value::Array(entries));
}
