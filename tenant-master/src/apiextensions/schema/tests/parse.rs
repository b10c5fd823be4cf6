use serde_json::json;

use super::{refused, schema, F};

fn with_spec(spec: serde_json::Value) -> serde_json::Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

#[test]
fn accepts_structural_schemas() {
    schema(with_spec(json!({"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}}})));
    schema(with_spec(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})));
    schema(with_spec(json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})));
    schema(with_spec(json!({"type": "object", "additionalProperties": {"type": "string"}})));
    schema(json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}}}));
}

#[test]
fn refuses_with_upstream_messages() {
    let p = format!("{F}.properties[spec]");
    let cases = vec![
        (with_spec(json!({"properties": {"a": {"type": "string"}}})), format!("{p}.type: Required value: must not be empty for specified object fields")),
        (json!({"type": "array", "items": {"type": "string"}}), format!("{F}.type: Invalid value: \"array\": must be object at the root")),
        (with_spec(json!({"type": "array"})), format!("{p}.items: Required value: must be specified")),
        (with_spec(json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}})), format!("{p}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")),
        (with_spec(json!({"type": "object", "$ref": "#/definitions/x"})), format!("{p}.$ref: Forbidden: $ref is not supported")),
        (with_spec(json!({"type": "string", "uniqueItems": true})), format!("{p}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic")),
        (with_spec(json!({"type": "null"})), format!("{p}.type: Forbidden: type cannot be set to null, use nullable as an alternative")),
        (with_spec(json!({"type": "foo"})), format!("{p}.type: Unsupported value: \"foo\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"")),
        (with_spec(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false})), format!("{p}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined")),
        (with_spec(json!({"type": "string", "pattern": "(a"})), format!("{p}.pattern: Invalid value: \"(a\"")),
        (with_spec(json!({"type": "object", "anyOf": [{"type": "object"}]})), format!("{p}.anyOf[0].type: Forbidden: must be empty to be structural")),
        (json!({"type": "object", "anyOf": [{"properties": {"x": {}}}]}), format!("{F}.properties[x]: Required value: because it is defined in {F}.anyOf[0].properties[x]")),
        (json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}), format!("{F}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")),
        (json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {"name": "x"}}}}), format!("{F}.properties[metadata].default: Forbidden: must not be set in top-level metadata")),
        (with_spec(json!({"type": "object", "x-kubernetes-embedded-resource": true})), format!("{p}.properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields")),
        (with_spec(json!({"type": "string", "x-kubernetes-list-type": "set"})), format!("{p}.type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified")),
        (with_spec(json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"})), format!("{p}.x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\"")),
        (with_spec(json!({"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}, "x-kubernetes-list-type": "map"})), format!("{p}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map")),
        (with_spec(json!({"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})), format!("{p}.items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property")),
        (with_spec(json!({"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})), format!("{p}.x-kubernetes-list-map-keys: Invalid value: []interface {{}}{{\"name\"}}: entries must all be names of item properties")),
        (with_spec(json!({"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}, "x-kubernetes-list-type": "set"})), format!("{p}.items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set")),
        (with_spec(json!({"type": "integer", "default": "three"})), format!("{p}.default: Invalid value: \"string\":  in body must be of type integer: \"string\"")),
        (with_spec(json!({"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}})), format!("{p}.default: Invalid value: map[string]interface {{}}{{\"a\":\"x\", \"b\":1}}: must not have unknown fields")),
        (with_spec(json!({"type": "string", "x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true})), format!("{p}.x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true")),
        (json!({"type": "object", "nullable": true}), format!("{F}.nullable: Forbidden: nullable cannot be true at the root")),
        (with_spec(json!({"type": "string", "x-kubernetes-validations": [{"rule": ""}]})), format!("{p}.x-kubernetes-validations[0].rule: Required value: rule is not specified")),
        (with_spec(json!({"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 1", "reason": "Nope"}]})), format!("{p}.x-kubernetes-validations[0].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"")),
    ];
    for (s, want) in cases {
        let got = refused(s.clone());
        assert!(got.iter().any(|g| g.starts_with(&want)), "schema {s}\nwant {want}\ngot {got:#?}");
    }
}

#[test]
fn type_errors_in_the_schema_itself_are_reported() {
    let got = refused(with_spec(json!({"type": 5})));
    assert_eq!(got, vec![format!("{F}.properties[spec].type: Invalid value: 5: must be a string")]);
}

#[test]
fn structural_errors_are_sorted_like_upstream() {
    let got = refused(json!({"type": "object", "properties": {"b": {}, "a": {}}}));
    assert_eq!(
        got,
        vec![
            format!("{F}.properties[a].type: Required value: must not be empty for specified object fields"),
            format!("{F}.properties[b].type: Required value: must not be empty for specified object fields"),
        ]
    );
}

#[test]
fn status_subresource_root_is_restricted() {
    let ok = json!({"type": "object", "properties": {"status": {"type": "object"}}, "required": ["spec"]});
    assert!(super::super::validate_status_subresource_root(&ok, F).is_empty());
    let bad = json!({"type": "object", "anyOf": [{"required": ["spec"]}]});
    let e = super::msgs(&super::super::validate_status_subresource_root(&bad, F));
    assert!(e[0].contains("fields are allowed at the root of the schema if the status subresource is enabled"), "{e:?}");
}
