//! Element order of merged lists. Upstream keeps, by precedence, the order of `$setElementOrder`,
//! then of the patch list, then of the live list; items the patch does not name are interleaved
//! by their live position. Its sorts use a comparator that is inconsistent for items missing from
//! the order list, so Go's stable sort is reproduced step by step to land on the same result.

use serde_json::Value;

use super::gofmt::{self, GoType};
use super::SmpError;

/// Go's `==` on two `interface{}` values: false for different dynamic types, a runtime panic
/// for two maps or two slices.
pub(super) fn go_eq(a: &Value, b: &Value) -> Result<bool, SmpError> {
    match (a, b) {
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)) => Err(SmpError::Panic(format!(
            "runtime error: comparing uncomparable type {}",
            gofmt::type_name(a)
        ))),
        _ => Ok(a == b),
    }
}

/// Panics as Go does when `v` is used as a map key but cannot be hashed.
pub(super) fn hashable(v: &Value) -> Result<(), SmpError> {
    match v {
        Value::Object(_) | Value::Array(_) => {
            Err(SmpError::Panic(format!("runtime error: hash of unhashable type {}", gofmt::type_name(v))))
        }
        _ => Ok(()),
    }
}

/// `mergepatch.ErrNoMergeKey`.
pub(super) fn no_merge_key(m: &Value, key: &str) -> SmpError {
    SmpError::Other(format!("map: {} does not contain declared merge key: {key}", gofmt::v(m)))
}

/// `mergepatch.ErrBadArgType`, `expected` being the Go type name wanted.
pub(super) fn bad_arg_type(expected: GoType, actual: &Value) -> SmpError {
    SmpError::Other(format!("expected a {}, but received a {}", expected.name(), gofmt::type_name(actual)))
}

/// What `index` compares: the merge key's value for maps, the item itself otherwise. A missing
/// key reads as Go's nil.
fn lookup_key<'a>(item: &'a Value, merge_key: &str, maps: bool) -> &'a Value {
    const NIL: &Value = &Value::Null;
    if maps {
        item.as_object().and_then(|o| o.get(merge_key)).unwrap_or(NIL)
    } else {
        item
    }
}

/// Position of `val` in `list` (compared by merge key for maps), or -1.
fn index(list: &[Value], val: &Value, merge_key: &str, maps: bool) -> Result<isize, SmpError> {
    let want = lookup_key(val, merge_key, maps);
    for (i, item) in list.iter().enumerate() {
        if go_eq(want, lookup_key(item, merge_key, maps))? {
            return Ok(i as isize);
        }
    }
    Ok(-1)
}

/// Checks that every item of `lists` is a map holding `merge_key`.
pub(super) fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> Result<(), SmpError> {
    for list in lists {
        for item in list.iter() {
            let Some(m) = item.as_object() else { return Err(bad_arg_type(GoType::Map, item)) };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(item, merge_key));
            }
        }
    }
    Ok(())
}

/// Splits a list of maps into the items without and with `$patch: delete`.
pub(super) fn extract_to_delete_items(list: &[Value]) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let (mut keep, mut delete) = (Vec::new(), Vec::new());
    for item in list {
        let Some(m) = item.as_object() else { return Err(bad_arg_type(GoType::Map, item)) };
        if m.get(super::merge::DIRECTIVE).and_then(Value::as_str) == Some(super::merge::DELETE) {
            delete.push(item.clone());
        } else {
            keep.push(item.clone());
        }
    }
    Ok((keep, delete))
}

