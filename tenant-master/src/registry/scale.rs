//! The scale subresource (`autoscaling/v1` Scale) over any resource with replicas.

use serde_json::{json, Value};

use crate::api::selectors::LabelSelector;

/// Where a resource keeps what Scale exposes.
#[derive(Debug, Clone, Copy)]
pub struct ScalePaths {
    /// `spec.selector` is a plain map (ReplicationController) rather than a LabelSelector.
    pub map_selector: bool,
}

/// Renders a label selector object as the string form Scale.status.selector uses.
pub fn selector_string(sel: &Value, map_selector: bool) -> String {
    let mut parts = Vec::new();
    if map_selector {
        if let Some(m) = sel.as_object() {
            for (k, v) in m {
                parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
            }
        }
        parts.sort();
        return parts.join(",");
    }
    if LabelSelector::from_object(sel).is_none() {
        return String::new();
    }
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = e["values"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

/// The Scale object for `obj`.
pub fn to_scale(obj: &Value, paths: ScalePaths) -> Value {
    let md = &obj["metadata"];
    let mut meta = json!({
        "name": md["name"],
        "namespace": md["namespace"],
        "uid": md["uid"],
        "resourceVersion": md["resourceVersion"],
        "creationTimestamp": md["creationTimestamp"],
    });
    if let Some(m) = meta.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&obj["spec"]["selector"], paths.map_selector),
        },
    })
}
