//! Lists: merging by key, `$patch` elements, scalar sets with `$deleteFromPrimitiveList`, and
//! lists without the merge strategy.

use serde_json::json;

use super::{cm_meta, containers, names, pod_spec};
use crate::api::strategic::SmpError;

#[test]
fn strategic_merge_list_updates_items_by_merge_key() {
    let spec = pod_spec(
        json!({"containers": containers(&["a", "b"])}),
        json!({"containers": [{"name": "b", "image": "b:2", "args": ["x"]}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"], json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2", "args": ["x"]}]));
}

#[test]
fn strategic_merge_list_puts_new_items_first_without_an_order() {
    // Upstream interleaves items the live list lacks before the server-only ones when the patch
    // gives no $setElementOrder (kubectl patch); kubectl's computed patches always give one.
    let spec = pod_spec(json!({"containers": containers(&["a", "b"])}), json!({"containers": [{"name": "c", "image": "c:1"}]})).unwrap();
    assert_eq!(names(&spec["containers"]), ["c", "a", "b"]);
}

#[test]
fn strategic_merge_list_keeps_the_patch_order_of_named_items() {
    // Upstream's "preserve the order from the patch in a merging list 2".
    let spec = pod_spec(
        json!({"containers": containers(&["1", "2", "3"])}),
        json!({"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}),
    )
    .unwrap();
    assert_eq!(names(&spec["containers"]), ["2", "3", "1"]);
}

#[test]
fn strategic_patch_delete_element_removes_every_match() {
    let spec = pod_spec(
        json!({"containers": [{"name": "a"}, {"name": "a", "image": "dup"}, {"name": "b", "image": "b"}, {"name": "c"}]}),
        json!({"containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "$patch": "delete"}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"], json!([{"name": "b", "image": "b"}]));
}

#[test]
fn strategic_patch_replace_element_replaces_the_whole_list() {
    let spec = pod_spec(
        json!({"containers": containers(&["a", "b"])}),
        json!({"containers": [{"name": "z", "image": "z:1"}, {"$patch": "replace"}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"], json!([{"name": "z", "image": "z:1"}]));
    let spec = pod_spec(json!({"containers": containers(&["a"])}), json!({"containers": [{"$patch": "replace"}]})).unwrap();
    assert_eq!(spec["containers"], json!([]));
}

#[test]
fn strategic_patch_merge_element_is_rejected_as_upstream() {
    let err = pod_spec(json!({"containers": containers(&["a"])}), json!({"containers": [{"$patch": "merge"}]})).unwrap_err();
    assert_eq!(err, SmpError::Other("merging lists cannot yet be specified in the patch".into()));
}

#[test]
fn strategic_patch_unknown_element_directive_is_rejected() {
    let err = pod_spec(json!({"containers": containers(&["a"])}), json!({"containers": [{"name": "a", "$patch": "bogus"}]})).unwrap_err();
    assert_eq!(err, SmpError::Other("unknown patch type: bogus in map: map[$patch:bogus name:a]".into()));
}

#[test]
fn strategic_merge_list_items_need_the_merge_key() {
    let err = pod_spec(json!({"containers": containers(&["a"])}), json!({"containers": [{"image": "nginx"}]})).unwrap_err();
    assert_eq!(err, SmpError::Other("map: map[image:nginx] does not contain declared merge key: name".into()));
    let err = pod_spec(json!({"containers": containers(&["a"])}), json!({"containers": [{"$patch": "delete"}]})).unwrap_err();
    assert_eq!(err, SmpError::Other("map: map[$patch:delete] does not contain declared merge key: name".into()));
}

#[test]
fn strategic_merge_list_of_scalars_is_a_set() {
    let meta = json!({"finalizers": ["a", "b"]});
    assert_eq!(cm_meta(meta.clone(), json!({"finalizers": ["b", "c"]})).unwrap()["finalizers"], json!(["a", "b", "c"]));
    // A value the live list lacks goes before the server-only ones, as for maps.
    assert_eq!(cm_meta(meta.clone(), json!({"finalizers": ["c"]})).unwrap()["finalizers"], json!(["c", "a", "b"]));
    // Duplicates in the patch collapse.
    assert_eq!(cm_meta(meta, json!({"finalizers": ["a", "a"]})).unwrap()["finalizers"], json!(["a", "b"]));
}

#[test]
fn strategic_delete_from_primitive_list_removes_values() {
    let meta = json!({"finalizers": ["a", "b", "c", "b"]});
    let out = cm_meta(meta.clone(), json!({"$deleteFromPrimitiveList/finalizers": ["b", "x"]})).unwrap();
    assert_eq!(out["finalizers"], json!(["a", "c"]));
    // A deletion list for an absent field adds nothing.
    let out = cm_meta(json!({}), json!({"$deleteFromPrimitiveList/finalizers": ["b"]})).unwrap();
    assert!(out.get("finalizers").is_none(), "{out}");
    for bad in ["$deleteFromPrimitiveList", "$deleteFromPrimitiveListX/finalizers"] {
        let mut patch = serde_json::Map::new();
        patch.insert(bad.to_string(), json!(["a"]));
        let err = cm_meta(meta.clone(), patch.into()).unwrap_err();
        assert_eq!(err, SmpError::BadRequest("invalid patch format of primitive list".into()), "{bad}");
    }
}

#[test]
fn strategic_lists_without_merge_strategy_are_replaced() {
    let spec = pod_spec(
        json!({"containers": [{"name": "a", "args": ["x", "y"]}], "tolerations": [{"key": "k1"}, {"key": "k2"}]}),
        json!({"containers": [{"name": "a", "args": ["z"]}], "tolerations": [{"key": "k3"}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"][0]["args"], json!(["z"]));
    assert_eq!(spec["tolerations"], json!([{"key": "k3"}]));
}

#[test]
fn strategic_object_meta_merges_on_every_kind() {
    let owner = |uid: &str, name: &str| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid});
    let out = cm_meta(
        json!({"ownerReferences": [owner("u1", "a")], "finalizers": ["f1"]}),
        json!({"ownerReferences": [{"uid": "u1", "controller": true}, owner("u2", "b")], "finalizers": ["f1", "f2"]}),
    )
    .unwrap();
    let mut merged = owner("u1", "a");
    merged["controller"] = json!(true);
    assert_eq!(out["ownerReferences"], json!([merged, owner("u2", "b")]));
    assert_eq!(out["finalizers"], json!(["f1", "f2"]));
    let out = cm_meta(json!({"ownerReferences": [owner("u1", "a"), owner("u2", "b")]}), json!({"ownerReferences": [{"uid": "u1", "$patch": "delete"}]})).unwrap();
    assert_eq!(out["ownerReferences"], json!([owner("u2", "b")]));
}