/// Go's `sort.SliceStable` (insertion sort on blocks of 20, then SymMerge) driven by `less`,
/// which need not be a consistent ordering.
fn go_stable_sort<T>(data: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    fn insertion<T>(d: &mut [T], a: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && less(&d[j], &d[j - 1]) {
                d.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    fn swap_range<T>(d: &mut [T], a: usize, b: usize, n: usize) {
        for i in 0..n {
            d.swap(a + i, b + i);
        }
    }
    fn rotate<T>(d: &mut [T], a: usize, m: usize, b: usize) {
        let (mut i, mut j) = (m - a, b - m);
        while i != j {
            if i > j {
                swap_range(d, m - i, m, j);
                i -= j;
            } else {
                swap_range(d, m - i, m + j - i, i);
                j -= i;
            }
        }
        swap_range(d, m - i, m, i);
    }
    fn sym_merge<T>(d: &mut [T], a: usize, m: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
        if m - a == 1 {
            let (mut i, mut j) = (m, b);
            while i < j {
                let h = (i + j) / 2;
                if less(&d[h], &d[a]) {
                    i = h + 1;
                } else {
                    j = h;
                }
            }
            for k in a..i.saturating_sub(1) {
                d.swap(k, k + 1);
            }
            return;
        }
        if b - m == 1 {
            let (mut i, mut j) = (a, m);
            while i < j {
                let h = (i + j) / 2;
                if !less(&d[m], &d[h]) {
                    i = h + 1;
                } else {
                    j = h;
                }
            }
            let mut k = m;
            while k > i {
                d.swap(k, k - 1);
                k -= 1;
            }
            return;
        }
        let mid = (a + b) / 2;
        let n = mid + m;
        let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
        let p = n - 1;
        while start < r {
            let c = (start + r) / 2;
            if !less(&d[p - c], &d[c]) {
                start = c + 1;
            } else {
                r = c;
            }
        }
        let end = n - start;
        if start < m && m < end {
            rotate(d, start, m, end);
        }
        if a < start && start < mid {
            sym_merge(d, a, start, mid, less);
        }
        if mid < end && end < b {
            sym_merge(d, mid, end, b, less);
        }
    }

    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion(data, a, b, less);
        a = b;
        b += block;
    }
    insertion(data, a, n, less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b, less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, less);
        }
        block *= 2;
    }
}

/// `normalizeSliceOrder`: sorts `to_sort` by the positions of its items in `order`; for maps,
/// items carrying `$patch: delete` move to the end.
fn normalize_slice_order(to_sort: Vec<Value>, order: &[Value], merge_key: &str, maps: bool) -> Result<Vec<Value>, SmpError> {
    let (to_sort, to_delete) = if maps {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(&to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let mut keyed = Vec::with_capacity(to_sort.len());
    for item in to_sort {
        let i = index(order, &item, merge_key, maps)?;
        keyed.push((item, i));
    }
    go_stable_sort(&mut keyed, &|x, y| if x.1 >= 0 && y.1 >= 0 { x.1 < y.1 } else { true });
    let mut out: Vec<Value> = keyed.into_iter().map(|(v, _)| v).collect();
    out.extend(to_delete);
    Ok(out)
}

/// `mergeSortedSlice`: interleaves the server-only items (`left`) into the patch items (`right`),
/// taking a left item first only when the live list has it before the right item at hand.
fn merge_sorted_slice(left: Vec<Value>, right: Vec<Value>, server_order: &[Value], merge_key: &str, maps: bool) -> Result<Vec<Value>, SmpError> {
    let size = left.len() + right.len();
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    let mut out = Vec::with_capacity(size);
    for _ in 0..size {
        let take_left = match (left.peek(), right.peek()) {
            (Some(_), None) => true,
            (None, _) => false,
            (Some(l), Some(r)) => {
                let li = index(server_order, l, merge_key, maps)?;
                let ri = index(server_order, r, merge_key, maps)?;
                li >= 0 && ri >= 0 && li < ri
            }
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(out)
}

/// `normalizeElementOrder`: orders the patch items by `patch_order`, the server-only items by
/// `server_order`, then interleaves them.
pub(super) fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    maps: bool,
) -> Result<Vec<Value>, SmpError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, maps)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, maps)?;
    merge_sorted_slice(server_only, patch, server_order, merge_key, maps)
}

/// Splits scalars into those present in `by` and the rest, keeping their order.
pub(super) fn partition_primitives(list: &[Value], by: &[Value]) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    for v in by {
        hashable(v)?;
    }
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for v in list {
        hashable(v)?;
        if by.contains(v) {
            inside.push(v.clone());
        } else {
            outside.push(v.clone());
        }
    }
    Ok((inside, outside))
}

