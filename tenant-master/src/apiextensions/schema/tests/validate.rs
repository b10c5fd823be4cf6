use serde_json::json;

use super::{check, check_update, schema};

fn widget() -> super::Structural {
    schema(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "multipleOf": 0.5},
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                    "port": {"x-kubernetes-int-or-string": true},
                    "id": {"type": "string", "format": "uuid"},
                    "when": {"type": "string", "format": "date-time"},
                    "odd": {"type": "string", "format": "not-a-format"},
                    "note": {"type": "string", "nullable": true},
                    "flag": {"type": "boolean"},
                    "big": {"type": "number", "maximum": 1000000},
                    "count": {"type": "integer", "format": "int32"},
                    "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                }
            }
        }
    }))
}

#[test]
fn valid_objects_pass() {
    let st = widget();
    let ok = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {
        "size": "small", "replicas": 3, "ratio": 1.5, "name": "abc", "tags": ["a"], "labels": {"a": "b"},
        "port": "http", "id": "123e4567-e89b-12d3-a456-426614174000", "when": "2024-01-02T03:04:05Z", "odd": "anything",
        "note": null, "flag": true, "big": 3.5, "count": 7, "choice": {"a": "x"}
    }});
    assert_eq!(check(&st, ok), Vec::<String>::new());
    assert_eq!(check(&st, json!({"spec": {"size": "large", "port": 80}})), Vec::<String>::new());
}

#[test]
fn messages_are_upstreams() {
    let st = widget();
    let cases = vec![
        (json!({"replicas": "3"}), "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
        (json!({"replicas": 1.5}), "spec.replicas: Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\""),
        (json!({"replicas": 11}), "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        (json!({"replicas": -1}), "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
        (json!({"ratio": 0}), "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"),
        (json!({"ratio": 0.7}), "spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"),
        (json!({"size": "medium"}), "spec.size: Unsupported value: \"medium\": supported values: \"small\", \"large\""),
        (json!({"name": "a"}), "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"),
        (json!({"name": "abcdef"}), "spec.name: Too long: may not be more than 5 bytes"),
        (json!({"name": "AB"}), "spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"),
        (json!({"tags": []}), "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"),
        (json!({"tags": ["a", "b", "c"]}), "spec.tags: Too many: 3: must have at most 2 items"),
        (json!({"tags": [1]}), "spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: \"integer\""),
        (json!({"labels": {"a": "1", "b": "2", "c": "3"}}), "spec.labels: Too many: 3: must have at most 2 items"),
        (json!({"labels": {"a": 1}}), "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""),
        (json!({"port": true}), "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""),
        (json!({"id": "nope"}), "spec.id: Invalid value: \"nope\": spec.id in body must be of type uuid: \"nope\""),
        (json!({"when": "yesterday"}), "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""),
        (json!({"flag": "yes"}), "spec.flag: Invalid value: \"string\": spec.flag in body must be of type boolean: \"string\""),
        (json!({"big": 2000000.5}), "spec.big: Invalid value: 2.0000005e+06: spec.big in body should be less than or equal to 1e+06"),
        (json!({"count": 1.5}), "spec.count: Invalid value: \"float64\": spec.count in body must be of type int32: \"float64\""),
        (json!({"flag": null}), "spec.flag: Invalid value: \"null\": spec.flag in body must be of type boolean: \"null\""),
        (json!({"choice": {}}), "<nil>: Invalid value: \"\": \"spec.choice\" must validate one and only one schema (oneOf). Found none valid"),
        (
            json!({"choice": {"a": "x", "b": "y"}}),
            "<nil>: Invalid value: \"\": \"spec.choice\" must validate one and only one schema (oneOf). Found 2 valid alternatives",
        ),
    ];
    for (spec, want) in cases {
        let mut spec = spec;
        spec.as_object_mut().unwrap().entry("size").or_insert(json!("small"));
        let got = check(&st, json!({"spec": spec.clone()}));
        assert!(got.iter().any(|g| g == want), "spec {spec}\nwant {want}\ngot  {got:#?}");
    }
    assert_eq!(check(&st, json!({"spec": {}})), vec!["spec.size: Required value".to_string()]);
    assert_eq!(check(&st, json!({"spec": "x"})), vec!["spec: Invalid value: \"string\": spec in body must be of type object: \"string\"".to_string()]);
}

#[test]
fn list_types_reject_duplicates() {
    let st = schema(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "set": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": {"type": "object", "required": ["port"], "properties": {"port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
        "byName": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
    }}}}));
    assert_eq!(check(&st, json!({"spec": {"set": ["a", "b", "a", "a"]}})), vec!["spec.set[2]: Duplicate value: \"a\"".to_string()]);
    let got = check(&st, json!({"spec": {"byName": [{"name": "x"}, {"name": "x"}]}}));
    assert_eq!(got, vec!["spec.byName[1]: Duplicate value: {\"name\":\"x\"}".to_string()]);
    let got = check(&st, json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}]}}));
    assert_eq!(got, vec!["spec.ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}".to_string()]);
    // an update keeps accepting duplicates that were already stored
    let dup = json!({"spec": {"set": ["a", "a"]}});
    assert!(check_update(&st, dup.clone(), dup).is_empty());
}

