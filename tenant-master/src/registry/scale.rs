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

/// Where a custom resource keeps what Scale exposes: the CRD version's `subresources.scale`
/// paths (`.spec.replicas` as `["spec", "replicas"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomScale {
    pub spec_replicas: Vec<String>,
    pub status_replicas: Vec<String>,
    pub label_selector: Option<Vec<String>>,
}

/// How a resource maps to an `autoscaling/v1` Scale.
#[derive(Debug, Clone)]
pub enum ScaleMapping {
    Builtin(ScalePaths),
    Custom(CustomScale),
}

fn at<'a>(obj: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(obj, |v, k| &v[k.as_str()])
}

impl ScaleMapping {
    /// The Scale object for `obj`.
    pub fn to_scale(&self, obj: &Value) -> Value {
        match self {
            ScaleMapping::Builtin(p) => to_scale(obj, *p),
            ScaleMapping::Custom(c) => {
                // As upstream's scaleFromCustomResource: missing values are 0 and "".
                let mut s = to_scale(obj, ScalePaths { map_selector: false });
                s["spec"]["replicas"] = json!(at(obj, &c.spec_replicas).as_i64().unwrap_or(0));
                s["status"]["replicas"] = json!(at(obj, &c.status_replicas).as_i64().unwrap_or(0));
                let sel = c.label_selector.as_ref().and_then(|p| at(obj, p).as_str()).unwrap_or("");
                s["status"]["selector"] = json!(sel);
                s
            }
        }
    }

    /// The path of the desired replicas in the parent object.
    pub fn spec_replicas_path(&self) -> Vec<String> {
        match self {
            ScaleMapping::Builtin(_) => vec!["spec".into(), "replicas".into()],
            ScaleMapping::Custom(c) => c.spec_replicas.clone(),
        }
    }

    /// Sets the desired replicas of the parent object (creating the path's objects).
    pub fn set_replicas(&self, obj: &mut Value, replicas: i64) {
        let path = self.spec_replicas_path();
        let mut v = obj;
        for k in &path {
            if !v.is_object() {
                *v = json!({});
            }
            v = &mut v[k.as_str()];
        }
        *v = json!(replicas);
    }
}
