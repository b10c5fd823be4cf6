//! Pieces several strategies share: pod template defaulting, cells, field paths.

use serde_json::{json, Value};

/// The value at a dotted path (`spec.nodeName`) as a selector string ("" when absent).
pub fn field_string(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Sets `obj[key]` to `v` when it is absent or null.
pub fn default_field(obj: &mut Value, key: &str, v: Value) {
    if obj.is_object() && obj.get(key).map(|x| x.is_null()).unwrap_or(true) {
        obj[key] = v;
    }
}

/// Upstream's image pull policy default: Always for `:latest` or untagged images.
pub fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        None => "Always",
        Some((_, "latest")) => "Always",
        _ => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c["image"].as_str().unwrap_or("").to_string();
    default_field(c, "imagePullPolicy", json!(pull_policy(&image)));
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    default_field(c, "resources", json!({}));
    if let Some(ports) = c["ports"].as_array_mut() {
        for p in ports {
            default_field(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if c[probe].is_object() {
            let p = &mut c[probe];
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
            if p["httpGet"].is_object() {
                default_field(&mut p["httpGet"], "path", json!("/"));
                default_field(&mut p["httpGet"], "scheme", json!("HTTP"));
            }
        }
    }
    if let Some(env) = c["env"].as_array_mut() {
        for e in env {
            if e["valueFrom"]["fieldRef"].is_object() {
                default_field(&mut e["valueFrom"]["fieldRef"], "apiVersion", json!("v1"));
            }
        }
    }
}

/// Upstream's defaults for a PodSpec (SetDefaults_PodSpec and friends).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            for c in cs {
                default_container(c);
            }
        }
    }
    if let Some(vols) = spec["volumes"].as_array_mut() {
        for v in vols {
            for (src, field) in [("secret", "defaultMode"), ("configMap", "defaultMode"), ("projected", "defaultMode"), ("downwardAPI", "defaultMode")] {
                if v[src].is_object() {
                    default_field(&mut v[src], field, json!(420));
                }
            }
            if v["hostPath"].is_object() {
                default_field(&mut v["hostPath"], "type", json!(""));
            }
        }
    }
}

/// Upstream's defaults for a pod template (workload controllers).
pub fn default_pod_template(t: &mut Value) {
    if !t.is_object() {
        return;
    }
    default_field(t, "metadata", json!({}));
    if t["spec"].is_object() {
        default_pod_spec(&mut t["spec"]);
    }
}

/// `c1,c2` and `img1,img2` of a pod template's containers (the CONTAINERS/IMAGES columns).
pub fn containers_and_images(template: &Value) -> (String, String) {
    let cs = template["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub fn string_or_none(v: &Value) -> String {
    match v.as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_defaults() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(pull_policy("registry:5000/nginx:1"), "IfNotPresent");
    }
}
