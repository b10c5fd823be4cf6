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
    use super::human_duration;

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
