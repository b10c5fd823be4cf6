//! Malformed patches: the error each gives and the HTTP status upstream answers with.

use serde_json::json;

use super::{cm_meta, pod_spec};
use crate::api::status::ApiError;
use crate::api::strategic::SmpError;

#[test]
fn strategic_errors_map_to_upstream_statuses() {
    let e: ApiError = SmpError::BadRequest("invalid patch format of retainKeys".into()).into();
    assert_eq!((e.code, e.reason), (400, "BadRequest"));
    let e: ApiError = SmpError::Unprocessable("lists of lists are not supported".into()).into();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let s = e.to_status();
    assert_eq!(s["message"], "the server rejected our request due to an error in our request");
    assert_eq!(s["details"]["causes"][0], json!({"reason": "UnexpectedServerResponse", "message": "lists of lists are not supported"}));
    // Errors upstream's patch handler does not recognise are no API status: 500, no reason.
    let e: ApiError = SmpError::Other("map: map[image:x] does not contain declared merge key: name".into()).into();
    let s = e.to_status();
    assert_eq!(s["code"], 500);
    assert!(s.get("reason").is_none(), "{s}");
    assert_eq!(s["message"], "map: map[image:x] does not contain declared merge key: name");
    let e: ApiError = SmpError::Panic("hash of unhashable type".into()).into();
    assert_eq!(e.code, 500);
}

#[test]
fn strategic_list_of_lists_is_unprocessable() {
    let err = cm_meta(json!({"finalizers": []}), json!({"finalizers": [["a"]]})).unwrap_err();
    assert_eq!(err, SmpError::Unprocessable("lists of lists are not supported".into()));
}

#[test]
fn strategic_mixed_item_types_are_rejected() {
    let err = cm_meta(json!({"finalizers": ["x"]}), json!({"$deleteFromPrimitiveList/finalizers": [["a"]]})).unwrap_err();
    assert_eq!(err, SmpError::Other("list element types are not identical: [[x] [[a]]]".into()));
    let err = cm_meta(json!({"finalizers": ["x"]}), json!({"finalizers": [1]})).unwrap_err();
    assert_eq!(err, SmpError::Other("list element types are not identical: [[x] [1]]".into()));
}

#[test]
fn strategic_where_upstream_panics_the_answer_is_a_500() {
    // A null first item: Go asks the nil type for its kind.
    let err = cm_meta(json!({"finalizers": ["x"]}), json!({"ownerReferences": [], "finalizers": [null]})).unwrap_err();
    assert!(matches!(err, SmpError::Other(_)), "{err:?}");
    let err = cm_meta(json!({"finalizers": []}), json!({"finalizers": [null]})).unwrap_err();
    assert!(matches!(err, SmpError::Panic(_)), "{err:?}");
    // Maps in a $setElementOrder of scalars cannot be hashed.
    let err = cm_meta(json!({"finalizers": ["x"]}), json!({"$setElementOrder/finalizers": [{"a": 1}]})).unwrap_err();
    assert!(matches!(err, SmpError::Panic(_)), "{err:?}");
}

#[test]
fn strategic_replacing_a_list_with_a_map_takes_the_patch_value() {
    // Types differ: the patch value is stored as it is (the typed decode then judges it).
    let spec = pod_spec(json!({"containers": [{"name": "a"}]}), json!({"containers": {"name": "a"}})).unwrap();
    assert_eq!(spec["containers"], json!({"name": "a"}));
}
