use serde_json::json;

use super::schema;

#[test]
fn defaults_fill_missing_and_non_nullable_nulls() {
    let st = schema(json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
        "replicas": {"type": "integer", "default": 1},
        "mode": {"type": "string", "default": "auto"},
        "note": {"type": "string", "nullable": true, "default": "n"},
        "gone": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"weight": {"type": "integer", "default": 5}}}},
        "byKey": {"type": "object", "additionalProperties": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}}
    }}}}));
    let mut obj = json!({"spec": {"mode": null, "note": null, "gone": null, "items": [{}, {"weight": 2}], "byKey": {"a": {}}}});
    st.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"spec": {"replicas": 1, "mode": "auto", "note": null, "items": [{"weight": 5}, {"weight": 2}], "byKey": {"a": {"on": true}}}}));
    // a missing spec gets its default, then the defaults inside it
    let mut obj = json!({});
    st.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"spec": {"replicas": 1, "mode": "auto", "note": "n"}}));
}

#[test]
fn pruning_drops_unknown_fields_and_reports_them() {
    let st = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "a": {"type": "string"},
            "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "pod": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}
        }},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }}));
    let mut obj = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"a": "x", "b": "y", "list": [{"x": 1, "y": 2}], "free": {"anything": {"goes": true}},
                 "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {"c": 1}, "extra": 1}},
        "status": {"whatever": 1},
        "other": 1
    });
    let mut pruned = st.prune(&mut obj);
    pruned.sort();
    assert_eq!(
        obj,
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {"a": "x", "list": [{"x": 1}], "free": {"anything": {"goes": true}},
                     "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}},
            "status": {"whatever": 1}
        })
    );
    assert_eq!(pruned, vec![".metadata.bogus", ".other", ".spec.b", ".spec.list[0].y", ".spec.pod.extra", ".spec.pod.metadata.junk", ".spec.pod.spec.c"]);
}
