//! `$setElementOrder`: the cases of upstream's ordering tests, and the interleaving of items the
//! order does not name.

use serde_json::{json, Value};

use super::{cm_meta, containers, names, pod_spec};
use crate::api::strategic::SmpError;

fn strs(v: &[&str]) -> Value {
    json!(v)
}

#[test]
fn strategic_set_element_order_interleaves_server_only_scalars() {
    // Upstream's "set elements order in a int list with server-only items" 2 and 3.
    let out = cm_meta(
        json!({"finalizers": strs(&["1", "2", "9", "3", "4"])}),
        json!({"$setElementOrder/finalizers": strs(&["2", "1", "4", "3"])}),
    )
    .unwrap();
    assert_eq!(out["finalizers"], strs(&["2", "1", "9", "4", "3"]));
    let out = cm_meta(
        json!({"finalizers": strs(&["1", "2", "7", "9", "8", "3", "4"])}),
        json!({"$setElementOrder/finalizers": strs(&["2", "1", "4", "3"])}),
    )
    .unwrap();
    assert_eq!(out["finalizers"], strs(&["2", "1", "7", "9", "8", "4", "3"]));
}

#[test]
fn strategic_set_element_order_with_duplicate_merge_keys() {
    // Upstream's "behavior of set element order for a merging list with duplicate".
    let spec = pod_spec(
        json!({"containers": [{"name": "1"}, {"name": "2", "image": "dup1"}, {"name": "3"}, {"name": "2", "image": "dup2"}, {"name": "4"}]}),
        json!({"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}, {"name": "2"}]}),
    )
    .unwrap();
    assert_eq!(
        spec["containers"],
        json!([{"name": "2", "image": "dup1"}, {"name": "2", "image": "dup2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}])
    );
}

#[test]
fn strategic_set_element_order_may_name_absent_items() {
    // Upstream's "$setElementOrder contains item that is not present in the list to be merged".
    let spec = pod_spec(
        json!({"containers": [{"name": "1"}, {"name": "3"}]}),
        json!({"$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
               "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"], json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]));
}

#[test]
fn strategic_set_element_order_places_new_and_live_items() {
    // Upstream's "merge lists of maps" three-way case: new items where the order says, live
    // items keep their data.
    let spec = pod_spec(
        json!({"containers": [{"name": "1", "workingDir": "a"}, {"name": "2", "image": "2", "workingDir": "b"}]}),
        json!({"$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
               "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]}),
    )
    .unwrap();
    assert_eq!(
        spec["containers"],
        json!([{"name": "4", "image": "4"}, {"name": "1", "workingDir": "a"}, {"name": "2", "image": "2", "workingDir": "b"}, {"name": "3", "image": "3"}])
    );
}

#[test]
fn strategic_set_element_order_must_agree_with_the_patch_list() {
    let err = pod_spec(
        json!({"containers": containers(&["1", "3", "2"])}),
        json!({"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
               "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}),
    )
    .unwrap_err();
    let SmpError::Other(msg) = err else { panic!("{err:?}") };
    assert_eq!(
        msg,
        "The order in patch list:\n[map[image:3 name:3] map[image:1 name:1]]\n doesn't match $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n"
    );
}

#[test]
fn strategic_set_element_order_must_be_a_list_under_a_field() {
    let err = cm_meta(json!({"finalizers": ["a"]}), json!({"$setElementOrder/finalizers": "a"})).unwrap_err();
    assert_eq!(err, SmpError::Other("expected a []interface {}, but received a string".into()));
    let err = cm_meta(json!({"finalizers": ["a"]}), json!({"$setElementOrder": ["a"]})).unwrap_err();
    assert_eq!(err, SmpError::BadRequest("invalid patch format of setElementOrder list".into()));
}

#[test]
fn strategic_set_element_order_after_delete_and_add_sees_the_shifted_live_list() {
    // kubectl apply deleting `b` and adding `d` while the server added `e`. Upstream deletes in
    // place, so the live list it orders by reads [a e c d]: `e` lands before the new `d`.
    let spec = pod_spec(
        json!({"containers": containers(&["a", "b", "e", "c"])}),
        json!({"$setElementOrder/containers": [{"name": "a"}, {"name": "d"}, {"name": "c"}],
               "containers": [{"name": "d", "image": "d:1"}, {"name": "b", "$patch": "delete"}]}),
    )
    .unwrap();
    assert_eq!(names(&spec["containers"]), ["a", "e", "d", "c"]);
}

#[test]
fn strategic_set_element_order_for_an_added_list_drops_directives() {
    let spec = pod_spec(
        json!({"containers": containers(&["a"])}),
        json!({"containers": [{"name": "a", "$setElementOrder/env": [{"name": "Y"}, {"name": "X"}],
               "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}, {"name": "Z", "$patch": "delete"}]}]}),
    )
    .unwrap();
    assert_eq!(spec["containers"][0]["env"], json!([{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]));
}
