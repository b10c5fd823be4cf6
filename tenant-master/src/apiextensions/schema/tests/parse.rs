use serde_json::json;

use super::super::parse;

#[test]
fn accepts_a_simple_schema() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}});
    assert!(parse(&s, "spec.versions[0].schema.openAPIV3Schema").is_ok());
}
