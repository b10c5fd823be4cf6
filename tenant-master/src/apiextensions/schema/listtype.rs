//! `x-kubernetes-list-type: set` and `map` uniqueness, as upstream's
//! `listtype.ValidateListSetsAndMaps`: `Duplicate value` errors at the second occurrence.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::node::Node;
use super::path::{child, index, key};
use super::render::{duplicate, invalid};
use crate::api::status::FieldError;

/// Validates the lists of `obj` (an object value of schema `s`) under `path`.
pub fn validate(path: &str, s: &Node, obj: &Map<String, Value>, errs: &mut Vec<FieldError>) {
    if let Some(ap) = s.additional_schema() {
        for (k, v) in obj {
            value(&key(path, k), ap, v, errs);
        }
    }
    if !s.properties.is_empty() {
        for (k, v) in obj {
            if let Some(p) = s.properties.get(k) {
                value(&child(path, k), p, v, errs);
            }
        }
    }
}

fn value(path: &str, s: &Node, v: &Value, errs: &mut Vec<FieldError>) {
    match v {
        Value::Array(items) => array(path, s, items, errs),
        Value::Object(m) => validate(path, s, m, errs),
        _ => {}
    }
}

fn array(path: &str, s: &Node, items: &[Value], errs: &mut Vec<FieldError>) {
    match s.list_type.as_deref() {
        Some("set") => {
            for i in non_unique(items.iter().map(Some)) {
                errs.push(duplicate(index(path, i), &items[i]));
            }
        }
        Some("map") => list_map(path, s, items, errs),
        _ => {}
    }
    if let Some(is) = &s.items {
        for (i, v) in items.iter().enumerate() {
            value(&index(path, i), is, v, errs);
        }
    }
}

/// The indices of the first repetition of each value seen more than once (None = unspecified).
fn non_unique<'a>(keys: impl Iterator<Item = Option<&'a Value>>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.enumerate() {
        let id = match k {
            None => "\u{0}unspecified".to_string(),
            Some(v) => serde_json::to_string(v).unwrap_or_default(),
        };
        let n = seen.entry(id).or_insert(0);
        *n += 1;
        if *n == 2 {
            out.push(i);
        }
    }
    out
}

fn list_map(path: &str, s: &Node, items: &[Value], errs: &mut Vec<FieldError>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            errs.push(invalid(index(path, i), x, "must be an object for an array of list-type map"));
            return;
        }
    }
    if items.len() <= 1 {
        return;
    }
    if s.list_map_keys.len() == 1 {
        let k = &s.list_map_keys[0];
        let keys: Vec<Option<&Value>> = items.iter().map(|x| x.as_object().and_then(|m| m.get(k))).collect();
        for i in non_unique(keys.iter().copied()) {
            let v = match keys[i] {
                None => Value::Object(Map::new()),
                Some(kv) => serde_json::json!({ k.clone(): kv.clone() }),
            };
            errs.push(duplicate(index(path, i), &v));
        }
        return;
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut m = Map::new();
            if let Some(o) = x.as_object() {
                for k in &s.list_map_keys {
                    if let Some(v) = o.get(k) {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    for i in non_unique(keys.iter().map(Some)) {
        errs.push(duplicate(index(path, i), &keys[i]));
    }
}
