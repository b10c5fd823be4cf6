//! `fieldValidation=Strict` on create and update: a body with fields its kind does not have
//! is refused with 400, naming each field as upstream's strict decoder does
//! (`unknown field "spec.template.spec.containers[0].bogus"`).
//!
//! kubectl's `--validate=strict` (its default) sends `fieldValidation=Strict` once the
//! OpenAPI document lists the parameter on the kind's PATCH operation, and then relies on the
//! server instead of validating itself.

use serde_json::Value;

use super::request::Query;
use super::status::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::schema::{Card, Special, Ty, SCHEMA};

fn walk(v: &Value, msg: usize, path: &str, out: &mut Vec<String>) {
    let Value::Object(o) = v else { return };
    let fields = SCHEMA.json_fields(msg);
    for (k, x) in o {
        let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        let Some(f) = fields.iter().find(|f| f.name == *k) else {
            // TypeMeta is not part of the protobuf messages.
            if !(path.is_empty() && (k == "apiVersion" || k == "kind")) {
                out.push(at);
            }
            continue;
        };
        let Ty::Message(m) = f.ty else { continue };
        if SCHEMA.messages[m].special != Special::None {
            continue;
        }
        match (f.card, x) {
            (Card::Repeated, Value::Array(a)) => a.iter().enumerate().for_each(|(i, e)| walk(e, m, &format!("{at}[{i}]"), out)),
            (Card::Map, Value::Object(entries)) => entries.iter().for_each(|(key, e)| walk(e, m, &format!("{at}[{key}]"), out)),
            _ => walk(x, m, &at, out),
        }
    }
}

/// The fields of `obj` that its kind (per [`SCHEMA`]) does not have, as dotted paths.
pub fn unknown_fields(obj: &Value, api_version: &str, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = SCHEMA.kind(api_version, kind) {
        walk(obj, m, "", &mut out);
    }
    out
}

/// Refuses `obj` when the request asks for strict field validation and it has unknown fields.
pub fn check(q: &Query, inf: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if q.get("fieldValidation") != Some("Strict") {
        return Ok(());
    }
    let unknown = unknown_fields(obj, &inf.api_version(), inf.kind);
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
    Err(ApiError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
        inf.kind,
        inf.version,
        inf.kind,
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_unknown_fields_like_the_strict_decoder() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labelz": {}},
            "spec": {
                "replicaz": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}}, {"name": "b", "bogus": 1}]}},
            },
        });
        assert_eq!(
            unknown_fields(&d, "apps/v1", "Deployment"),
            ["metadata.labelz", "spec.replicaz", "spec.template.spec.containers[1].bogus"]
        );
        let ok = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}], "containers": []}});
        assert!(unknown_fields(&ok, "v1", "Pod").is_empty());
    }
}
