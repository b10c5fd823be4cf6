//! Server-side Table output (`meta.k8s.io/v1` Table), as `kubectl get` asks for it.

use serde_json::{json, Value};

use crate::registry::Strategy;

/// Upstream's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

/// Time since an RFC 3339 timestamp, as a table cell (`<unknown>` when absent).
pub fn since(ts: &Value) -> String {
    match ts.as_str().and_then(crate::meta::parse_time) {
        Some(t) => human_duration((chrono::Utc::now() - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

/// The AGE cell of an object.
pub fn age(obj: &Value) -> String {
    since(&obj["metadata"]["creationTimestamp"])
}

/// `a,b,c` of a string array, `<none>` when empty.
pub fn join_or_none(items: &[String]) -> String {
    if items.is_empty() { "<none>".into() } else { items.join(",") }
}

/// A label selector object as `k=v,...`, `<none>` when empty.
pub fn selector_cell(sel: &Value) -> String {
    let s = crate::registry::scale::selector_string(sel, sel.get("matchLabels").is_none() && sel.get("matchExpressions").is_none());
    if s.is_empty() { "<none>".into() } else { s }
}

/// `a=b,c=d` of a string map, sorted, `<none>` when empty (`labels.FormatLabels`).
pub fn labels_cell(m: &Value) -> String {
    let mut parts: Vec<String> = m.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    parts.sort();
    join_or_none(&parts)
}

/// `True`/`False`/`<unset>` of an optional bool (`printBoolPtr`).
pub fn bool_ptr_cell(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// `a,b,c + N more...` with at most `max` items, `<unset>` when empty (`listWithMoreString`).
pub fn list_with_more(items: &[String], max: usize) -> String {
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    if items.is_empty() { "<unset>".into() } else { items.join(",") }
}

/// The time from one RFC 3339 timestamp to another as a table cell.
pub fn duration_between(from: &Value, to: &Value) -> Option<String> {
    let (a, b) = (crate::meta::parse_time(from.as_str()?)?, crate::meta::parse_time(to.as_str()?)?);
    Some(human_duration((b - a).num_seconds()))
}

/// The "Name" and "Created At" columns of upstream's default table convertor, for resources
/// without a printer.
pub fn default_columns() -> Vec<crate::registry::Column> {
    use crate::registry::Column;
    let created = "CreationTimestamp is a timestamp representing the server time when this object was created.";
    vec![Column::name(), Column::new("Created At", "date", 0, created)]
}

/// The row matching [`default_columns`]: the name and the creation time in RFC 3339.
pub fn default_row(obj: &Value) -> Vec<Value> {
    let ts = obj["metadata"]["creationTimestamp"].as_str().and_then(crate::meta::parse_time);
    let cell = ts.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default();
    vec![json!(crate::meta::name(obj)), json!(cell)]
}

/// What a table row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(s: Option<&str>) -> Include {
        match s {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// The PartialObjectMetadata of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    })
}

/// One row for `obj`.
pub fn row(s: &dyn Strategy, obj: &Value, include: Include) -> Value {
    let mut r = json!({"cells": s.row(obj)});
    match include {
        Include::None => {}
        Include::Metadata => r["object"] = partial_metadata(obj),
        Include::Object => r["object"] = obj.clone(),
    }
    r
}

/// A Table of `objs`; `headers` false omits the column definitions (later watch events).
pub fn table(s: &dyn Strategy, objs: &[std::sync::Arc<Value>], include: Include, list_meta: Value, headers: bool) -> Value {
    let cols: Vec<Value> = if headers { s.columns().iter().map(|c| c.to_json()).collect() } else { vec![] };
    let rows: Vec<Value> = objs.iter().map(|o| row(s, o, include)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": cols,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(labels_cell(&json!({"b": "2", "a": "1"})), "a=1,b=2");
        assert_eq!(labels_cell(&Value::Null), "<none>");
        assert_eq!(bool_ptr_cell(&json!(false)), "False");
        let items: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&[], 3), "<unset>");
        assert_eq!(duration_between(&json!("2024-01-01T00:00:00Z"), &json!("2024-01-01T00:02:05Z")).as_deref(), Some("2m5s"));
        let row = default_row(&json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T10:00:00Z"}}));
        assert_eq!(row, vec![json!("r"), json!("2024-05-01T10:00:00Z")]);
    }

    #[test]
    fn durations_match_upstream() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(100 * 86400), "100d");
    }
}
