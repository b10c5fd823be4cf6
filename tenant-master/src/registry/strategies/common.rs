//! Pieces several strategies share: pod template defaulting, cells, field paths.

use serde_json::{json, Value};

use crate::api::status::FieldError;

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
    if let Some(ports) = c.get_mut("ports").and_then(|x| x.as_array_mut()) {
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
    if let Some(env) = c.get_mut("env").and_then(|x| x.as_array_mut()) {
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
        if let Some(cs) = spec.get_mut(list).and_then(|x| x.as_array_mut()) {
            for c in cs {
                default_container(c);
            }
        }
    }
    if let Some(vols) = spec.get_mut("volumes").and_then(|x| x.as_array_mut()) {
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

/// An IntOrString as upstream's `intstr.String()`.
pub fn intstr(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Whether the first condition of type `t` has status True (printers' `hasJobCondition`).
pub fn has_condition(o: &Value, t: &str) -> bool {
    o["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == t).map(|c| c["status"] == "True").unwrap_or(false)
}

/// Quantity suffixes and their multipliers.
const SUFFIXES: &[(&str, f64)] = &[
    ("", 1.0), ("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
    ("Ki", 1024.0), ("Mi", 1048576.0), ("Gi", 1073741824.0), ("Ti", 1099511627776.0), ("Pi", 1125899906842624.0), ("Ei", 1152921504606846976.0),
];

/// The value of a resource quantity (`1Gi`, `500m`, `1e3`, 2) as a float; None when malformed.
pub fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match SUFFIXES.iter().find(|(x, _)| *x == suffix) {
        Some((_, m)) => *m,
        None if suffix.starts_with(['e', 'E']) => 10f64.powi(suffix[1..].parse().ok()?),
        None => return None,
    };
    Some(n * mult)
}

/// Removes the value at a dotted path, if present (without creating anything on the way).
pub fn remove_path(v: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').map(|(p, l)| (Some(p), l)).unwrap_or((None, path));
    let mut cur = v;
    for part in parent.into_iter().flat_map(|p| p.split('.')) {
        match cur.get_mut(part) {
            Some(c) => cur = c,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Makes the value at a dotted path of `dst` what it is in `src`, removed when `src` lacks it
/// (masking fields out of a comparison).
pub fn copy_path(dst: &mut Value, src: &Value, path: &str) {
    match path.split('.').try_fold(src, |c, p| c.get(p)) {
        None => remove_path(dst, path),
        Some(v) => {
            let mut cur = dst;
            for p in path.split('.') {
                if !cur.is_object() {
                    *cur = json!({});
                }
                cur = &mut cur[p];
            }
            *cur = v.clone();
        }
    }
}

/// `validation.IsValidPortName` (an IANA service name) messages.
pub fn port_name_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.is_empty() || s.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

/// "field is immutable" when `path` differs between the new and the old object.
pub fn immutable(new: &Value, old: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let get = |o: &Value| path.split('.').fold(o.clone(), |cur, p| cur[p].clone());
    let n = get(new);
    if n != get(old) {
        errs.push(FieldError::invalid(path, n, "field is immutable"));
    }
}

/// "must be greater than or equal to 0" for a negative integer at `v`.
pub fn non_negative(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = v.as_i64().filter(|n| *n < 0) {
        errs.push(FieldError::invalid(path, n, "must be greater than or equal to 0"));
    }
}

/// An enum field: NotSupported unless absent or one of `valid`.
pub fn one_of(v: &Value, path: &str, valid: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(s) = v.as_str() {
        if !valid.contains(&s) {
            errs.push(FieldError::not_supported(path, s, valid));
        }
    }
}

/// Selector/template checks of a workload (deployments' rules) with `kind` in the messages.
pub fn validate_workload(o: &Value, errs: &mut Vec<FieldError>, kind: &str) {
    let start = errs.len();
    super::deployments::validate_selector_and_template(o, errs, true);
    for e in &mut errs[start..] {
        if e.detail == "empty selector is invalid for deployment" {
            e.detail = format!("empty selector is invalid for {kind}");
        }
    }
    let rp = &o["spec"]["template"]["spec"]["restartPolicy"];
    if rp.as_str().map(|r| r != "Always").unwrap_or(false) {
        errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", rp.clone(), &["Always"]));
    }
    if o["spec"]["template"]["spec"]["activeDeadlineSeconds"].is_number() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    non_negative(&o["spec"]["minReadySeconds"], "spec.minReadySeconds", errs);
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

    #[test]
    fn pod_defaults_add_no_null_fields() {
        let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
        default_pod_spec(&mut spec);
        assert!(spec.get("initContainers").is_none() && spec.get("volumes").is_none());
        assert!(spec["containers"][0].get("ports").is_none() && spec["containers"][0].get("env").is_none());
    }

    #[test]
    fn quantities_and_paths() {
        assert_eq!(quantity(&json!("1Gi")), Some(1073741824.0));
        assert_eq!(quantity(&json!("500m")), Some(0.5));
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!("-1")), Some(-1.0));
        assert_eq!(quantity(&json!("1Gb")), None);
        assert_eq!(intstr(&json!("25%")), "25%");
        assert_eq!(intstr(&json!(1)), "1");
        let mut a = json!({"spec": {"x": 1, "y": {"z": 2}}});
        copy_path(&mut a, &json!({"spec": {"y": {"z": 3}}}), "spec.y.z");
        copy_path(&mut a, &json!({}), "spec.x");
        remove_path(&mut a, "spec.nope.deeper");
        assert_eq!(a, json!({"spec": {"y": {"z": 3}}}));
    }
}
