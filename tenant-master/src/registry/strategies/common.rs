//! Pieces several strategies share: defaulting helpers, cells, field paths, common checks.

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

/// `validation.IsValidPortName` (an IANA service name) messages, in upstream's order.
pub fn port_name_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens");
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

#[cfg(test)]
mod tests {
    use super::*;

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