/// Splits maps into those whose merge key occurs in `by` and the rest, keeping their order.
pub(super) fn partition_maps(list: &[Value], by: &[Value], merge_key: &str) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for v in list {
        let Some(m) = v.as_object() else { return Err(bad_arg_type(GoType::Map, v)) };
        let Some(key) = m.get(merge_key) else { return Err(no_merge_key(v, merge_key)) };
        if find_map_in_slice(by, merge_key, key)?.is_some() {
            inside.push(v.clone());
        } else {
            outside.push(v.clone());
        }
    }
    Ok((inside, outside))
}

/// The first map in `list` whose `key` equals `value`. Every item must be a map.
pub(super) fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, SmpError> {
    for (i, item) in list.iter().enumerate() {
        let Some(m) = item.as_object() else {
            return Err(SmpError::Other(format!("value for key {i} is not a map")));
        };
        if let Some(x) = m.get(key) {
            if go_eq(x, value)? {
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

/// `deduplicateScalars` on `backing[..len]` in place, returning the new length. Upstream moves
/// the last item into a duplicate's place, so the surviving order is not the first-seen order;
/// the caller re-sorts afterwards. What is left past the new length stays in `backing`, as it
/// does in Go's array.
pub(super) fn dedupe_scalars_in_place(backing: &mut [Value], len: usize) -> Result<usize, SmpError> {
    let mut length = len as isize - 1;
    let mut i: isize = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_eq(&backing[i as usize], &backing[j as usize])? {
                backing[j as usize] = backing[length as usize].clone();
                length -= 1;
                j -= 1;
            }
            j += 1;
        }
        i += 1;
    }
    Ok((length + 1) as usize)
}

/// `sliceElementType`: the one Go type of every item of `slices`.
pub(super) fn slice_element_type(slices: &[&[Value]]) -> Result<GoType, SmpError> {
    let mut prev: Option<Option<GoType>> = None;
    for s in slices {
        for item in s.iter() {
            let cur = gofmt::go_type(item);
            match prev {
                None | Some(None) => {
                    // Go stores the first type, then asks it for its kind: nil panics.
                    let Some(t) = cur else {
                        return Err(SmpError::Panic("runtime error: invalid memory address or nil pointer dereference".into()));
                    };
                    if t == GoType::Slice {
                        return Err(SmpError::Unprocessable(super::ERR_NO_LIST_OF_LISTS.into()));
                    }
                    prev = Some(Some(t));
                }
                Some(Some(p)) => {
                    if Some(p) != cur {
                        return Err(SmpError::Other(format!(
                            "list element types are not identical: {}",
                            gofmt::v_slices(slices)
                        )));
                    }
                }
            }
        }
    }
    match prev {
        Some(Some(t)) => Ok(t),
        _ => Err(SmpError::Other("no elements in any of the given slices".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|i| json!(i)).collect()
    }

    #[test]
    fn strategic_order_stable_sort_matches_go_for_consistent_orders() {
        // With every item present in the order the comparator is a true ordering: a plain
        // stable sort, also across the 20-item block boundary.
        let mut d: Vec<(i64, isize)> = (0..45).map(|i| (i, (i * 7 % 45) as isize)).collect();
        go_stable_sort(&mut d, &|x, y| x.1 < y.1);
        let keys: Vec<isize> = d.iter().map(|x| x.1).collect();
        assert_eq!(keys, (0..45).collect::<Vec<isize>>());
    }

    #[test]
    fn strategic_order_unknown_items_compare_less_both_ways() {
        // An item missing from the order is "less" than its neighbour and its neighbour "less"
        // than it, so Go's insertion sort lets every later item pass it: 9 first moves before
        // 3, then 1 passes both.
        let order = ints(&[1, 2, 3]);
        let out = normalize_slice_order(ints(&[3, 9, 1]), &order, "", false).unwrap();
        assert_eq!(out, ints(&[1, 9, 3]));
    }

    #[test]
    fn strategic_order_dedupe_moves_last_into_duplicates() {
        let mut b = ints(&[1, 1, 2, 3]);
        let n = dedupe_scalars_in_place(&mut b, 4).unwrap();
        assert_eq!(&b[..n], &ints(&[1, 3, 2])[..]);
    }
}
