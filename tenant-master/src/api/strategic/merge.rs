//! The merge itself: upstream's `mergeMap` and `mergeSlice` with their directives, run the way
//! the apiserver runs them (parallel lists applied, nulls without a match ignored).

use serde_json::{Map, Value};

use super::gofmt::{self, GoType};
use super::meta::{split_strategies, Node};
use super::order::{
    bad_arg_type, dedupe_scalars_in_place, extract_to_delete_items, find_map_in_slice, go_eq, hashable,
    no_merge_key, normalize_element_order, partition_maps, partition_primitives, slice_element_type,
};
use super::{SmpError, ERR_PRIMITIVE_LIST, ERR_RETAIN_KEYS, ERR_SET_ELEMENT_ORDER};

type Obj = Map<String, Value>;

/// `$patch`: a directive on the map (or list element) that holds it.
pub(super) const DIRECTIVE: &str = "$patch";
pub(super) const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
/// `$retainKeys`: the keys of the map to keep; all others are cleared.
const RETAIN_KEYS: &str = "$retainKeys";
/// `$deleteFromPrimitiveList/<field>`: values to remove from a merged list of scalars.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
/// `$setElementOrder/<field>`: the wanted order of a merged list.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Whether `key` is a patch directive key, which never names a field of a struct.
pub(super) fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// Merges `patch` into `original`, a value of the type `schema` stands for.
pub(super) fn merge_map(mut original: Obj, mut patch: Obj, schema: Node) -> Result<Obj, SmpError> {
    if let Some(d) = patch.get(DIRECTIVE).cloned() {
        return directive_in_map(&d, patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, schema)?;

    for (k, pv) in patch {
        let (key, delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST)?.to_string(), true)
        } else {
            (k, false)
        };
        if pv.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let same_type = match original.get(&key) {
            None => false,
            Some(ov) => gofmt::go_type(ov) == gofmt::go_type(&pv),
        };
        if !same_type {
            // Not in the original, or of another type: the patch value wins as it is, minus
            // its nulls and directives; a deletion list has nothing to delete from.
            if !delete_list {
                put_new(&mut original, key, pv);
            }
            continue;
        }
        let ov = original.get_mut(&key).map(Value::take).unwrap_or_default();
        let merged = match (ov, pv) {
            (Value::Object(o), Value::Object(p)) => {
                let (sub, meta) = schema.lookup_struct(&key)?;
                let (_, strategy) = split_strategies(&meta.strategies)?;
                Value::Object(if strategy == REPLACE { p } else { merge_map(o, p, sub)? })
            }
            (Value::Array(o), Value::Array(p)) => {
                let (sub, meta) = schema.lookup_slice(&key)?;
                let (_, strategy) = split_strategies(&meta.strategies)?;
                Value::Array(merge_slice_handler(o, p, sub, strategy, &meta.merge_key, delete_list)?.merged)
            }
            (_, scalar) => scalar,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// Stores a patch value that has nothing to merge with.
fn put_new(original: &mut Obj, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// `$patch` in a map: `replace` makes the patch the whole value, `delete` empties it.
fn directive_in_map(directive: &Value, mut patch: Obj) -> Result<Obj, SmpError> {
    match directive.as_str() {
        Some(REPLACE) => {
            patch.shift_remove(DIRECTIVE);
            Ok(patch)
        }
        Some(DELETE) => Ok(Obj::new()),
        _ => Err(bad_patch_type(directive, &Value::Object(patch))),
    }
}

fn bad_patch_type(directive: &Value, m: &Value) -> SmpError {
    SmpError::Other(format!("unknown patch type: {} in map: {}", gofmt::s(directive), gofmt::v(m)))
}

/// `$retainKeys`: every key the patch sets must be listed; keys not listed are cleared from
/// the original before merging.
fn apply_retain_keys(original: &mut Obj, patch: &mut Obj) -> Result<(), SmpError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else { return Ok(()) };
    let Value::Array(keep) = retain else { return Err(SmpError::BadRequest(ERR_RETAIN_KEYS.into())) };
    for k in &keep {
        hashable(k)?;
    }
    let kept = |k: &str| keep.iter().any(|x| x.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if !kept(k) {
            return Err(SmpError::BadRequest(ERR_RETAIN_KEYS.into()));
        }
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// The field name after `prefix/`.
fn extract_key<'a>(key: &'a str, prefix: &str, err: &str) -> Result<&'a str, SmpError> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ => Err(SmpError::BadRequest(err.into())),
    }
}

/// `mergePatchIntoOriginal`: for each `$setElementOrder/<field>`, merges the field's patch list
/// (if any) and puts the result in the wanted order.
fn merge_set_element_order(original: &mut Obj, patch: &mut Obj, schema: Node) -> Result<(), SmpError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for key in keys {
        let order = match patch.shift_remove(&key).unwrap_or_default() {
            Value::Array(a) => a,
            other => return Err(bad_arg_type(GoType::Slice, &other)),
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER)?.to_string();
        let as_list = |v: Option<&Value>| match v {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(other) => Err(bad_arg_type(GoType::Slice, other)),
        };
        let original_list = as_list(original.get(&field))?;
        let patch_list = as_list(patch.get(&field))?;
        let (sub, meta) = schema.lookup_slice(&field)?;
        let (_, strategy) = split_strategies(&meta.strategies)?;
        let merge_key = meta.merge_key.as_str();
        validate_patch_with_set_order_list(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

        let (merged, original_view) = match (original_list, patch_list.clone()) {
            (Some(o), None) => (o.clone(), o),
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(a)) => (a, Vec::new()),
                _ => continue,
            },
            (Some(o), Some(p)) => {
                let m = merge_slice_handler(o, p, sub, strategy, merge_key, false)?;
                (m.merged, m.original_view)
            }
            (None, None) => continue,
        };

        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(&merged, &order)?
        } else {
            partition_maps(&merged, &order, merge_key)?
        };
        let kind = slice_element_type(&[&original_view, patch_list.as_deref().unwrap_or(&[])])?;
        let both =
            normalize_element_order(patch_items, server_only, &order, &original_view, merge_key, kind == GoType::Map)?;
        original.insert(field.clone(), Value::Array(both));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// Checks that the patch list names its items in the order `$setElementOrder` gives (items