#[test]
fn embedded_resources_are_validated() {
    let st = schema(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
    }}}}));
    assert!(check(&st, json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}})).is_empty());
    let got = check(&st, json!({"spec": {"template": {"metadata": {"name": "p"}}}}));
    assert_eq!(got, vec!["spec.template.apiVersion: Required value".to_string(), "spec.template.kind: Required value".to_string()]);
    let got = check(&st, json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": "Pod_x"}}}));
    assert!(got.contains(&"spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c".to_string()), "{got:?}");
    assert!(got.iter().any(|g| g.starts_with("spec.template.kind: Invalid value: \"Pod_x\": may have mixed case, but should otherwise match:")), "{got:?}");
    let got = check(&st, json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": "x"}}}}));
    assert!(got[0].contains("json: cannot unmarshal string into Go struct field ObjectMeta.labels of type map[string]string"), "{got:?}");
}

#[test]
fn ratcheting_keeps_unchanged_invalid_values() {
    let st = widget();
    let old = json!({"spec": {"size": "small", "replicas": 50, "name": "abc"}});
    // replicas was already invalid and is unchanged: accepted; the changed name is checked
    assert!(check_update(&st, json!({"spec": {"size": "small", "replicas": 50, "name": "abd"}}), old.clone()).is_empty());
    let got = check_update(&st, json!({"spec": {"size": "small", "replicas": 50, "name": "ABD"}}), old.clone());
    assert_eq!(got, vec!["spec.name: Invalid value: \"ABD\": spec.name in body should match '^[a-z]+$'".to_string()]);
    // changing the invalid value is checked again
    let got = check_update(&st, json!({"spec": {"size": "small", "replicas": 40, "name": "abc"}}), old);
    assert_eq!(got, vec!["spec.replicas: Invalid value: 40: spec.replicas in body should be less than or equal to 10".to_string()]);
}

#[test]
fn nullable_enums_and_int_or_string() {
    let st = schema(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "mode": {"type": "string", "nullable": true, "enum": ["a", "b"]},
        "port": {"x-kubernetes-int-or-string": true, "default": 8080},
        "pct": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true, "pattern": "^[0-9]+%$"}
    }}}}));
    // only the exact int-or-string anyOf pattern may carry types
    let bad = super::refused(
        json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "boolean"}]}}}),
    );
    assert_eq!(bad.len(), 3, "{bad:#?}");
    // upstream's enum check does not let null through even when nullable
    assert_eq!(check(&st, json!({"spec": {"mode": null}})), vec!["spec.mode: Unsupported value: null: supported values: \"a\", \"b\""]);
    let mut obj = json!({"spec": {}});
    st.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"spec": {"port": 8080}}));
    assert!(check(&st, json!({"spec": {"pct": "50%"}})).is_empty());
    assert!(check(&st, json!({"spec": {"pct": 5}})).is_empty());
    assert_eq!(check(&st, json!({"spec": {"pct": "half"}})), vec!["spec.pct: Invalid value: \"half\": spec.pct in body should match '^[0-9]+%$'"]);
    assert_eq!(
        check(&st, json!({"spec": {"pct": 1.5}})),
        vec![
            "spec.pct: Invalid value: \"number\": spec.pct in body must be of type integer,string: \"number\"",
            "<nil>: Invalid value: \"\": \"spec.pct\" must validate at least one schema (anyOf)",
            "spec.pct: Invalid value: \"number\": spec.pct in body must be of type integer: \"number\""
        ]
    );
}
