//! Typed walks over JSON values, as structured-merge-diff's `typed` package does them: the field
//! set of a value, the comparison of two values, the merge of an applied configuration into a
//! live object, and the removal of a set of fields.

use serde_json::{Map, Value};

use super::fieldset::{values_equal, PathElement, Set};
use super::typed::{child_type, list_item_element, resolve, Atom, TypeRef};

/// The fields a value sets (upstream `TypedValue.ToFieldSet`): leaves, list items, and map keys
/// that are not declared struct fields. Struct fields with children are not members themselves.
pub fn to_field_set(v: &Value, tr: TypeRef) -> Set {
    let mut out = Set::new();
    field_set(v, tr, &mut Vec::new(), &mut out);
    out
}

fn field_set(v: &Value, tr: TypeRef, path: &mut Vec<PathElement>, out: &mut Set) {
    let atom = resolve(tr, &[Some(v)]);
    match atom {
        Atom::Leaf => out.insert(path),
        Atom::Struct(_) | Atom::Map(_) => {
            let Value::Object(m) = v else { return };
            for (k, child) in m {
                let (ct, declared) = child_type(atom, k);
                path.push(PathElement::Field(k.clone()));
                field_set(child, ct, path, out);
                if !declared {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Atom::List { elem, keys } => {
            let Value::Array(items) = v else { return };
            for item in items {
                let Ok(pe) = list_item_element(keys, item) else { continue };
                path.push(pe);
                field_set(item, elem, path, out);
                out.insert(path);
                path.pop();
            }
        }
    }
}

/// What changed between two values (upstream `typed.Comparison`).
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    /// Fields only the right-hand side has.
    pub added: Set,
    /// Fields both have with different values.
    pub modified: Set,
    /// Fields only the left-hand side has.
    pub removed: Set,
}

impl Comparison {
    /// Whether nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Drops `fields` and everything below them from all three sets.
    pub fn exclude(&mut self, fields: &Set) {
        if fields.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(fields);
        self.modified = self.modified.recursive_difference(fields);
        self.removed = self.removed.recursive_difference(fields);
    }
}

/// Compares `lhs` (before) with `rhs` (after). A granular map or list that appears or disappears
/// is itself added or removed, besides its contents; empty ones count as leaves.
pub fn compare(lhs: &Value, rhs: &Value, tr: TypeRef) -> Comparison {
    let mut c = Comparison::default();
    cmp(Some(lhs), Some(rhs), tr, &mut Vec::new(), &mut c);
    c
}

fn leaf_cmp(l: Option<&Value>, r: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(a), Some(b)) => {
            if !values_equal(a, b) {
                c.modified.insert(path)
            }
        }
    }
}

fn empty_map(v: Option<&Value>) -> bool {
    v.and_then(|v| v.as_object()).is_none_or(|m| m.is_empty())
}

fn empty_list(v: Option<&Value>) -> bool {
    v.and_then(|v| v.as_array()).is_none_or(|a| a.is_empty())
}

/// Groups the items of a list by path element, in first-seen order, keeping duplicates together.
fn index_items<'a>(keys: Option<&[String]>, v: Option<&'a Value>) -> Vec<(PathElement, Vec<&'a Value>)> {
    let mut out: Vec<(PathElement, Vec<&Value>)> = Vec::new();
    for item in v.and_then(|v| v.as_array()).into_iter().flatten() {
        let Ok(pe) = list_item_element(keys, item) else { continue };
        match out.iter_mut().find(|(p, _)| *p == pe) {
            Some((_, items)) => items.push(item),
            None => out.push((pe, vec![item])),
        }
    }
    out
}

