//! core/v1 limitranges: container default limits and requests filled from max/default/min
//! (SetDefaults_LimitRangeItem), the ordering checks of ValidateLimitRange. No printer upstream,
//! so the table is the default NAME/CREATED AT.

use serde_json::Value;

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct LimitRanges;

static INFO: ResourceInfo = info("", "v1", "LimitRange", "limitranges", "limitrange", true).with_short_names(&["limits"]);

const TYPES: &[&str] = &["Pod", "Container", "PersistentVolumeClaim"];

/// Copies the entries of `item[from]` missing from `item[to]`.
fn fill(item: &mut Value, from: &str, to: &str) {
    let src = item[from].as_object().cloned().unwrap_or_default();
    for (k, v) in src {
        if item[to].get(&k).is_none() {
            item[to][k.as_str()] = v;
        }
    }
}

fn q(item: &Value, field: &str, k: &str) -> Option<(f64, String)> {
    let v = &item[field][k];
    common::quantity(v).map(|n| (n, common::intstr(v)))
}

fn validate_item(item: &Value, i: usize, seen: &mut Vec<String>, errs: &mut Vec<FieldError>) {
    let p = format!("spec.limits[{i}]");
    let t = item["type"].as_str().unwrap_or("");
    for e in crate::validation::qualified_name_errors(t) {
        errs.push(FieldError::invalid(format!("{p}.type"), t, e));
    }
    if !t.contains('/') && !TYPES.contains(&t) {
        errs.push(FieldError::invalid(format!("{p}.type"), t, "must be a standard limit type or fully qualified"));
    }
    if seen.iter().any(|s| s == t) {
        errs.push(FieldError::duplicate(format!("{p}.type"), t));
    }
    seen.push(t.to_string());
    if t == "Pod" {
        for f in ["default", "defaultRequest"] {
            if item[f].as_object().map(|m| !m.is_empty()).unwrap_or(false) {
                errs.push(FieldError::forbidden(format!("{p}.{f}"), "may not be specified when `type` is 'Pod'"));
            }
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for f in ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"] {
        for (k, v) in item[f].as_object().into_iter().flatten() {
            match common::quantity(v) {
                None => errs.push(FieldError::invalid(format!("{p}.{f}[{k}]"), v.clone(), super::persistentvolumeclaims::QUANTITY_FORMAT)),
                Some(n) if n < 0.0 => errs.push(FieldError::invalid(format!("{p}.{f}[{k}]"), common::intstr(v), "must be greater than or equal to 0")),
                _ => {}
            }
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    for k in &keys {
        let (min, max, def, req) = (q(item, "min", k), q(item, "max", k), q(item, "default", k), q(item, "defaultRequest", k));
        let mut check = |a: &Option<(f64, String)>, b: &Option<(f64, String)>, field: &str, shown: bool, what: &str| {
            if let (Some(a), Some(b)) = (a, b) {
                if a.0 > b.0 {
                    let value = if shown { &a.1 } else { &b.1 };
                    errs.push(FieldError::invalid(format!("{p}.{field}[{k}]"), value.as_str(), what.replace("{a}", &a.1).replace("{b}", &b.1)));
                }
            }
        };
        check(&min, &max, "min", true, "min value {a} is greater than max value {b}");
        check(&min, &req, "defaultRequest", false, "min value {a} is greater than default request value {b}");
        check(&req, &max, "defaultRequest", true, "default request value {a} is greater than max value {b}");
        check(&req, &def, "defaultRequest", true, "default request value {a} is greater than default limit value {b}");
        check(&min, &def, "default", true, "min value {a} is greater than default value {b}");
        check(&def, &max, "default", false, "default value {a} is greater than max value {b}");
        if let Some((r, s)) = q(item, "maxLimitRequestRatio", k) {
            if r < 1.0 {
                errs.push(FieldError::invalid(format!("{p}.maxLimitRequestRatio[{k}]"), s.as_str(), format!("ratio {s} is less than 1")));
            }
        }
    }
}

impl Strategy for LimitRanges {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        for item in o.pointer_mut("/spec/limits").and_then(|l| l.as_array_mut()).into_iter().flatten() {
            if item["type"] == "Container" {
                fill(item, "max", "default");
                fill(item, "default", "defaultRequest");
                fill(item, "min", "defaultRequest");
            }
            for list in ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"] {
                if item[list].is_object() {
                    crate::registry::quantity::default_resource_list(&mut item[list]);
                }
            }
        }
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let mut seen = Vec::new();
        for (i, item) in o["spec"]["limits"].as_array().into_iter().flatten().enumerate() {
            validate_item(item, i, &mut seen, errs);
        }
    }
    fn columns(&self) -> Vec<Column> {
        crate::api::table::default_columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        crate::api::table::default_row(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_defaults_follow_max_default_min() {
        let mut o = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}]}});
        LimitRanges.default(&mut o);
        let c = &o["spec"]["limits"][0];
        assert_eq!(c["default"], json!({"cpu": "2"}));
        assert_eq!(c["defaultRequest"], json!({"cpu": "2", "memory": "64Mi"}));
        assert!(o["spec"]["limits"][1]["default"].is_null());
    }

    #[test]
    fn ordering_errors() {
        let o = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}, {"type": "Container"}]}});
        let mut errs = Vec::new();
        LimitRanges.validate(&o, &mut errs);
        assert_eq!(errs[0].field, "spec.limits[0].min[cpu]");
        assert_eq!(errs[0].detail, "min value 2 is greater than max value 1");
        assert_eq!(errs[1].field, "spec.limits[1].type");
    }
}
