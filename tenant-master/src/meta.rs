//! Helpers over `metadata` of objects held as JSON.

use serde_json::{json, Map, Value};

/// Sets `metadata.resourceVersion` (creating `metadata` if needed).
pub fn set_resource_version(v: &mut Value, rv: i64) {
    if let Some(obj) = v.as_object_mut() {
        let md = obj.entry("metadata").or_insert_with(|| json!({}));
        if let Some(md) = md.as_object_mut() {
            md.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
    }
}

/// `metadata` as a mutable map, created if missing or not an object.
pub fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v["metadata"].is_object() {
        v["metadata"] = json!({});
    }
    v["metadata"].as_object_mut().expect("metadata is an object")
}

pub fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(v: &Value) -> &str {
    v["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn uid(v: &Value) -> &str {
    v["metadata"]["uid"].as_str().unwrap_or("")
}

pub fn resource_version(v: &Value) -> &str {
    v["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

pub fn finalizers(v: &Value) -> Vec<String> {
    v["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub fn is_deleting(v: &Value) -> bool {
    !v["metadata"]["deletionTimestamp"].is_null()
}

/// Now as RFC 3339 with second precision, as Kubernetes timestamps are.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Now plus `secs` seconds, as RFC 3339.
pub fn in_seconds(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Removes null-valued entries of `metadata`, as Go's omitempty would not send them.
pub fn prune_null_metadata(v: &mut Value) {
    if let Some(md) = v["metadata"].as_object_mut() {
        md.retain(|_, x| !x.is_null());
    }
}