fn cmp(l: Option<&Value>, r: Option<&Value>, tr: TypeRef, path: &mut Vec<PathElement>, c: &mut Comparison) {
    let atom = resolve(tr, &[l, r]);
    match atom {
        Atom::Leaf => return leaf_cmp(l, r, path, c),
        Atom::Struct(_) | Atom::Map(_) => {
            if empty_map(l) && empty_map(r) {
                return leaf_cmp(l, r, path, c);
            }
            let lm = l.and_then(|v| v.as_object());
            let rm = r.and_then(|v| v.as_object());
            let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
            for k in rm.into_iter().flat_map(|m| m.keys()) {
                if lm.is_none_or(|m| !m.contains_key(k)) {
                    keys.push(k);
                }
            }
            for k in keys {
                let (ct, _) = child_type(atom, k);
                path.push(PathElement::Field(k.clone()));
                cmp(lm.and_then(|m| m.get(k)), rm.and_then(|m| m.get(k)), ct, path, c);
                path.pop();
            }
        }
        Atom::List { elem, keys } => {
            if empty_list(l) && empty_list(r) {
                return leaf_cmp(l, r, path, c);
            }
            let li = index_items(keys, l);
            let ri = index_items(keys, r);
            let mut all: Vec<&PathElement> = li.iter().map(|(p, _)| p).collect();
            for (p, _) in &ri {
                if !li.iter().any(|(q, _)| q == p) {
                    all.push(p);
                }
            }
            for pe in all {
                let lv: &[&Value] = li.iter().find(|(p, _)| p == pe).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
                let rv: &[&Value] = ri.iter().find(|(p, _)| p == pe).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
                path.push(pe.clone());
                match (lv.len(), rv.len()) {
                    (0..=1, 0..=1) => cmp(lv.first().copied(), rv.first().copied(), elem, path, c),
                    // Duplicates on both sides: compared as a whole.
                    (2.., 2..) => {
                        if lv.len() != rv.len() || lv.iter().zip(rv).any(|(a, b)| !values_equal(a, b)) {
                            c.modified.insert(path);
                        }
                    }
                    (2.., _) => {
                        if let Some(x) = rv.first() {
                            cmp(None, Some(x), elem, path, c);
                        }
                        c.removed.insert(path);
                    }
                    (_, _) => {
                        if let Some(x) = lv.first() {
                            cmp(Some(x), None, elem, path, c);
                        }
                        c.added.insert(path);
                    }
                }
                path.pop();
            }
        }
    }
    if l.is_none() {
        c.added.insert(path);
    } else if r.is_none() {
        c.removed.insert(path);
    }
}

/// Merges `rhs` (an applied configuration) into `lhs` (the live object): the configuration wins
/// on leaves, maps merge key by key, associative lists item by item (live order first, new items
/// after). `Err` when a list item has no valid key.
pub fn merge(lhs: Option<&Value>, rhs: Option<&Value>, tr: TypeRef) -> Result<Option<Value>, String> {
    merge_at(lhs, rhs, tr, &mut Vec::new())
}

