//! Maps, `null`, `$patch` in maps, `$retainKeys`, and what happens to fields without metadata.

use serde_json::json;

use super::{cm_meta, deploy};
use crate::api::strategic::{strategic_merge_patch, SmpError};

#[test]
fn strategic_maps_merge_recursively_and_null_deletes() {
    let out = deploy(
        json!({"replicas": 1, "paused": false, "template": {"metadata": {"labels": {"app": "x"}}}}),
        json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3, "paused": null, "minReadySeconds": null,
               "template": {"metadata": {"labels": {"tier": "web"}}}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"], json!({"name": "d", "labels": {"a": "1"}}));
    // paused is gone; the null for the absent minReadySeconds adds nothing.
    assert_eq!(out["spec"], json!({"replicas": 3, "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}}}));
}

#[test]
fn strategic_map_typed_field_merges_key_by_key() {
    let meta = json!({"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}});
    let out = cm_meta(meta.clone(), json!({"labels": {"b": null, "c": "3"}, "annotations": {"x": "z"}})).unwrap();
    assert_eq!(out["labels"], json!({"a": "1", "c": "3"}));
    assert_eq!(out["annotations"], json!({"x": "z"}));
    let out = cm_meta(meta, json!({"labels": null})).unwrap();
    assert!(out.get("labels").is_none(), "{out}");
}

#[test]
fn strategic_nulls_inside_a_new_value_are_dropped() {
    let out = deploy(json!({}), json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}})).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn strategic_patch_replace_in_a_map_replaces_it() {
    let out = cm_meta(json!({"labels": {"a": "1", "b": "2"}}), json!({"labels": {"$patch": "replace", "c": "3"}})).unwrap();
    assert_eq!(out["labels"], json!({"c": "3"}));
}

#[test]
fn strategic_patch_replace_at_the_root_replaces_the_object() {
    let original = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "1"}}, "data": {"k": "v"}});
    let patch = json!({"$patch": "replace", "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "1"}});
    let out = strategic_merge_patch(&original, &patch, "v1", "ConfigMap").unwrap();
    assert_eq!(out, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "1"}}));
}

#[test]
fn strategic_patch_delete_in_a_map_empties_it() {
    let out = deploy(
        json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
        json!({"spec": {"strategy": {"$patch": "delete"}, "template": {"spec": {"affinity": {"$patch": "delete"}}}}}),
    )
    .unwrap();
    // Upstream returns an empty map for the field rather than removing it...
    assert_eq!(out["spec"]["strategy"], json!({}));
    // ...and a deleted map the original did not have is not added.
    assert_eq!(out["spec"]["template"]["spec"], json!({}));
}

#[test]
fn strategic_patch_directive_in_a_map_must_be_replace_or_delete() {
    for (d, shown) in [(json!("merge"), "merge"), (json!("bogus"), "bogus"), (json!(true), "%!s(bool=true)")] {
        let err = cm_meta(json!({"labels": {"a": "1"}}), json!({"labels": {"$patch": d}})).unwrap_err();
        let dv = crate::api::strategic::gofmt::v(&d);
        assert_eq!(err, SmpError::Other(format!("unknown patch type: {shown} in map: map[$patch:{dv}]")));
    }
}

#[test]
fn strategic_retain_keys_clears_keys_not_listed() {
    let spec = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}});
    let out = deploy(spec.clone(), json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // Nulls need not be listed.
    let out = deploy(spec, json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}})).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn strategic_retain_keys_must_list_every_key_set() {
    let spec = json!({"strategy": {"type": "RollingUpdate"}});
    let bad = SmpError::BadRequest("invalid patch format of retainKeys".into());
    let err = deploy(spec.clone(), json!({"spec": {"strategy": {"$retainKeys": ["rollingUpdate"], "type": "Recreate"}}})).unwrap_err();
    assert_eq!(err, bad);
    let err = deploy(spec, json!({"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}})).unwrap_err();
    assert_eq!(err, bad);
}

#[test]
fn strategic_directive_keys_do_not_reach_stored_structs() {
    // A new value keeps everything but `$patch` maps upstream; the typed decode then drops
    // directive keys, which no struct has.
    let out = deploy(json!({}), json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn strategic_unknown_fields_merge_as_maps_and_lists_are_replaced() {
    let out = deploy(
        json!({"replicas": 1, "custom": {"a": 1, "b": [1, 2], "n": {"x": 1}}}),
        json!({"spec": {"custom": {"a": null, "b": [3], "n": {"y": 2}}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["custom"], json!({"b": [3], "n": {"x": 1, "y": 2}}));
}

#[test]
fn strategic_raw_extension_merges_its_top_level_only() {
    let original = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"}, "revision": 1,
                          "data": {"spec": {"x": 1}, "b": 1}});
    let out = strategic_merge_patch(&original, &json!({"data": {"b": 2, "c": 3}}), "apps/v1", "ControllerRevision").unwrap();
    assert_eq!(out["data"], json!({"spec": {"x": 1}, "b": 2, "c": 3}));
    // Upstream's RawExtension struct has no JSON fields: merging inside one fails.
    let err = strategic_merge_patch(&original, &json!({"data": {"spec": {"y": 2}}}), "apps/v1", "ControllerRevision").unwrap_err();
    assert_eq!(err, SmpError::Other("unable to find api field in struct RawExtension for the json field \"spec\"".into()));
}

#[test]
fn strategic_null_body_changes_nothing_and_non_objects_are_bad_requests() {
    let original = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    assert_eq!(strategic_merge_patch(&original, &json!(null), "v1", "ConfigMap").unwrap(), original);
    let err = strategic_merge_patch(&original, &json!([1]), "v1", "ConfigMap").unwrap_err();
    assert_eq!(err, SmpError::BadRequest("json: cannot unmarshal array into Go value of type map[string]interface {}".into()));
}