/// with directives aside), and only items it names.
fn validate_patch_with_set_order_list(patch_list: &[Value], order: &[Value], merge_key: &str) -> Result<(), SmpError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items = if merge_key.is_empty() { patch_list.to_vec() } else { extract_to_delete_items(patch_list)?.0 };
    let (mut pi, mut si) = (0, 0);
    while pi < items.len() && si < order.len() {
        if items[pi].as_object().is_some_and(|m| m.contains_key(DIRECTIVE)) {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&items[pi], &order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < items.len() && si >= order.len() {
        return Err(SmpError::Other(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            gofmt::v(&Value::Array(patch_list.to_vec())),
            gofmt::v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, SmpError> {
    if merge_key.is_empty() {
        return go_eq(left, right);
    }
    let l = left.as_object().ok_or_else(|| bad_arg_type(GoType::Map, left))?;
    let r = right.as_object().ok_or_else(|| bad_arg_type(GoType::Map, right))?;
    let lk = l.get(merge_key).ok_or_else(|| no_merge_key(left, merge_key))?;
    let rk = r.get(merge_key).ok_or_else(|| no_merge_key(right, merge_key))?;
    go_eq(lk, rk)
}

/// A merged list, and what the original list's Go array holds afterwards: upstream merges in
/// place, and a later `$setElementOrder` step reads the original through that same array.
pub(super) struct SliceMerge {
    pub merged: Vec<Value>,
    pub original_view: Vec<Value>,
}

/// Merges lists with the `merge` strategy (or any deletion list); replaces them otherwise.
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: Node,
    strategy: &str,
    merge_key: &str,
    delete_list: bool,
) -> Result<SliceMerge, SmpError> {
    if strategy == MERGE || delete_list {
        merge_slice(original, patch, elem, merge_key, delete_list)
    } else {
        Ok(SliceMerge { merged: patch, original_view: original })
    }
}

/// `mergeSlice`: scalars are unioned (or removed, for a deletion list); maps are merged by
/// `merge_key` after `$patch` elements are applied. The result is then ordered.
fn merge_slice(original: Vec<Value>, patch: Vec<Value>, elem: Node, merge_key: &str, delete_list: bool) -> Result<SliceMerge, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(SliceMerge { merged: original.clone(), original_view: original });
    }
    let kind = slice_element_type(&[&original, &patch])?;

    if kind != GoType::Map {
        if delete_list {
            let merged = delete_from_slice(&original, &patch)?;
            return Ok(SliceMerge { merged, original_view: original });
        }
        // Go appends the patch to the original; with nothing to append the dedupe runs on the
        // original's own array.
        let (merged, server_order) = if patch.is_empty() {
            let mut backing = original;
            let n = backing.len();
            let len = dedupe_scalars_in_place(&mut backing, n)?;
            (backing[..len].to_vec(), backing)
        } else {
            let mut both: Vec<Value> = original.iter().chain(patch.iter()).cloned().collect();
            let n = both.len();
            let len = dedupe_scalars_in_place(&mut both, n)?;
            both.truncate(len);
            (both, original)
        };
        let (patch_items, server_only) = partition_primitives(&merged, &patch)?;
        let out = normalize_element_order(patch_items, server_only, &patch, &server_order, "", false)?;
        return Ok(SliceMerge { merged: out, original_view: server_order });
    }

    if merge_key.is_empty() {
        return Err(SmpError::Other(format!("cannot merge lists without merge key for {}", elem.kind_name())));
    }
    // The original's Go array: deletions shift items left within it, and appends fill the
    // slots they free (its capacity is its initial length).
    let mut view = original;
    let mut len = view.len();
    let mut rest = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            rest.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(key) = v.get(merge_key) else { return Err(no_merge_key(&v, merge_key)) };
                while let Some(i) = find_map_in_slice(&view[..len], merge_key, key)? {
                    for j in i..len - 1 {
                        view[j] = view[j + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(SmpError::Other("merging lists cannot yet be specified in the patch".into())),
            _ => return Err(bad_patch_type(directive, &v)),
        }
    }

    let (merged, server_order, patch) = if replace {
        // The patch's plain elements become the list; nothing is merged into it.
        (rest.clone(), rest, Vec::new())
    } else {
        let server_order = view[..len].to_vec();
        let mut current = view[..len].to_vec();
        for v in &rest {
            let Some(key) = v.get(merge_key) else { return Err(no_merge_key(v, merge_key)) };
            match find_map_in_slice(&current, merge_key, key)? {
                Some(i) => {
                    let Value::Object(o) = current[i].take() else { unreachable!("list items are maps") };
                    let Value::Object(p) = v.clone() else { unreachable!("list items are maps") };
                    current[i] = Value::Object(merge_map(o, p, elem)?);
                }
                None => {
                    if current.len() < view.len() {
                        view[current.len()] = v.clone();
                    }
                    current.push(v.clone());
                }
            }
        }
        (current, server_order, rest)
    };
    let (patch_items, server_only) = partition_maps(&merged, &patch, merge_key)?;
    let out = normalize_element_order(patch_items, server_only, &patch, &server_order, merge_key, true)?;
    Ok(SliceMerge { merged: out, original_view: view })
}

/// Removes every value of `to_delete` from `current`.
fn delete_from_slice(current: &[Value], to_delete: &[Value]) -> Result<Vec<Value>, SmpError> {
    for v in to_delete.iter().chain(current) {
        hashable(v)?;
    }
    Ok(current.iter().filter(|v| !to_delete.contains(v)).cloned().collect())
}

/// Drops maps carrying `$patch` (and the keys holding them) from a value that is stored as it
/// is; `None` when the value itself is such a map.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(m.into_iter().filter_map(|(k, v)| remove_directives(v).map(|v| (k, v))).collect()))
        }
        Value::Array(a) => Some(Value::Array(a.into_iter().filter_map(remove_directives).collect())),
        other => Some(other),
    }
}

/// Drops null-valued keys at every depth: a null has nothing to delete in a new value.
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}