fn merge_at(l: Option<&Value>, r: Option<&Value>, tr: TypeRef, path: &mut Vec<PathElement>) -> Result<Option<Value>, String> {
    let atom = resolve(tr, &[l, r]);
    let keep_rhs = || Ok(r.or(l).cloned());
    match atom {
        Atom::Leaf => keep_rhs(),
        Atom::Struct(_) | Atom::Map(_) => {
            if empty_map(l) && empty_map(r) {
                return keep_rhs();
            }
            let lm = l.and_then(|v| v.as_object());
            let rm = r.and_then(|v| v.as_object());
            let mut out = Map::new();
            for (k, lv) in lm.into_iter().flatten() {
                let (ct, _) = child_type(atom, k);
                path.push(PathElement::Field(k.clone()));
                if let Some(v) = merge_at(Some(lv), rm.and_then(|m| m.get(k)), ct, path)? {
                    out.insert(k.clone(), v);
                }
                path.pop();
            }
            for (k, rv) in rm.into_iter().flatten() {
                if lm.is_some_and(|m| m.contains_key(k)) {
                    continue;
                }
                let (ct, _) = child_type(atom, k);
                path.push(PathElement::Field(k.clone()));
                if let Some(v) = merge_at(None, Some(rv), ct, path)? {
                    out.insert(k.clone(), v);
                }
                path.pop();
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Atom::List { elem, keys } => {
            if empty_list(l) && empty_list(r) {
                return keep_rhs();
            }
            let at = |path: &Vec<PathElement>, e: String| format!("{}: {e}", super::fieldset::path_string(path));
            let mut rhs_items: Vec<(PathElement, &Value)> = Vec::new();
            for (i, item) in r.and_then(|v| v.as_array()).into_iter().flatten().enumerate() {
                let pe = list_item_element(keys, item).map_err(|e| at(path, format!("rhs: element {i}: {e}")))?;
                if rhs_items.iter().any(|(p, _)| *p == pe) {
                    return Err(at(path, format!("rhs: duplicate entries for key {pe}")));
                }
                rhs_items.push((pe, item));
            }
            let mut out = Vec::new();
            let mut seen: Vec<PathElement> = Vec::new();
            for (i, item) in l.and_then(|v| v.as_array()).into_iter().flatten().enumerate() {
                let pe = list_item_element(keys, item).map_err(|e| at(path, format!("lhs: element {i}: {e}")))?;
                if seen.contains(&pe) {
                    return Err(at(path, format!("lhs: duplicate entries for key {pe}")));
                }
                let rv = rhs_items.iter().find(|(p, _)| *p == pe).map(|(_, v)| *v);
                path.push(pe.clone());
                if let Some(v) = merge_at(Some(item), rv, elem, path)? {
                    out.push(v);
                }
                path.pop();
                seen.push(pe);
            }
            for (pe, item) in &rhs_items {
                if seen.contains(pe) {
                    continue;
                }
                path.push(pe.clone());
                if let Some(v) = merge_at(None, Some(item), elem, path)? {
                    out.push(v);
                }
                path.pop();
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
    }
}

/// Removes the fields of `set` from `v` (upstream `RemoveItems`). A map or list left without
/// content becomes null, as upstream's walker leaves it.
pub fn remove_items(v: &Value, set: &Set, tr: TypeRef) -> Value {
    let atom = resolve(tr, &[Some(v)]);
    match atom {
        Atom::Leaf => v.clone(),
        Atom::Struct(_) | Atom::Map(_) => {
            let Some(m) = v.as_object().filter(|m| !m.is_empty()) else { return Value::Null };
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has_member(&pe) {
                    continue;
                }
                let nv = match set.child(&pe) {
                    Some(sub) => remove_items(child, sub, child_type(atom, k).0),
                    None => child.clone(),
                };
                out.insert(k.clone(), nv);
            }
            if out.is_empty() { Value::Null } else { Value::Object(out) }
        }
        Atom::List { elem, keys } => {
            let Some(items) = v.as_array().filter(|a| !a.is_empty()) else { return Value::Null };
            let mut out = Vec::new();
            for item in items {
                let Ok(pe) = list_item_element(keys, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has_member(&pe) {
                    continue;
                }
                out.push(match set.child(&pe) {
                    Some(sub) => remove_items(item, sub, elem),
                    None => item.clone(),
                });
            }
            if out.is_empty() { Value::Null } else { Value::Array(out) }
        }
    }
}

/// `set` plus, as members, every declared struct field that has paths below it, so that removing
/// the set removes such fields whole (upstream `EnsureNamedFieldsAreMembers`).
pub fn ensure_named_fields_are_members(set: &Set, tr: TypeRef) -> Set {
    let atom = resolve(tr, &[]);
    let mut members: std::collections::BTreeSet<PathElement> = set.members().cloned().collect();
    let mut children = std::collections::BTreeMap::new();
    for (pe, sub) in set.children() {
        let ct = match (pe, atom) {
            (PathElement::Field(name), Atom::Struct(_) | Atom::Map(_)) => {
                let (ct, declared) = child_type(atom, name);
                if declared {
                    members.insert(pe.clone());
                }
                ct
            }
            (PathElement::Key(_), Atom::List { elem, .. }) => elem,
            _ => TypeRef::Deduced,
        };
        children.insert(pe.clone(), ensure_named_fields_are_members(sub, ct));
    }
    Set::from_parts(members, children)
}

/// Drops null values from maps, as decoding into the typed object drops them.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                strip_nulls(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::apply::typed::for_kind;
    use serde_json::json;

    fn dep() -> TypeRef<'static> {
        for_kind("apps/v1", "Deployment")
    }

    fn fs(v: Value) -> Set {
        Set::from_fields_v1(&v).unwrap()
    }

    #[test]
    fn field_set_of_a_configuration() {
        let cfg = json!({"metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}}});
        let s = to_field_set(&cfg, dep());
        assert_eq!(
            s,
            fs(json!({"f:metadata": {"f:name": {}, "f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}))
        );
    }

    #[test]
    fn comparison_marks_added_containers() {
        let live = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "template": {"spec": {"containers": null}}}});
        let new = json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 2,
            "strategy": {"rollingUpdate": {"maxSurge": 1}}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let c = compare(&live, &new, dep());
        assert_eq!(c.modified, fs(json!({"f:spec": {"f:replicas": {}}})));
        assert_eq!(
            c.added,
            fs(json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                "f:spec": {"f:strategy": {".": {}, "f:rollingUpdate": {".": {}, "f:maxSurge": {}}},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}))
        );
        assert!(c.removed.is_empty());
        let back = compare(&new, &live, dep());
        assert_eq!(back.removed, c.added);
        assert!(compare(&new, &new, dep()).is_same());
    }

    #[test]
    fn merge_keeps_live_order_and_applies_leaves() {
        let live = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a1", "imagePullPolicy": "Always"}, {"name": "b", "image": "b1"}]}}}});
        let cfg = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "c1"}, {"name": "a", "image": "a2"}]}}}});
        let m = merge(Some(&live), Some(&cfg), dep()).unwrap().unwrap();
        assert_eq!(m["spec"]["replicas"], 3);
        let names: Vec<&str> = m["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(m["spec"]["template"]["spec"]["containers"][0], json!({"name": "a", "image": "a2", "imagePullPolicy": "Always"}));
        // Atomic lists are replaced whole.
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}}});
        let cfg = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}});
        let m = merge(Some(&live), Some(&cfg), dep()).unwrap().unwrap();
        assert_eq!(m["spec"]["template"]["spec"]["containers"][0]["args"], json!(["z"]));
        let dup = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert!(merge(None, Some(&dup), dep()).unwrap_err().contains("duplicate entries"));
    }

    #[test]
    fn removal_and_named_fields() {
        let obj = json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "template": {"spec": {"containers": [
            {"name": "a", "image": "a1"}, {"name": "b", "image": "b1"}]}}}});
        let set = fs(json!({"f:spec": {"f:strategy": {"f:type": {}},
            "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"b\"}": {}, "k:{\"name\":\"a\"}": {"f:image": {}}}}}}}));
        let mut out = remove_items(&obj, &set, dep());
        assert_eq!(out["spec"]["strategy"], Value::Null, "emptied struct becomes null");
        strip_nulls(&mut out);
        assert_eq!(out, json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}}));
        let named = ensure_named_fields_are_members(&set, dep());
        assert!(named.has(&[PathElement::Field("spec".into()), PathElement::Field("strategy".into())]));
        assert!(named.has(&[PathElement::Field("spec".into())]));
        // List items are not named fields.
        let key_a = PathElement::Key(vec![("name".into(), json!("a"))]);
        let containers = [PathElement::Field("spec".into()), PathElement::Field("template".into()), PathElement::Field("spec".into()), PathElement::Field("containers".into())];
        let mut p = containers.to_vec();
        p.push(key_a);
        assert!(!named.has(&p));
        assert!(named.has(&containers));
    }
}
