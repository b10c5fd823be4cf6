//! `fieldValidation=Strict` on create, update and patch: a body with fields its kind does not
//! have is refused with 400, naming each field as upstream's strict decoder does
//! (`unknown field "spec.template.spec.containers[0].bogus"`).
//!
//! kubectl's `--validate=strict` (its default) sends `fieldValidation=Strict` once the
//! OpenAPI document lists the parameter on the kind's PATCH operation, and then relies on the
//! server instead of validating itself.

use serde_json::Value;

use super::patch::PatchType;
use super::request::Query;
use super::status::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::schema::{Card, Special, Ty, SCHEMA};

/// Collects the unknown fields of `v`, a `msg`; `patch` skips strategic merge patch
/// directives (`$patch`, `$setElementOrder/...`, `$retainKeys`, ...).
fn walk(v: &Value, msg: usize, path: &str, patch: bool, out: &mut Vec<String>) {
    let Value::Object(o) = v else { return };
    let fields = SCHEMA.json_fields(msg);
    for (k, x) in o {
        if patch && k.starts_with('$') {
            continue;
        }
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
            (Card::Repeated, Value::Array(a)) => a.iter().enumerate().for_each(|(i, e)| walk(e, m, &format!("{at}[{i}]"), patch, out)),
            (Card::Map, Value::Object(entries)) => entries.iter().for_each(|(key, e)| walk(e, m, &format!("{at}[{key}]"), patch, out)),
            _ => walk(x, m, &at, patch, out),
        }
    }
}

/// The fields of `obj` that its kind (per [`SCHEMA`]) does not have, as dotted paths.
pub fn unknown_fields(obj: &Value, api_version: &str, kind: &str) -> Vec<String> {
    fields_of(obj, api_version, kind, false)
}

fn fields_of(obj: &Value, api_version: &str, kind: &str, patch: bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = SCHEMA.kind(api_version, kind) {
        walk(obj, m, "", patch, &mut out);
    }
    out
}

fn strict(q: &Query) -> bool {
    q.get("fieldValidation") == Some("Strict")
}

fn listed(unknown: &[String]) -> String {
    unknown.iter().map(|f| format!("unknown field {f:?}")).collect::<Vec<_>>().join(", ")
}

/// Refuses `obj` when the request asks for strict field validation and it has unknown fields.
pub fn check(q: &Query, inf: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if !strict(q) {
        return Ok(());
    }
    let unknown = unknown_fields(obj, &inf.api_version(), inf.kind);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
        inf.kind,
        inf.version,
        inf.kind,
        listed(&unknown)
    )))
}

/// As [`check`], for the body of a merge, strategic merge or apply patch (which have the
/// object's shape); JSON patches are lists of operations and are not checked.
pub fn check_patch(q: &Query, inf: &ResourceInfo, typ: PatchType, body: &[u8]) -> ApiResult<()> {
    if !strict(q) {
        return Ok(());
    }
    let patch: Option<Value> = match typ {
        PatchType::Merge | PatchType::Strategic => serde_json::from_slice(body).ok(),
        PatchType::Apply => serde_yaml_ng::from_slice(body).ok(),
        PatchType::Json => None,
    };
    let Some(patch) = patch else { return Ok(()) };
    let unknown = fields_of(&patch, &inf.api_version(), inf.kind, true);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!("strict decoding error: {}", listed(&unknown))))
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

    #[test]
    fn patches_skip_strategic_directives() {
        let q = Query(std::collections::HashMap::from([("fieldValidation".to_string(), "Strict".to_string())]));
        let inf = crate::registry::Registry::builtin().lookup("apps", "v1", "deployments").unwrap().info().clone();
        let smp = br#"{"spec":{"$setElementOrder/x":[],"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"a","$patch":"delete"}]}}}}"#;
        assert!(check_patch(&q, &inf, PatchType::Strategic, smp).is_ok());
        let bad = br#"{"spec":{"replicaz":3}}"#;
        let e = check_patch(&q, &inf, PatchType::Merge, bad).unwrap_err();
        assert!(e.message.contains(r#"unknown field "spec.replicaz""#), "{}", e.message);
        assert!(check_patch(&Query::default(), &inf, PatchType::Merge, bad).is_ok());
        assert!(check_patch(&q, &inf, PatchType::Json, br#"[{"op":"add","path":"/spec/replicaz","value":1}]"#).is_ok());
    }
}
